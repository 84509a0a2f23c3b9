/**
 * Chaos: dist/keybroker SIGKILLed at random moments against the local Vault (contract §2:
 * single flight, "a lock left by a killed process is recovered, never waited on", files
 * written whole). Each round starts three concurrent runs for a stored Vault secret whose read
 * is delayed, so a fetch is in flight, and kills one or two of them: the lock holder during its
 * fetch, the lock holder just after Vault answered (cache write, lock release), or any run at
 * a random moment (start-up, lock taking, cache hit). Afterwards every run that was not killed
 * printed the token with a silent stderr, the entry on disk always parses, and after the next
 * run that takes the lock no lock, temporary file or set-aside lock remains.
 *
 * Size: CHAOS_RUNS kills (default 150 for CI; `CHAOS_RUNS=1000 npx vitest run test/chaos`
 * for the full run). CHAOS_SEED replays the same choices.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEntry } from '../../src/cache/entry.js';
import { makeSandbox, ROOT, type Sandbox } from '../helpers/run.js';
import { startVaultServer, type VaultServer, vaultAdmin } from '../servers/vault-server.js';
import {
  kill,
  leftovers,
  lockHolder,
  median,
  prng,
  removeChaosBin,
  type Started,
  startKeybroker,
  until,
} from './chaos-helpers.js';

const RUNS = Number(process.env.CHAOS_RUNS ?? '150');
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RECOVERY_SAMPLES = Number(process.env.CHAOS_RECOVERY_SAMPLES ?? (RUNS >= 1000 ? '20' : '5'));
const TOKEN = 'sk-ant-api03-chaos-0001';
const READ = 'secret/data/llm';

let vault: VaultServer;
let sb: Sandbox;
let key = '';
const lockFile = () => path.join(sb.cacheDir, `${key}.lock`);
const entryFile = () => path.join(sb.cacheDir, `${key}.json`);
const reads = () => vault.requests.filter((r) => r.path === READ).length;

beforeAll(async () => {
  vault = await startVaultServer();
  await vaultAdmin(vault.url, vault.rootToken).putKv('secret', 2, 'llm', { token: TOKEN });
  sb = makeSandbox({ VAULT_ADDR: vault.url, VAULT_TOKEN: vault.rootToken });
  sb.writeConfig({
    // A generous deadline: on a starved machine a slow but live holder must not make a waiter
    // give up (exit 3); a lock that is really stuck still fails the run, only later.
    profiles: {
      default: { timeoutMs: 30_000, source: { type: 'vault', path: 'secret/llm', field: 'token' } },
    },
  });
  const first = await startKeybroker(['--json'], sb).done;
  expect(first.code).toBe(0);
  key = fs
    .readdirSync(sb.cacheDir)
    .find((f) => f.endsWith('.json'))!
    .replace(/\.json$/, '');
});
afterAll(async () => {
  await vault?.close();
  sb?.cleanup();
  removeChaosBin();
});

/** The entry on disk, when there is one, must always parse (written whole). */
function expectEntryWhole(): void {
  if (!fs.existsSync(entryFile())) return;
  const text = fs.readFileSync(entryFile(), 'utf8');
  expect(parseEntry(text, key)?.token, `corrupt entry: ${JSON.stringify(text.slice(0, 80))}`).toBe(TOKEN);
}

type Phase = 'holder-in-fetch' | 'holder-after-answer' | 'any-at-random';
type Found = 'lock-left' | 'temp-left' | 'stale-left' | 'entry-present' | 'nothing-held';

describe('chaos: SIGKILL at random moments', () => {
  it(
    `${RUNS} kills leave no corrupt entry, no stuck lock, no temporary file, and every other run succeeds`,
    async () => {
      const rnd = prng(SEED);
      const phases: Record<Phase, number> = {
        'holder-in-fetch': 0,
        'holder-after-answer': 0,
        'any-at-random': 0,
      };
      const found: Record<Found, number> = {
        'lock-left': 0,
        'temp-left': 0,
        'stale-left': 0,
        'entry-present': 0,
        'nothing-held': 0,
      };
      const began = performance.now();
      let kills = 0;
      let rounds = 0;
      let survivors = 0;
      while (kills < RUNS) {
        rounds++;
        const delayMs = 40 + Math.floor(rnd() * 200);
        vault.faults = [{ kind: 'delay', ms: delayMs, match: READ }];
        // A short TTL so that most rounds start with an expired entry (every run wants the
        // lock); some runs also pass --refresh; the rest are cache hits when the entry is fresh.
        const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: String(500 + Math.floor(rnd() * 1500)) };
        const readsBefore = reads();
        const phase: Phase =
          rnd() < 0.4 ? 'holder-in-fetch' : rnd() < 0.6 ? 'holder-after-answer' : 'any-at-random';
        // A holder phase needs a fetch: its first run always asks for one.
        const runs: Started[] = Array.from({ length: 3 }, (_, i) =>
          startKeybroker((i === 0 && phase !== 'any-at-random') || rnd() < 0.3 ? ['--refresh'] : [], sb, env),
        );
        const killed = new Set<number>();
        const victims = rnd() < 0.5 ? 2 : 1;
        for (let v = 0; v < victims && kills < RUNS; v++) {
          let pid: number | undefined;
          if (phase === 'any-at-random') {
            await new Promise((r) => setTimeout(r, Math.floor(rnd() * 900)));
            const pick = runs.filter((_, i) => !killed.has(i));
            const idx = runs.indexOf(pick[Math.floor(rnd() * pick.length)]!);
            pid = await runs[idx]!.pid();
            killed.add(idx);
          } else {
            // Wait for the next Vault read: its sender holds the lock.
            const seen = Math.max(reads(), readsBefore);
            if (!(await until(() => reads() > seen, 3000))) break;
            const offset =
              phase === 'holder-in-fetch' ? Math.floor(rnd() * delayMs) : delayMs + Math.floor(rnd() * 25);
            await new Promise((r) => setTimeout(r, offset));
            pid = lockHolder(lockFile());
            if (pid === undefined) continue; // released already: nothing held to kill
            const pids = await Promise.all(runs.map((r) => r.pid()));
            const idx = pids.indexOf(pid);
            if (idx < 0) continue;
            killed.add(idx);
          }
          if (!kill(pid)) continue;
          kills++;
          phases[phase]++;
          // What the killed run left behind, before anyone cleans up.
          const left = leftovers(sb.cacheDir);
          if (lockHolder(lockFile()) === pid) found['lock-left']++;
          else if (left.some((f) => f.endsWith('.tmp'))) found['temp-left']++;
          else if (left.some((f) => f.includes('.stale-'))) found['stale-left']++;
          else if (fs.existsSync(entryFile())) found['entry-present']++;
          else found['nothing-held']++;
        }
        const results = await Promise.all(runs.map((r) => r.done));
        results.forEach((r, i) => {
          if (killed.has(i)) return;
          survivors++;
          expect(
            { code: r.code, stdout: r.stdout, stderr: r.stderr },
            `round ${rounds} (seed ${SEED})`,
          ).toEqual({
            code: 0,
            stdout: `${TOKEN}\n`,
            stderr: '',
          });
        });
        expectEntryWhole();
      }
      vault.faults = [];

      // Every later run succeeds; the next run that takes the lock leaves the directory clean.
      const refresh = await startKeybroker(['--refresh'], sb).done;
      expect(refresh).toEqual({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
      const hit = await startKeybroker([], sb).done;
      expect(hit).toEqual({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
      expectEntryWhole();
      expect(fs.existsSync(lockFile())).toBe(false);
      expect(leftovers(sb.cacheDir)).toEqual([]);

      report('kills', {
        durationS: Math.round((performance.now() - began) / 1000),
        seed: SEED,
        kills,
        rounds,
        survivorsChecked: survivors,
        phases,
        leftBehindAtKill: found,
      });
    },
    60_000 + RUNS * 6_000,
  );

  it(
    'a run waiting on the lock takes it over within a second of its holder being SIGKILLed',
    async () => {
      const samples: number[] = [];
      for (let i = 0; i < RECOVERY_SAMPLES; i++) {
        // The holder's read hangs for 20 s: only its death can free the lock.
        vault.faults = [{ kind: 'delay', ms: 20_000, match: READ, times: 1 }];
        const seen = reads();
        const holder = startKeybroker(['--refresh'], sb);
        expect(await until(() => reads() > seen, 10_000)).toBe(true);
        const holderPid = await holder.pid();
        expect(lockHolder(lockFile())).toBe(holderPid);
        let waitingSince = 0;
        let recoveredAt = 0;
        const waiter = startKeybroker(['--refresh', '--debug'], sb, {}, (chunk, at) => {
          if (!waitingSince && chunk.includes('waiting for another keybroker run')) waitingSince = at;
          if (!recoveredAt && chunk.includes('recovered a lock left by a killed run')) recoveredAt = at;
        });
        // The waiter has found the lock held and is waiting on it.
        expect(await until(() => waitingSince > 0, 10_000)).toBe(true);
        await new Promise((r) => setTimeout(r, 200));
        const killedAt = performance.now();
        expect(kill(holderPid)).toBe(true);
        const w = await waiter.done;
        await holder.done;
        expect(w.code).toBe(0);
        expect(w.stdout).toBe(`${TOKEN}\n`);
        expect(w.stderr).toContain('recovered a lock left by a killed run');
        samples.push(recoveredAt - killedAt);
      }
      vault.faults = [];
      expect(fs.existsSync(lockFile())).toBe(false);
      report('lock-recovery', {
        samples: samples.length,
        medianMs: Math.round(median(samples)),
        maxMs: Math.round(Math.max(...samples)),
        goalMs: 1000,
      });
    },
    60_000 + RECOVERY_SAMPLES * 30_000,
  );
});

/** Prints a figure and keeps it in dist/chaos.json for docs/performance.md. */
function report(name: string, figures: Record<string, unknown>): void {
  const file = path.join(ROOT, 'dist', 'chaos.json');
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    // first figure
  }
  all[name] = { ...figures, runs: RUNS, at: new Date().toISOString() };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
  process.stdout.write(`chaos ${name}: ${JSON.stringify(figures)}\n`);
}

describe('leftovers of killed writers', () => {
  it('the next run that takes the lock removes temporary files and set-aside locks of dead writers only', async () => {
    // A pid that is surely dead: a process we started and reaped.
    const dead = Number(execFileSync('/bin/sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    expect(fs.existsSync(`/proc/${dead}`)).toBe(false);
    const planted = [
      `.${key}.json.${dead}.abc123.tmp`,
      `.${key}.served-1-2.${dead}.abc124.tmp`,
      `.${key}.lock.${dead}.abc125.tmp`,
      `${key}.lock.stale-${dead}-abc126`,
    ];
    const live = `.${key}.json.${process.pid}.abc127.tmp`; // a writer still at work
    const other = `.otherkey-0123.json.${dead}.abc128.tmp`; // another profile's business
    for (const f of [...planted, live, other]) {
      fs.writeFileSync(path.join(sb.cacheDir, f), '{"v":1,"key":"trunc', { mode: 0o600 });
    }
    const r = await startKeybroker(['--refresh'], sb).done;
    expect(r).toEqual({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(leftovers(sb.cacheDir).sort()).toEqual([live, other].sort());
    for (const f of [live, other]) fs.rmSync(path.join(sb.cacheDir, f));
  });
});
