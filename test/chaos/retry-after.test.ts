/**
 * Retry-After (issue 7, upstream protection): when a source's error carries the seconds the
 * upstream asked us to wait (KeybrokerError.retryAfterSec, e.g. from an HTTP 429), the broker's
 * negative cache holds at least that long: no attempt before it, the cached token printed
 * meanwhile. The source is replaced by a counting fake; the broker, policy and file store are
 * the real ones on a fake clock.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { getToken } from '../../src/broker/broker.js';
import type { CacheEntry } from '../../src/cache/types.js';
import type { ResolvedProfile } from '../../src/config/types.js';
import type { AppContext } from '../../src/context.js';
import { unreachableError } from '../../src/errors.js';
import { createLogger } from '../../src/output/logger.js';

const upstream = vi.hoisted(() => ({
  calls: 0,
  fail: undefined as undefined | (() => Error),
}));

vi.mock('../../src/sources/index.js', () => ({
  createSource: async () => ({
    describe: () => 'fake upstream',
    async getToken() {
      upstream.calls++;
      if (upstream.fail) throw upstream.fail();
      return { value: `sk-fake-${upstream.calls}`, source: 'vault' };
    },
  }),
}));

let dir: string;
let nowMs: number;
let warnings: string[];

function ctx(): AppContext {
  return {
    env: { KEYBROKER_CACHE_DIR: path.join(dir, 'cache') },
    now: () => nowMs,
    platform: process.platform,
    homeDir: dir,
    cwd: dir,
    userName: 'tester',
    hostName: 'host',
    logger: createLogger({ debug: false, write: (l) => warnings.push(l) }),
    stdout: () => {},
    execPath: '/usr/bin/keybroker',
    stdinIsTTY: false,
    readStdin: async () => '',
    globals: { debug: false },
    version: 'test',
    commit: 'test',
  };
}

const resolved: ResolvedProfile = {
  name: 'default',
  source: { type: 'vault', path: 'secret/llm', field: 'token' } as ResolvedProfile['source'],
  ttlMs: 300_000,
  ttlOrigin: 'default',
  timeoutMs: 8000,
  cache: {
    storage: 'file',
    refreshMarginMs: 120_000,
    staleIfErrorMs: 3_600_000,
    minRefreshIntervalMs: 10_000,
  },
  audit: { enabled: false, file: null },
  cacheKey: 'default-0123456789abcdef',
  identity: 'tester',
  policy: { lockdown: false, environmentDefaults: true, maxLifetimeSec: 86_400 },
  get cacheDir() {
    return path.join(dir, 'cache');
  },
  warnings: [],
} as ResolvedProfile;

const run = () => getToken(ctx(), resolved, { refresh: false, noCache: false, invocationStartMs: nowMs });
const entry = (): CacheEntry =>
  JSON.parse(fs.readFileSync(path.join(dir, 'cache', `${resolved.cacheKey}.json`), 'utf8')) as CacheEntry;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-retry-after-'));
  fs.chmodSync(dir, 0o700);
  nowMs = Date.now();
  warnings = [];
  upstream.calls = 0;
  upstream.fail = undefined;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Retry-After', () => {
  it('is honoured: no attempt until it has passed, the cached token printed meanwhile', async () => {
    expect((await run()).token).toBe('sk-fake-1');
    // The stored secret is older than the TTL; the upstream now answers 429 Retry-After: 120.
    nowMs += 301_000;
    upstream.fail = () =>
      unreachableError('ERR_VAULT_SERVER_ERROR', 'vault: Vault answered HTTP 429', { retryAfterSec: 120 });
    const failedAt = nowMs;
    const stale = await run();
    expect(stale).toMatchObject({ token: 'sk-fake-1', cache: 'stale' });
    expect(upstream.calls).toBe(2);
    // 120 s, more than the first backoff step (at most 5 s) would have held.
    expect(entry().backoffUntilMs).toBe(failedAt + 120_000);

    for (const dt of [1_000, 60_000, 119_999]) {
      nowMs = failedAt + dt;
      expect(await run()).toMatchObject({ token: 'sk-fake-1', cache: 'stale' });
    }
    expect(upstream.calls).toBe(2);

    // Once it has passed, one attempt; the upstream has recovered.
    upstream.fail = undefined;
    nowMs = failedAt + 120_000;
    expect(await run()).toMatchObject({ token: 'sk-fake-3', cache: 'miss' });
    expect(upstream.calls).toBe(3);
    expect(entry().backoffUntilMs).toBeUndefined();
  });

  it('a Retry-After shorter than the backoff step does not shorten it', async () => {
    expect((await run()).token).toBe('sk-fake-1');
    nowMs += 301_000;
    upstream.fail = () =>
      unreachableError('ERR_VAULT_SERVER_ERROR', 'vault: Vault answered HTTP 429', { retryAfterSec: 1 });
    const failedAt = nowMs;
    await run();
    const until = entry().backoffUntilMs!;
    // First step: 5 s with jitter (2.5 to 5 s), never the 1 s asked for.
    expect(until - failedAt).toBeGreaterThanOrEqual(2_500);
    expect(until - failedAt).toBeLessThanOrEqual(5_000);
  });
});
