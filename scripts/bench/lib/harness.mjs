// The bench harness: what scripts/bench.mjs hands to every module in scripts/bench/, and what
// a module run on its own (`node scripts/bench/aws.mjs`) builds for itself. Each comparison
// alternates its two commands (a, b, a, b, ...) so machine noise hits both alike, and reports
// the ratio of medians a/b.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs one command (a string goes through /bin/sh -c, as Claude Code runs it); its time in ms. */
export function timeOnce(c) {
  const t0 = process.hrtime.bigint();
  const r =
    typeof c.cmd === 'string'
      ? // Through `timeout`, so each run has a caller of its own, as each Claude Code process does
        // (the same caller asking again within its TTL would be a rejected token, not a hit).
        spawnSync('timeout', ['120', '/bin/sh', '-c', c.cmd], {
          env: c.env ?? process.env,
          stdio: ['pipe', 'pipe', 'pipe'],
        })
      : spawnSync(c.cmd[0], c.cmd.slice(1), { env: c.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 && !c.allowFail) {
    throw new Error(`${c.label} exited ${r.status}: ${String(r.stderr).slice(0, 300)}`);
  }
  return ms;
}

/** `runs`: alternations per comparison; `only`: run only comparisons whose name contains it. */
export function createHarness({ runs, only = '' }) {
  const results = [];
  return {
    root,
    bin: path.join(root, 'dist', 'keybroker'),
    runs,
    only,
    results,
    /** Alternates a and b `runs` times (after one warm-up each); records the ratio of medians. */
    compare(name, { a, b, runs: n = runs, before }) {
      if (only && !name.includes(only)) return undefined;
      timeOnce(a);
      timeOnce(b);
      const ta = [];
      const tb = [];
      for (let i = 0; i < n; i++) {
        before?.('a');
        ta.push(timeOnce(a));
        before?.('b');
        tb.push(timeOnce(b));
      }
      const row = {
        name,
        a: a.label,
        b: b.label,
        ratio: median(ta) / median(tb),
        aMedianMs: median(ta),
        bMedianMs: median(tb),
        runs: n,
      };
      results.push(row);
      process.stdout.write(
        `${name}\n  ${a.label}: median ${row.aMedianMs.toFixed(1)} ms | ${b.label}: median ${row.bMedianMs.toFixed(1)} ms | ratio ${row.ratio.toFixed(2)}\n`,
      );
      return row;
    },
    /** A private sandbox (HOME, XDG dirs) with an environment for running keybroker. */
    sandbox(name) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kb-bench-${name}-`));
      const home = path.join(dir, 'home');
      fs.mkdirSync(path.join(home, '.config', 'keybroker'), { recursive: true, mode: 0o700 });
      const env = {
        PATH: process.env.PATH,
        HOME: home,
        XDG_CONFIG_HOME: path.join(home, '.config'),
        XDG_CACHE_HOME: path.join(home, '.cache'),
        XDG_STATE_HOME: path.join(home, '.local', 'state'),
        KEYBROKER_MANAGED_CONFIG: path.join(dir, 'managed.json'),
      };
      return {
        dir,
        home,
        env,
        writeConfig(cfg) {
          fs.writeFileSync(path.join(home, '.config', 'keybroker', 'config.json'), JSON.stringify(cfg), {
            mode: 0o600,
          });
        },
        cleanup() {
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}
