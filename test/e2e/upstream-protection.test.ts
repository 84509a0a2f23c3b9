/**
 * Upstream protection end to end (contract §2 "Stale if error", issue 7 "negative caching"):
 * after Vault fails, the cache entry records the failure and a backoff horizon; until it passes,
 * no run asks Vault again while the cached token is still printed, and concurrent runs after it
 * passes make one attempt between them. dist/keybroker against the local Vault, through
 * /bin/sh -c as Claude Code runs it.
 *
 * The backoff horizon is moved by editing the entry's `backoffUntilMs` (the record this feature
 * keeps; with nothing cached, the same record beside the entry, `<key>.backoff.blob`): waiting out real 2.5-300 s steps would make the test slow and its counts depend on
 * the machine's speed.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CacheEntry } from '../../src/cache/types.js';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import { startVaultServer, type VaultServer, vaultAdmin } from '../servers/vault-server.js';

const TOKEN = 'sk-ant-api03-upstream-0001';
const TTL = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1000' };
let vault: VaultServer;
let sb: Sandbox;

beforeAll(async () => {
  vault = await startVaultServer();
  await vaultAdmin(vault.url, vault.rootToken).putKv('secret', 2, 'llm', { token: TOKEN });
});
afterAll(async () => {
  await vault.close();
});
beforeEach(() => {
  vault.faults = [];
  sb = makeSandbox({ VAULT_ADDR: vault.url, VAULT_TOKEN: vault.rootToken, ...TTL });
  sb.writeConfig({
    profiles: { default: { source: { type: 'vault', path: 'secret/llm', field: 'token' } } },
  });
});
afterEach(() => sb.cleanup());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function entryFile(): string {
  const name = fs.readdirSync(sb.cacheDir).find((f) => f.endsWith('.json'));
  if (!name) throw new Error('no cache entry');
  return path.join(sb.cacheDir, name);
}
const readEntry = (): CacheEntry => JSON.parse(fs.readFileSync(entryFile(), 'utf8')) as CacheEntry;
function patchEntry(patch: Partial<CacheEntry>): void {
  fs.writeFileSync(entryFile(), JSON.stringify({ ...readEntry(), ...patch }), { mode: 0o600 });
}

/** The backoff record kept beside the entry while nothing is cached (`<key>.backoff.blob`). */
const backoffFiles = () => fs.readdirSync(sb.cacheDir).filter((f) => f.endsWith('.backoff.blob'));
function readKept(): { failures: number; backoffUntilMs: number; retryAfterUntilMs?: number } {
  const [name] = backoffFiles();
  if (!name) throw new Error('no backoff record');
  return JSON.parse(fs.readFileSync(path.join(sb.cacheDir, name), 'utf8'));
}
function patchKept(patch: { backoffUntilMs: number }): void {
  const [name] = backoffFiles();
  fs.writeFileSync(path.join(sb.cacheDir, name!), JSON.stringify({ ...readKept(), ...patch }), {
    mode: 0o600,
  });
}

/**
 * Caches the token, then lets the entry (a stored secret, TTL 1 s) age past its TTL while Vault
 * has `faults`: the next run is the one that meets them. Returns it and the clock around it.
 */
async function failAfterTtl(faults: VaultServer['faults']) {
  const first = await runKeybroker([], sb);
  expect(first).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
  vault.faults = faults;
  await sleep(1100);
  vault.resetCounts();
  const before = Date.now();
  const run = await runKeybroker([], sb);
  return { run, before, after: Date.now() };
}

/** The one warning line of a run that printed the cached token because Vault failed. */
const STALE_WARNING =
  /^keybroker: warning: vault kv secret\/llm field token: Vault answered HTTP 503; printing the cached token fetched \d{4}-\d\d-\d\dT[\d:.]+Z\n$/;
const BACKOFF_WARNING =
  /^keybroker: warning: the vault source failed recently; printing the cached token \(fetched \d{4}-\d\d-\d\dT[\d:.]+Z\) until \d{4}-\d\d-\d\dT[\d:.]+Z\n$/;

describe('negative caching after an upstream failure', () => {
  it('a dead Vault sees one attempt per backoff step while the cached token keeps being printed', {
    timeout: 240_000,
  }, async () => {
    // Vault dies; the entry is older than the TTL.
    const { run: failed, before, after } = await failAfterTtl([{ kind: 'status', status: 503 }]);
    expect(failed.code).toBe(0);
    expect(failed.stdout).toBe(`${TOKEN}\n`);
    expect(failed.stderr).toMatch(STALE_WARNING);
    expect(vault.requests).toHaveLength(1);
    // First step: 5 s with jitter, i.e. between 2.5 and 5 s after the attempt.
    let e = readEntry();
    expect(e.failures).toBe(1);
    expect(e.backoffUntilMs).toBeGreaterThanOrEqual(before + 2500);
    expect(e.backoffUntilMs).toBeLessThanOrEqual(after + 5000);

    // Inside the step (held open far ahead here), nobody asks Vault: sequential and concurrent
    // runs all print the cached token with one warning line.
    patchEntry({ backoffUntilMs: Date.now() + 600_000 });
    const inside = [
      await runKeybroker([], sb),
      await runKeybroker([], sb),
      ...(await Promise.all(Array.from({ length: 8 }, () => runKeybroker([], sb)))),
    ];
    for (const r of inside) {
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${TOKEN}\n`);
      expect(r.stderr).toMatch(BACKOFF_WARNING);
    }
    expect(vault.requests).toHaveLength(1);
    expect(readEntry().failures).toBe(1);

    // The step is over: ten concurrent runs make exactly one attempt between them, and the
    // next step doubles (10 s with jitter: 5 to 10 s).
    patchEntry({ backoffUntilMs: Date.now() - 1 });
    const t0 = Date.now();
    const burst = await Promise.all(Array.from({ length: 10 }, () => runKeybroker([], sb)));
    const t1 = Date.now();
    for (const r of burst) {
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${TOKEN}\n`);
      expect(r.stderr).toMatch(new RegExp(`${STALE_WARNING.source}|${BACKOFF_WARNING.source}`));
    }
    expect(burst.filter((r) => STALE_WARNING.test(r.stderr))).toHaveLength(1);
    expect(vault.requests).toHaveLength(2);
    e = readEntry();
    expect(e.failures).toBe(2);
    expect(e.backoffUntilMs).toBeGreaterThanOrEqual(t0 + 5000);
    expect(e.backoffUntilMs).toBeLessThanOrEqual(t1 + 10_000);
    expect(e.token).toBe(TOKEN);

    // Vault is back: once the step is over the next run fetches, and the record is cleared.
    vault.faults = [];
    patchEntry({ backoffUntilMs: Date.now() - 1 });
    const back = await runKeybroker([], sb);
    expect(back).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    e = readEntry();
    expect(e.failures).toBeUndefined();
    expect(e.backoffUntilMs).toBeUndefined();
  });

  it("Vault's rate limit (429 with Retry-After) holds every run off Vault for the time it asked", async () => {
    // A rate limit quota refuses the read, asking for 120 s: far beyond the first step (2.5-5 s).
    const {
      run: limited,
      before,
      after,
    } = await failAfterTtl([{ kind: 'status', status: 429, retryAfter: '120', match: 'secret/data/llm' }]);
    expect(limited.code).toBe(0);
    expect(limited.stdout).toBe(`${TOKEN}\n`);
    expect(limited.stderr).toMatch(
      /^keybroker: warning: vault kv secret\/llm field token: Vault's rate limit refused the request \(HTTP 429, Retry-After 120 s\); printing the cached token fetched \d{4}-\d\d-\d\dT[\d:.]+Z\n$/,
    );
    expect(vault.requests.map((r) => r.status)).toEqual([429]);
    const e = readEntry();
    expect(e.failures).toBe(1);
    expect(e.backoffUntilMs).toBeGreaterThanOrEqual(before + 120_000);
    expect(e.backoffUntilMs).toBeLessThanOrEqual(after + 120_000);

    // Vault would answer again, but the wait it asked for has not passed: nobody asks it.
    vault.faults = [];
    const held = await Promise.all(Array.from({ length: 5 }, () => runKeybroker([], sb)));
    for (const r of held) {
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${TOKEN}\n`);
      expect(r.stderr).toMatch(BACKOFF_WARNING);
    }
    expect(vault.requests).toHaveLength(1);

    // A token had before the wait is over (here the horizon is moved; a rejected token does the
    // same) ends the wait: with the entry gone afterwards, the next run asks Vault at once.
    expect(readEntry().retryAfterUntilMs).toBe(e.backoffUntilMs);
    patchEntry({ backoffUntilMs: Date.now() - 1 });
    expect(await runKeybroker([], sb)).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(vault.requests).toHaveLength(2);
    expect(readEntry().retryAfterUntilMs).toBeUndefined();
    expect(backoffFiles()).toEqual([]);
    fs.rmSync(entryFile());
    expect(await runKeybroker([], sb)).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(vault.requests).toHaveLength(3);
  });

  it('with nothing cached, a Retry-After is honoured too: runs fail at once until it passes, --refresh asks', async () => {
    vault.faults = [{ kind: 'status', status: 429, retryAfter: '600', match: 'secret/data/llm' }];
    const limited = await runKeybroker([], sb);
    expect(limited).toMatchObject({ code: 3, stdout: '' });
    expect(limited.stderr).toBe(
      "keybroker: vault kv secret/llm field token: Vault's rate limit refused the request (HTTP 429, Retry-After 600 s) (keybroker waits before asking again; if it persists, ask the Vault operators about the rate limit quota on secret/data/llm; run keybroker explain ERR_VAULT_RATE_LIMITED)\n",
    );
    const untilMs = readKept().backoffUntilMs;
    expect(untilMs).toBeGreaterThan(Date.now() + 590_000);
    expect(readKept().retryAfterUntilMs).toBe(untilMs);

    // Vault would answer now, but it asked for ten minutes: sequential and concurrent runs fail
    // at once with one line each, and none of them asks Vault.
    vault.faults = [];
    vault.resetCounts();
    const held = [
      await runKeybroker([], sb),
      ...(await Promise.all(Array.from({ length: 5 }, () => runKeybroker([], sb)))),
    ];
    for (const r of held) {
      expect(r).toMatchObject({ code: 3, stdout: '' });
      expect(r.stderr).toBe(
        `keybroker: the vault source asked to wait (Retry-After): not asking it again before ${new Date(untilMs).toISOString()} (wait until then, or run keybroker --refresh to ask at once; run keybroker explain ERR_SOURCE_RETRY_AFTER)\n`,
      );
    }
    expect(vault.requests).toHaveLength(0);

    // A person asking at once is let through; the wait is over once a token is had.
    const refreshed = await runKeybroker(['--refresh'], sb);
    expect(refreshed).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(backoffFiles()).toEqual([]);
  });

  it('once the wait has passed the next run asks again and forgets it', async () => {
    vault.faults = [{ kind: 'status', status: 429, retryAfter: '1', match: 'secret/data/llm' }];
    expect((await runKeybroker([], sb)).code).toBe(3);
    // A Retry-After shorter than the first step does not shorten it: the step is moved here.
    expect(readKept().retryAfterUntilMs).toBeLessThan(readKept().backoffUntilMs);
    vault.faults = [];
    patchKept({ backoffUntilMs: Date.now() - 1 });
    const after = await runKeybroker([], sb);
    expect(after).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(backoffFiles()).toEqual([]);
  });

  /**
   * A fetch time within a second of `t` whose entry starts its refresh ahead at the very start
   * of the last quarter (each entry has its own point in it, from fetchedAtMs; see
   * refreshPoint in src/cache/policy.ts).
   */
  const fullQuarter = (t: number) => t - (t % 997) + 996;

  it('a token still inside its refresh-ahead window is served silently while the source is in backoff', async () => {
    // TTL 400 s: the entry is usable for 400 s and refreshed ahead in its last 100 s.
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '400000' };
    expect((await runKeybroker([], sb, { env })).code).toBe(0);
    vault.faults = [{ kind: 'status', status: 503 }];
    vault.resetCounts();
    // Into the last quarter: the refresh fails, the still-valid token is printed with a warning.
    patchEntry({ fetchedAtMs: fullQuarter(Date.now() - 320_000) });
    const refresh = await runKeybroker([], sb, { env });
    expect(refresh.code).toBe(0);
    expect(refresh.stdout).toBe(`${TOKEN}\n`);
    expect(refresh.stderr).toBe(
      'keybroker: warning: refreshing the token failed (ERR_VAULT_SERVER_ERROR); printing the cached token, still valid\n',
    );
    expect(vault.requests).toHaveLength(1);
    expect(readEntry().failures).toBe(1);
    // In backoff the next runs are plain cache hits: no attempt, no warning.
    patchEntry({ fetchedAtMs: fullQuarter(Date.now() - 320_000), backoffUntilMs: Date.now() + 600_000 });
    const hits = await Promise.all(Array.from({ length: 5 }, () => runKeybroker([], sb, { env })));
    for (const r of hits) expect(r).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(vault.requests).toHaveLength(1);
  });

  it('a source that answers "denied" is believed: nothing stale is printed and no backoff is recorded', async () => {
    const { run: r } = await failAfterTtl([{ kind: 'status', status: 403 }]);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(fs.readdirSync(sb.cacheDir).filter((f) => f.endsWith('.json'))).toEqual([]);
  });
});

/**
 * A TCP relay in front of the local Vault that can stop listening, so that its port refuses
 * connections as a Vault that went down does, and listen again on the same port.
 */
async function startRelay(target: string) {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const up = async () => {
    server = net.createServer((client) => {
      const upstream = net.connect(Number(targetPort), hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  };
  const down = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server!.close(() => r()));
  };
  await up();
  return { url: `http://127.0.0.1:${port}`, up, down };
}

describe('backoff with nothing cached (contract §2 "Backoff, whatever is cached")', () => {
  it('Vault answering 503, then refusing connections: runs inside the window fail at once without a request; --refresh asks; after the window one attempt', {
    timeout: 240_000,
  }, async () => {
    const relay = await startRelay(vault.url);
    try {
      const env = { VAULT_ADDR: relay.url };
      const held = (n: number, untilMs: number) =>
        `keybroker: the vault source failed on its last ${n === 1 ? 'attempt' : `${n} attempts`}: not asking it again before ${new Date(untilMs).toISOString()} (wait until then, or run keybroker --refresh to ask at once; run keybroker explain ERR_SOURCE_BACKOFF)\n`;
      const refused = `keybroker: vault at ${relay.url}: connection refused (check VAULT_ADDR (or the profile's address) and that Vault is running and reachable; run keybroker explain ERR_VAULT_UNREACHABLE)\n`;

      // Vault answers 503: the first run asks and fails; a short step is kept beside the entry.
      vault.faults = [{ kind: 'status', status: 503, match: 'secret/data/llm' }];
      vault.resetCounts();
      const before = Date.now();
      const first = await runKeybroker([], sb, { env });
      expect(first).toMatchObject({ code: 3, stdout: '' });
      expect(first.stderr).toBe(
        'keybroker: vault kv secret/llm field token: Vault answered HTTP 503 (retry later, and check that VAULT_ADDR points at a healthy Vault node; run keybroker explain ERR_VAULT_SERVER_ERROR)\n',
      );
      const asked = vault.count('GET', 'secret/data/llm');
      expect(asked).toBe(1);
      let kept = readKept();
      // First step without a token: 10 s, jittered between 5 and 10 s.
      expect(kept.failures).toBe(1);
      expect(kept.backoffUntilMs).toBeGreaterThanOrEqual(before + 5_000);
      expect(kept.backoffUntilMs).toBeLessThanOrEqual(Date.now() + 10_000);

      // Inside the window (held open here): sequential and concurrent runs fail at once, one
      // line each, and none of them asks Vault.
      patchKept({ backoffUntilMs: Date.now() + 600_000 });
      kept = readKept();
      const inside = [
        await runKeybroker([], sb, { env }),
        ...(await Promise.all(Array.from({ length: 5 }, () => runKeybroker([], sb, { env })))),
      ];
      for (const r of inside)
        expect(r).toMatchObject({ code: 3, stdout: '', stderr: held(1, kept.backoffUntilMs) });
      expect(vault.count('GET', 'secret/data/llm')).toBe(asked);

      // Vault goes down: its port refuses. --refresh asks at once (and counts the failure).
      await relay.down();
      expect(await runKeybroker(['--refresh'], sb, { env })).toMatchObject({
        code: 3,
        stdout: '',
        stderr: refused,
      });
      expect(readKept().failures).toBe(2);

      // After the window, one attempt: refused again; the next step is up to 40 s.
      patchKept({ backoffUntilMs: Date.now() - 1 });
      const t0 = Date.now();
      expect(await runKeybroker([], sb, { env })).toMatchObject({ code: 3, stdout: '', stderr: refused });
      kept = readKept();
      expect(kept.failures).toBe(3);
      expect(kept.backoffUntilMs).toBeGreaterThanOrEqual(t0 + 20_000);
      expect(kept.backoffUntilMs).toBeLessThanOrEqual(Date.now() + 40_000);
      expect(await runKeybroker([], sb, { env })).toMatchObject({
        code: 3,
        stdout: '',
        stderr: held(3, kept.backoffUntilMs),
      });

      // Vault is back. Inside the window nobody asks it; once the window is over one run asks,
      // gets the token, and the record is gone.
      vault.faults = [];
      await relay.up();
      vault.resetCounts();
      expect(await runKeybroker([], sb, { env })).toMatchObject({
        code: 3,
        stdout: '',
        stderr: held(3, kept.backoffUntilMs),
      });
      expect(vault.count('GET', 'secret/data/llm')).toBe(0);
      patchKept({ backoffUntilMs: Date.now() - 1 });
      expect(await runKeybroker([], sb, { env })).toMatchObject({
        code: 0,
        stdout: `${TOKEN}\n`,
        stderr: '',
      });
      expect(vault.count('GET', 'secret/data/llm')).toBe(1);
      expect(backoffFiles()).toEqual([]);
    } finally {
      vault.faults = [];
      await relay.down().catch(() => {});
    }
  });

  it('--refresh inside the window asks and its token ends the backoff', async () => {
    vault.faults = [{ kind: 'status', status: 503, match: 'secret/data/llm' }];
    expect((await runKeybroker([], sb)).code).toBe(3);
    patchKept({ backoffUntilMs: Date.now() + 600_000 });
    vault.faults = [];
    vault.resetCounts();
    expect(await runKeybroker(['--refresh'], sb)).toMatchObject({
      code: 0,
      stdout: `${TOKEN}\n`,
      stderr: '',
    });
    expect(vault.count('GET', 'secret/data/llm')).toBe(1);
    expect(backoffFiles()).toEqual([]);
    expect(await runKeybroker([], sb)).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
  });
});
