/**
 * The token engine (src/broker/engine.ts) against contract §2, branch by branch: a scripted
 * fake source, a fake clock, an in-memory store, an in-process lock and served-record log.
 * No process is spawned; nothing here waits on real time except the timeout test's few ms.
 */
import { describe, expect, it } from 'vitest';
import {
  type CachedSourceConfig,
  type CachedSourceDeps,
  type CachedTokenRequest,
  createCachedSource,
  type ServedLog,
} from '../../src/broker/engine.js';
import { fingerprint } from '../../src/cache/entry.js';
import { BACKOFF, nextRefreshMs, type ServedRecord } from '../../src/cache/policy.js';
import type { CacheEntry, CacheStore } from '../../src/cache/types.js';
import { deniedError, isKeybrokerError, missingError, unreachableError } from '../../src/errors.js';
import type { FetchedToken, Source, TokenRequest } from '../../src/sources/types.js';

const T0 = Date.parse('2026-12-04T09:00:00.000Z');
const TTL = 300_000;
const MARGIN = 120_000;
const KEY = 'default-0123456789abcdef';

type Step = FetchedToken | Error | ((r: TokenRequest) => Promise<FetchedToken>);

function fakeSource(steps: Step[] = []) {
  const calls: TokenRequest[] = [];
  let n = 0;
  const source: Source = {
    type: 'vault',
    describe: () => 'fake vault',
    async getToken(r) {
      calls.push(r);
      n++;
      const step = steps.shift() ?? { value: `sk-token-${n}` };
      if (step instanceof Error) throw step;
      if (typeof step === 'function') return step(r);
      return step;
    },
  };
  return { source, calls };
}

function memoryStore(kind: CacheStore['kind'] = 'file') {
  const entries = new Map<string, CacheEntry>();
  const blobs = new Map<string, string>();
  const store: CacheStore = {
    kind,
    read: async (k) => {
      const e = entries.get(k);
      return e ? structuredClone(e) : undefined;
    },
    write: async (k, e) => {
      entries.set(k, structuredClone(e));
    },
    delete: async (k) => {
      entries.delete(k);
    },
    readBlob: async (n) => blobs.get(n),
    writeBlob: async (n, d) => {
      blobs.set(n, d);
    },
    deleteBlob: async (n) => {
      blobs.delete(n);
    },
    listKeys: async () => [...entries.keys()],
  };
  return { store, entries, blobs };
}

/** One in-process mutex per key, standing in for the lock file. */
function memoryLock() {
  const queues = new Map<string, Promise<void>>();
  let taken = 0;
  const lock: NonNullable<CachedSourceDeps['lock']> = async (key) => {
    const prev = queues.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    queues.set(
      key,
      prev.then(() => mine),
    );
    await prev;
    taken++;
    return { recovered: false, waitedMs: 0, release };
  };
  return { lock, taken: () => taken };
}

function memoryServed() {
  const records = new Map<string, ServedRecord>();
  const log: ServedLog = {
    read: (k, c) => records.get(`${k}/${c}`),
    write: (k, c, r) => {
      records.set(`${k}/${c}`, r);
    },
    prune: () => {},
  };
  return { log, records };
}

interface Harness {
  clock: { now: number };
  store: ReturnType<typeof memoryStore>;
  lock: ReturnType<typeof memoryLock>;
  served: ReturnType<typeof memoryServed>;
  warnings: string[];
  src: ReturnType<typeof fakeSource>;
  deps: CachedSourceDeps;
  config: CachedSourceConfig;
  get(req?: Partial<CachedTokenRequest>): ReturnType<ReturnType<typeof createCachedSource>['getToken']>;
  entry(): CacheEntry | undefined;
}

function harness(
  steps: Step[] = [],
  o: { staleIfErrorMs?: number; timeoutMs?: number; storeKind?: CacheStore['kind']; noLock?: boolean } = {},
): Harness {
  const clock = { now: T0 };
  const store = memoryStore(o.storeKind);
  const lock = memoryLock();
  const served = memoryServed();
  const warnings: string[] = [];
  const src = fakeSource(steps);
  const deps: CachedSourceDeps = {
    store: store.store,
    ...(o.noLock ? {} : { lock: lock.lock, served: served.log }),
    now: () => clock.now,
    random: () => 0.5,
    log: { debug: () => {}, warn: (m) => warnings.push(m), addSecret: () => {} },
  };
  const config: CachedSourceConfig = {
    key: KEY,
    profile: 'default',
    sourceType: 'vault',
    params: { ttlMs: TTL, marginMs: MARGIN, staleIfErrorMs: o.staleIfErrorMs ?? 3_600_000 },
    minRefreshIntervalMs: 10_000,
    timeoutMs: o.timeoutMs ?? 8000,
  };
  const engine = createCachedSource(src.source, config, deps);
  return {
    clock,
    store,
    lock,
    served,
    warnings,
    src,
    deps,
    config,
    get: (req = {}) => engine.getToken({ refresh: false, invocationStartMs: clock.now, ...req }),
    entry: () => store.entries.get(KEY),
  };
}

const unreachable = (retryAfterSec?: number) =>
  unreachableError('ERR_VAULT_UNREACHABLE', 'Vault at http://vault cannot be reached', {
    hint: 'check the network',
    ...(retryAfterSec !== undefined ? { retryAfterSec } : {}),
  });

async function rejection(p: Promise<unknown>): Promise<{ code: string; exitCode: number; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isKeybrokerError(e)) return { code: e.code, exitCode: e.exitCode, message: e.message };
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('engine: fresh entries and misses', () => {
  it('with nothing cached it fetches once, stores the entry and reports a miss', async () => {
    const h = harness();
    const r = await h.get();
    expect(r).toEqual({
      token: 'sk-token-1',
      fetchedAtMs: T0,
      source: 'vault',
      profile: 'default',
      cache: 'miss',
    });
    expect(h.src.calls).toHaveLength(1);
    expect(h.entry()).toEqual({
      v: 1,
      key: KEY,
      profile: 'default',
      source: 'vault',
      token: 'sk-token-1',
      fingerprint: fingerprint('sk-token-1'),
      fetchedAtMs: T0,
    });
  });

  it('a fresh stored secret is served without asking the source or taking the lock', async () => {
    const h = harness();
    await h.get();
    h.clock.now += TTL / 2;
    const r = await h.get();
    expect(r.cache).toBe('hit');
    expect(r.token).toBe('sk-token-1');
    expect(h.src.calls).toHaveLength(1);
    expect(h.lock.taken()).toBe(1);
  });

  it('a stored secret older than the TTL is fetched again', async () => {
    const h = harness();
    await h.get();
    h.clock.now += TTL;
    const r = await h.get();
    expect(r).toMatchObject({ token: 'sk-token-2', cache: 'miss' });
  });

  it('a token with its own expiry is served only while it stays valid for TTL + margin', async () => {
    const exp = T0 + 2 * TTL + MARGIN;
    const h = harness([
      { value: 'jwt-1', expiresAtMs: exp },
      { value: 'jwt-2', expiresAtMs: exp + TTL },
    ]);
    expect((await h.get()).cache).toBe('miss');
    h.clock.now = T0 + TTL / 2;
    expect((await h.get()).token).toBe('jwt-1');
    h.clock.now = exp - (TTL + MARGIN);
    const r = await h.get();
    expect(r).toMatchObject({ token: 'jwt-2', cache: 'miss', expiresAtMs: exp + TTL });
  });

  it('a value that is not printable ASCII is refused, and nothing is cached', async () => {
    const h = harness([{ value: 'bad token\u0007' }]);
    const e = await rejection(h.get());
    expect(e.exitCode).not.toBe(0);
    expect(h.entry()).toBeUndefined();
  });

  it('--refresh skips a fresh entry and replaces it (cache "refresh")', async () => {
    const h = harness();
    await h.get();
    h.clock.now += 1;
    const r = await h.get({ refresh: true });
    expect(r).toMatchObject({ token: 'sk-token-2', cache: 'refresh' });
    expect(h.src.calls[1]!.forceFresh).toBe(true);
    expect(h.entry()!.token).toBe('sk-token-2');
  });

  it('a source given as a factory is made only when it must be asked', async () => {
    const h = harness();
    await h.get();
    let made = 0;
    const lazy = createCachedSource(
      async () => {
        made++;
        return h.src.source;
      },
      h.config,
      h.deps,
    );
    expect((await lazy.getToken({ refresh: false, invocationStartMs: T0 })).cache).toBe('hit');
    expect(made).toBe(0);
  });
});

describe('engine: tokens that live less than TTL + margin (contract §2)', () => {
  const SHORT_MESSAGE =
    'vault source of profile default: the token is valid for 300 s, less than TTL + margin (420 s)';

  it('the first is a configuration error (exit 2); the token is kept, marked, and never printed', async () => {
    const h = harness([{ value: 'short', expiresAtMs: T0 + TTL }]);
    expect(await rejection(h.get())).toEqual({
      code: 'ERR_TOKEN_LIFETIME_TOO_SHORT',
      exitCode: 2,
      message: SHORT_MESSAGE,
    });
    expect(h.entry()).toMatchObject({ token: 'short', expiresAtMs: T0 + TTL, shortLivedFromMs: T0 });
  });

  it('until it expires, runs fail the same way at once without asking the source', async () => {
    const h = harness([{ value: 'short', expiresAtMs: T0 + TTL }]);
    await rejection(h.get());
    for (const later of [1000, 60_000, TTL - 1]) {
      h.clock.now = T0 + later;
      expect(await rejection(h.get())).toEqual({
        code: 'ERR_TOKEN_LIFETIME_TOO_SHORT',
        exitCode: 2,
        message: SHORT_MESSAGE,
      });
    }
    expect(h.src.calls).toHaveLength(1);
    expect(h.lock.taken()).toBe(1);
  });

  it('once it has expired the source is asked again, and a token that lives long enough is printed', async () => {
    const h = harness([
      { value: 'short', expiresAtMs: T0 + TTL },
      { value: 'long', expiresAtMs: T0 + TTL + 2 * TTL + MARGIN },
    ]);
    await rejection(h.get());
    h.clock.now = T0 + TTL;
    expect(await h.get()).toMatchObject({ token: 'long', cache: 'miss' });
    expect(h.src.calls).toHaveLength(2);
    expect(h.entry()!.shortLivedFromMs).toBeUndefined();
  });

  it('--refresh asks at once', async () => {
    const h = harness([
      { value: 'short', expiresAtMs: T0 + TTL },
      { value: 'long', expiresAtMs: T0 + 3 * TTL },
    ]);
    await rejection(h.get());
    h.clock.now += 1000;
    expect(await h.get({ refresh: true })).toMatchObject({ token: 'long', cache: 'refresh' });
  });

  it('a lower TTL (not part of the cache key) makes the kept token printable at once', async () => {
    const h = harness([{ value: 'short', expiresAtMs: T0 + TTL }]);
    await rejection(h.get());
    h.clock.now = T0 + 10_000;
    const lowerTtl = createCachedSource(
      h.src.source,
      { ...h.config, params: { ...h.config.params, ttlMs: 120_000 } },
      h.deps,
    );
    expect(await lowerTtl.getToken({ refresh: false, invocationStartMs: h.clock.now })).toMatchObject({
      token: 'short',
      cache: 'hit',
    });
    expect(h.src.calls).toHaveLength(1);
  });

  it('concurrent runs ask once between them and all fail the same way', async () => {
    const h = harness([
      async () => {
        await new Promise((r) => setTimeout(r, 20));
        return { value: 'short', expiresAtMs: T0 + TTL };
      },
    ]);
    const results = await Promise.all([rejection(h.get()), rejection(h.get()), rejection(h.get())]);
    expect(results.map((r) => r.code)).toEqual([
      'ERR_TOKEN_LIFETIME_TOO_SHORT',
      'ERR_TOKEN_LIFETIME_TOO_SHORT',
      'ERR_TOKEN_LIFETIME_TOO_SHORT',
    ]);
    expect(h.src.calls).toHaveLength(1);
  });

  it('a refresh ahead that brings one prints the cached token, warns once and backs off', async () => {
    const exp = T0 + 2 * TTL + MARGIN;
    const h = harness([{ value: 'jwt-1', expiresAtMs: exp }]);
    await h.get();
    h.clock.now = nextRefreshMs(h.entry()!, h.config.params);
    h.src.source.getToken = async (r) => {
      h.src.calls.push(r);
      return { value: 'short', expiresAtMs: h.clock.now + TTL };
    };
    expect(await h.get()).toMatchObject({ token: 'jwt-1', cache: 'hit' });
    expect(h.warnings).toEqual([
      'warning: refreshing the token failed (ERR_TOKEN_LIFETIME_TOO_SHORT); printing the cached token, still valid',
    ]);
    expect(h.entry()).toMatchObject({ token: 'jwt-1', failures: 1 });
    h.clock.now += 1000;
    expect(await h.get()).toMatchObject({ token: 'jwt-1', cache: 'hit' });
    expect(h.src.calls).toHaveLength(2);
    expect(h.warnings).toHaveLength(1);
  });
});

describe('engine: refresh ahead', () => {
  it('inside the last quarter the token is refreshed during the run (cache "refresh")', async () => {
    const h = harness();
    await h.get();
    h.clock.now = nextRefreshMs(h.entry()!, h.config.params);
    const r = await h.get();
    expect(r).toMatchObject({ token: 'sk-token-2', cache: 'refresh' });
  });

  it('a failed refresh still prints the cached token (exit 0, one warning) and starts a backoff', async () => {
    const h = harness([{ value: 'sk-first' }, unreachable()]);
    await h.get();
    h.clock.now = nextRefreshMs(h.entry()!, h.config.params);
    const r = await h.get();
    expect(r).toMatchObject({ token: 'sk-first', cache: 'hit' });
    expect(h.warnings).toEqual([
      'warning: refreshing the token failed (ERR_VAULT_UNREACHABLE); printing the cached token, still valid',
    ]);
    // random() = 0.5: half the step plus half of the other half.
    expect(h.entry()).toMatchObject({
      failures: 1,
      backoffUntilMs: h.clock.now + BACKOFF.withToken.baseMs * 0.75,
    });
  });

  it('during that backoff the entry is served silently without asking again', async () => {
    const h = harness([{ value: 'sk-first' }, unreachable()]);
    await h.get();
    h.clock.now = nextRefreshMs(h.entry()!, h.config.params);
    await h.get();
    h.clock.now += 1000;
    const r = await h.get();
    expect(r).toMatchObject({ token: 'sk-first', cache: 'hit' });
    expect(h.src.calls).toHaveLength(2);
  });
});

describe('engine: stale if error', () => {
  it('an expired stored secret is printed with a warning when the source cannot be reached', async () => {
    const h = harness([{ value: 'sk-old' }, unreachable()]);
    await h.get();
    h.clock.now += TTL + 1;
    const r = await h.get();
    expect(r).toMatchObject({ token: 'sk-old', cache: 'stale' });
    expect(h.warnings).toEqual([
      'warning: Vault at http://vault cannot be reached; printing the cached token fetched 2026-12-04T09:00:00.000Z',
    ]);
  });

  it('a stored secret older than staleIfErrorMs is not printed: the error stands (exit 3)', async () => {
    const h = harness([{ value: 'sk-old' }, unreachable()], { staleIfErrorMs: 600_000 });
    await h.get();
    h.clock.now += 600_000;
    expect(await rejection(h.get())).toMatchObject({ code: 'ERR_VAULT_UNREACHABLE', exitCode: 3 });
    expect(h.entry()).toMatchObject({ token: 'sk-old', failures: 1 });
  });

  it('staleIfErrorMs 0 turns stale serving off', async () => {
    const h = harness([{ value: 'sk-old' }, unreachable()], { staleIfErrorMs: 0 });
    await h.get();
    h.clock.now += TTL + 1;
    expect((await rejection(h.get())).code).toBe('ERR_VAULT_UNREACHABLE');
  });

  it('a token with its own expiry is served stale only until it expires', async () => {
    const exp = T0 + 2 * TTL + MARGIN;
    const h = harness([{ value: 'jwt-1', expiresAtMs: exp }, unreachable(), unreachable()]);
    await h.get();
    h.clock.now = exp - 1000;
    expect((await h.get()).cache).toBe('stale');
    h.clock.now = exp + BACKOFF.withToken.maxMs;
    expect((await rejection(h.get())).exitCode).toBe(3);
  });

  it('"denied" is believed: the error stands and the cached entry is dropped', async () => {
    const h = harness([{ value: 'sk-old' }, deniedError('ERR_VAULT_DENIED', 'Vault said permission denied')]);
    await h.get();
    h.clock.now += TTL + 1;
    expect(await rejection(h.get())).toMatchObject({ code: 'ERR_VAULT_DENIED', exitCode: 4 });
    expect(h.entry()).toBeUndefined();
  });

  it('"not found" is believed too (exit 5)', async () => {
    const h = harness([{ value: 'sk-old' }, missingError('ERR_VAULT_NOT_FOUND', 'no secret at secret/llm')]);
    await h.get();
    h.clock.now += TTL + 1;
    expect(await rejection(h.get())).toMatchObject({ code: 'ERR_VAULT_NOT_FOUND', exitCode: 5 });
    expect(h.entry()).toBeUndefined();
  });

  it('a source that ignores the deadline ends in ERR_TIMEOUT, its signal aborted', async () => {
    const h = harness(
      [
        (r) =>
          new Promise((_, reject) => {
            r.signal.addEventListener('abort', () => reject(new Error('aborted')));
          }),
      ],
      { timeoutMs: 20 },
    );
    expect(await rejection(h.get())).toMatchObject({ code: 'ERR_TIMEOUT', exitCode: 3 });
    expect(h.src.calls[0]!.signal.aborted).toBe(true);
    expect(h.src.calls[0]!.deadlineMs).toBe(T0 + 20);
  });

  it('an unexpected throw is an internal error naming the source, not a crash', async () => {
    const h = harness([new TypeError('oops')]);
    expect(await rejection(h.get())).toMatchObject({
      code: 'ERR_INTERNAL',
      message: 'vault source of profile default: unexpected TypeError',
    });
  });
});

describe('engine: backoff', () => {
  it('inside the backoff window an expired entry is served stale without asking the source', async () => {
    const h = harness([{ value: 'sk-old' }, unreachable()]);
    await h.get();
    h.clock.now += TTL + 1;
    await h.get();
    const until = h.entry()!.backoffUntilMs!;
    h.clock.now = until - 1;
    h.warnings.length = 0;
    const r = await h.get();
    expect(r).toMatchObject({ token: 'sk-old', cache: 'stale' });
    expect(h.src.calls).toHaveLength(2);
    expect(h.warnings).toEqual([
      `warning: the vault source failed recently; printing the cached token (fetched 2026-12-04T09:00:00.000Z) until ${new Date(until).toISOString()}`,
    ]);
  });

  it('consecutive failures double the step; a success clears the count', async () => {
    const h = harness([{ value: 'sk-old' }, unreachable(), unreachable()]);
    await h.get();
    h.clock.now += TTL + 1;
    await h.get();
    h.clock.now = h.entry()!.backoffUntilMs!;
    await h.get();
    expect(h.entry()).toMatchObject({
      failures: 2,
      backoffUntilMs: h.clock.now + 2 * BACKOFF.withToken.baseMs * 0.75,
    });
    h.clock.now = h.entry()!.backoffUntilMs!;
    const r = await h.get();
    expect(r).toMatchObject({ token: 'sk-token-4', cache: 'miss' });
    expect(h.entry()!.failures).toBeUndefined();
  });

  it('--refresh asks even inside the backoff window', async () => {
    const h = harness([{ value: 'sk-old' }, unreachable()]);
    await h.get();
    h.clock.now += TTL + 1;
    await h.get();
    const r = await h.get({ refresh: true });
    expect(r).toMatchObject({ token: 'sk-token-3', cache: 'refresh' });
  });
});

describe('engine: backoff whatever is cached (contract §2)', () => {
  it('with nothing cached, a run inside the window fails at once without asking; after it, one attempt', async () => {
    const h = harness([unreachable(), unreachable(), { value: 'sk-back' }]);
    expect((await rejection(h.get())).code).toBe('ERR_VAULT_UNREACHABLE');
    // First step without a token: 10 s, jittered between half and the whole (random() = 0.5).
    const kept = JSON.parse(h.store.blobs.get(`${KEY}.backoff`)!);
    expect(kept).toEqual({ failures: 1, backoffUntilMs: T0 + 7_500 });
    h.clock.now = T0 + 7_499;
    const e = await rejection(h.get());
    expect(e).toMatchObject({ code: 'ERR_SOURCE_BACKOFF', exitCode: 3 });
    expect(e.message).toBe(
      'the vault source failed on its last attempt: not asking it again before 2026-12-04T09:00:07.500Z',
    );
    expect(h.src.calls).toHaveLength(1);
    // The window is over: one attempt, failing again; the next step doubles (20 s: 15 s here).
    h.clock.now = T0 + 7_500;
    expect((await rejection(h.get())).code).toBe('ERR_VAULT_UNREACHABLE');
    expect(h.src.calls).toHaveLength(2);
    expect(JSON.parse(h.store.blobs.get(`${KEY}.backoff`)!)).toEqual({
      failures: 2,
      backoffUntilMs: T0 + 7_500 + 15_000,
    });
    expect((await rejection(h.get())).message).toBe(
      'the vault source failed on its last 2 attempts: not asking it again before 2026-12-04T09:00:22.500Z',
    );
    // Back: the token ends the backoff.
    h.clock.now = T0 + 22_500;
    expect(await h.get()).toMatchObject({ token: 'sk-back', cache: 'miss' });
    expect(h.store.blobs.has(`${KEY}.backoff`)).toBe(false);
  });

  it('with nothing cached, --refresh asks inside the window', async () => {
    const h = harness([unreachable(), { value: 'sk-now' }]);
    await rejection(h.get());
    expect(await h.get({ refresh: true })).toMatchObject({ token: 'sk-now', cache: 'refresh' });
    expect(h.store.blobs.has(`${KEY}.backoff`)).toBe(false);
  });

  it('without a token the steps stop at 60 s, so a reconnected laptop waits at most a minute', async () => {
    const h = harness(Array.from({ length: 12 }, () => unreachable()));
    const steps: number[] = [];
    for (let i = 0; i < 12; i++) {
      await rejection(h.get());
      const until = JSON.parse(h.store.blobs.get(`${KEY}.backoff`)!).backoffUntilMs as number;
      steps.push(until - h.clock.now);
      h.clock.now = until;
    }
    // 10, 20, 40 s jittered (random() = 0.5), then the whole 60 s.
    expect(steps).toEqual([7_500, 15_000, 30_000, ...Array.from({ length: 9 }, () => 60_000)]);
    expect(h.src.calls).toHaveLength(12);
  });

  it('a stored secret past staleIfErrorMs is not printed and the source is not asked inside the window', async () => {
    const h = harness([{ value: 'sk-old' }, unreachable()], { staleIfErrorMs: 600_000 });
    await h.get();
    h.clock.now = T0 + 600_000;
    expect((await rejection(h.get())).code).toBe('ERR_VAULT_UNREACHABLE');
    h.clock.now += 1000;
    expect(await rejection(h.get())).toMatchObject({ code: 'ERR_SOURCE_BACKOFF', exitCode: 3 });
    expect(h.src.calls).toHaveLength(2);
  });

  it('a long step ends within one short step after the cached token can no longer be printed', async () => {
    const h = harness([{ value: 'sk-old' }, ...Array.from({ length: 8 }, () => unreachable())], {
      staleIfErrorMs: 600_000,
    });
    await h.get();
    h.clock.now = T0 + TTL + 1;
    // Climb the long ladder while the stale token serves.
    while (h.clock.now < T0 + 560_000) {
      await h.get();
      h.clock.now = h.entry()!.backoffUntilMs!;
    }
    const e = h.entry()!;
    // The step would reach far past the token's end (T0 + 600 s): it stops half a short step after.
    expect(e.backoffUntilMs).toBe(T0 + 600_000 + BACKOFF.withoutToken.maxMs * 0.5);
  });
});

describe('engine: Retry-After', () => {
  it('with nothing cached, runs fail at once until the wait passes; then the source is asked and the wait forgotten', async () => {
    const h = harness([unreachable(120)]);
    expect((await rejection(h.get())).code).toBe('ERR_VAULT_UNREACHABLE');
    expect(JSON.parse(h.store.blobs.get(`${KEY}.backoff`)!)).toEqual({
      failures: 1,
      backoffUntilMs: T0 + 120_000,
      retryAfterUntilMs: T0 + 120_000,
    });
    h.clock.now += 60_000;
    const e = await rejection(h.get());
    expect(e).toMatchObject({ code: 'ERR_SOURCE_RETRY_AFTER', exitCode: 3 });
    expect(e.message).toBe(
      'the vault source asked to wait (Retry-After): not asking it again before 2026-12-04T09:02:00.000Z',
    );
    expect(h.src.calls).toHaveLength(1);
    h.clock.now = T0 + 120_000;
    expect((await h.get()).cache).toBe('miss');
    expect(h.store.blobs.has(`${KEY}.backoff`)).toBe(false);
  });

  it('--refresh asks during the wait, and the token it gets ends the wait', async () => {
    const h = harness([unreachable(120)]);
    await rejection(h.get());
    const r = await h.get({ refresh: true });
    expect(r.cache).toBe('refresh');
    expect(h.store.blobs.has(`${KEY}.backoff`)).toBe(false);
  });

  it('a wait beyond the cap cannot be ours and is ignored', async () => {
    const h = harness();
    h.store.blobs.set(`${KEY}.backoff`, JSON.stringify({ failures: 1, backoffUntilMs: T0 + 10 * 3600_000 }));
    expect((await h.get()).cache).toBe('miss');
  });

  it('with a cached token the backoff lasts at least the Retry-After', async () => {
    const h = harness([{ value: 'sk-old' }, unreachable(600)]);
    await h.get();
    h.clock.now += TTL + 1;
    expect((await h.get()).cache).toBe('stale');
    expect(h.entry()!.backoffUntilMs).toBe(h.clock.now + 600_000);
  });
});

describe('engine: rejected tokens', () => {
  const caller = '4242-123456';

  it('the same caller asking again within its TTL gets a fresh token, recorded as "rejected"', async () => {
    const h = harness();
    await h.get({ callerId: caller });
    h.clock.now += 30_000;
    const r = await h.get({ callerId: caller, invocationStartMs: h.clock.now });
    expect(r).toMatchObject({ token: 'sk-token-2', cache: 'rejected' });
    expect(h.entry()!.forcedAtMs).toBe(h.clock.now);
    expect(h.src.calls[1]!.forceFresh).toBe(false);
  });

  it('within minRefreshIntervalMs of a forced refresh the newest token is printed', async () => {
    const h = harness();
    await h.get({ callerId: caller });
    h.clock.now += 30_000;
    await h.get({ callerId: caller, invocationStartMs: h.clock.now });
    h.clock.now += 5_000;
    const r = await h.get({ callerId: caller, invocationStartMs: h.clock.now });
    expect(r).toMatchObject({ token: 'sk-token-2', cache: 'hit' });
    expect(h.src.calls).toHaveLength(2);
  });

  it('a record written after this run started is a concurrent sibling, not a rejection', async () => {
    const h = harness();
    const start = h.clock.now;
    h.clock.now += 1;
    await h.get({ callerId: caller, invocationStartMs: start });
    const r = await h.get({ callerId: caller, invocationStartMs: start });
    expect(r.cache).toBe('hit');
  });

  it('another caller is not a rejection; without a caller id detection is off', async () => {
    const h = harness();
    await h.get({ callerId: caller });
    h.clock.now += 30_000;
    expect((await h.get({ callerId: '1-1', invocationStartMs: h.clock.now })).cache).toBe('hit');
    expect((await h.get({ invocationStartMs: h.clock.now })).cache).toBe('hit');
  });

  it('a failed forced refresh prints the cached token, still valid', async () => {
    const h = harness([{ value: 'sk-first' }, unreachable()]);
    await h.get({ callerId: caller });
    h.clock.now += 30_000;
    const r = await h.get({ callerId: caller, invocationStartMs: h.clock.now });
    expect(r).toMatchObject({ token: 'sk-first', cache: 'hit' });
  });
});

describe('engine: single flight', () => {
  it('concurrent runs make one request and all print the same token', async () => {
    let answer!: (t: FetchedToken) => void;
    const h = harness([() => new Promise((r) => (answer = r))]);
    const runs = Array.from({ length: 5 }, () => h.get());
    await new Promise((r) => setTimeout(r, 10));
    answer({ value: 'sk-shared' });
    const results = await Promise.all(runs);
    expect(results.map((r) => r.token)).toEqual(Array(5).fill('sk-shared'));
    expect(results.map((r) => r.cache)).toEqual(['miss', 'hit', 'hit', 'hit', 'hit']);
    expect(h.src.calls).toHaveLength(1);
  });

  it('a peer that failed meanwhile passes its backoff on: the waiter serves stale instead of asking', async () => {
    let fail!: () => void;
    const h = harness([
      { value: 'sk-old' },
      () => new Promise((_, reject) => (fail = () => reject(unreachable()))),
    ]);
    await h.get();
    h.clock.now += TTL + 1;
    const first = h.get();
    const second = h.get();
    await new Promise((r) => setTimeout(r, 10));
    fail();
    expect((await first).cache).toBe('stale');
    expect((await second).cache).toBe('stale');
    expect(h.src.calls).toHaveLength(2);
  });

  it('--refresh takes a token a peer fetched after this run began, but not an older one', async () => {
    const h = harness();
    await h.get();
    h.clock.now += 1000;
    const start = h.clock.now;
    const peerWrites = (fetchedAtMs: number) =>
      createCachedSource(h.src.source, h.config, {
        ...h.deps,
        lock: async (key, o) => {
          const l = await h.deps.lock!(key, o);
          await h.store.store.write(KEY, { ...h.entry()!, token: `sk-peer-${fetchedAtMs}`, fetchedAtMs });
          return l;
        },
      });
    const newer = await peerWrites(start).getToken({ refresh: true, invocationStartMs: start });
    expect(newer).toMatchObject({ token: `sk-peer-${start}`, cache: 'hit' });
    const older = await peerWrites(start - 1).getToken({ refresh: true, invocationStartMs: start });
    expect(older).toMatchObject({ token: 'sk-token-2', cache: 'refresh' });
  });

  it('a waiter released by a finished peer serves its token without taking the lock', async () => {
    const h = harness();
    const released = createCachedSource(h.src.source, h.config, {
      ...h.deps,
      lock: async (_key, o) => {
        await h.store.store.write(KEY, {
          v: 1,
          key: KEY,
          profile: 'default',
          source: 'vault',
          token: 'sk-peer',
          fetchedAtMs: h.clock.now,
        });
        expect(await o.peerDone()).toBe(true);
        return { peerDone: true };
      },
    });
    const r = await released.getToken({ refresh: false, invocationStartMs: h.clock.now });
    expect(r).toMatchObject({ token: 'sk-peer', cache: 'hit' });
    expect(h.src.calls).toHaveLength(0);
  });

  it('waiting past the deadline: a stale-but-valid token is printed with a warning', async () => {
    const h = harness([{ value: 'sk-old' }]);
    await h.get();
    h.clock.now += TTL + 1;
    const timedOut = createCachedSource(h.src.source, h.config, {
      ...h.deps,
      lock: async () => {
        throw unreachableError('ERR_LOCK_TIMEOUT', 'waiting for another keybroker run: timed out');
      },
    });
    const r = await timedOut.getToken({ refresh: false, invocationStartMs: h.clock.now });
    expect(r).toMatchObject({ token: 'sk-old', cache: 'stale' });
    expect(h.warnings).toEqual([
      'warning: another keybroker run is still fetching; printing the cached token',
    ]);
  });

  it('waiting past the deadline with nothing to print fails (exit 3)', async () => {
    const h = harness();
    const timedOut = createCachedSource(h.src.source, h.config, {
      ...h.deps,
      lock: async () => {
        throw unreachableError('ERR_LOCK_TIMEOUT', 'waiting for another keybroker run: timed out');
      },
    });
    expect(await rejection(timedOut.getToken({ refresh: false, invocationStartMs: T0 }))).toMatchObject({
      code: 'ERR_LOCK_TIMEOUT',
      exitCode: 3,
    });
    expect(h.src.calls).toHaveLength(0);
  });
});

describe('engine: storage', () => {
  it('without a lock or served log (storage "none", --no-cache) it still fetches and prints', async () => {
    const h = harness([], { noLock: true });
    expect((await h.get({ callerId: 'x' })).cache).toBe('miss');
    expect(h.lock.taken()).toBe(0);
    expect(h.served.records.size).toBe(0);
  });

  it('a keychain that cannot be read is warned about and the source asked', async () => {
    const h = harness([], { storeKind: 'keychain' });
    h.store.store.read = async () => {
      throw unreachableError('ERR_KEYCHAIN_LOCKED', 'the keychain is locked');
    };
    expect((await h.get()).cache).toBe('miss');
    // Once before the lock and once after it (a peer may have written meanwhile).
    expect(h.warnings).toEqual(
      Array(2).fill('warning: could not read the keychain cache (ERR_KEYCHAIN_LOCKED); fetching anew'),
    );
  });

  it('an entry that cannot be written is warned about; the token is still printed', async () => {
    const h = harness();
    h.store.store.write = async () => {
      throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    };
    expect((await h.get()).token).toBe('sk-token-1');
    expect(h.warnings).toEqual([
      'warning: could not write the cache entry (ENOSPC); the token is still printed',
    ]);
  });
});
