/** The cache policy of contract §2 on a fake clock. */
import { describe, expect, it } from 'vitest';
import {
  assess,
  backoffDelayMs,
  decide,
  isRejection,
  mayForceRefresh,
  nextRefreshMs,
  type PolicyParams,
  refreshPoint,
  staleUsable,
  usableUntilMs,
} from '../../src/cache/policy.js';
import type { CacheEntry } from '../../src/cache/types.js';

const T0 = 1_800_000_000_000;
const p: PolicyParams = { ttlMs: 300_000, marginMs: 120_000, staleIfErrorMs: 3_600_000 };

function entry(over: Partial<CacheEntry> = {}): CacheEntry {
  return {
    v: 1,
    key: 'default-0123456789abcdef',
    profile: 'default',
    source: 'jwt',
    token: 'tok',
    fetchedAtMs: T0,
    ...over,
  };
}

describe('tokens with their own expiry', () => {
  // A minted JWT with the default lifetime 2 × TTL + M lives 720 s.
  const e = entry({ expiresAtMs: T0 + 720_000 });

  it('are printed only while valid for at least TTL + margin more', () => {
    expect(usableUntilMs(e, p)).toBe(T0 + 300_000);
    expect(assess(e, T0 + 299_999, p).state).toBe('fresh');
    expect(assess(e, T0 + 300_000, p).state).toBe('expired');
  });

  it('are refreshed ahead from a point of their own inside the last quarter of their usable life', () => {
    const start = nextRefreshMs(e, p);
    expect(start).toBe(T0 + 300_000 - 75_000 * refreshPoint(T0));
    expect(start).toBeGreaterThanOrEqual(T0 + 225_000);
    expect(start).toBeLessThan(T0 + 300_000);
    const before = assess(e, Math.ceil(start) - 1, p);
    expect(before).toEqual({ state: 'fresh', refreshAhead: false, usableUntilMs: T0 + 300_000 });
    const at = assess(e, Math.ceil(start), p);
    expect(at).toEqual({ state: 'fresh', refreshAhead: true, usableUntilMs: T0 + 300_000 });
  });

  it('spread their refresh points over the whole last quarter', () => {
    const points = Array.from({ length: 997 }, (_, i) => refreshPoint(T0 + i));
    expect(Math.min(...points)).toBe(1 / 997);
    expect(Math.max(...points)).toBe(1);
    expect(new Set(points).size).toBe(997);
  });

  it('are served stale only until they expire', () => {
    expect(staleUsable(e, T0 + 719_999, p)).toBe(true);
    expect(staleUsable(e, T0 + 720_000, p)).toBe(false);
    expect(staleUsable(e, T0 + 400_000, { ...p, staleIfErrorMs: 0 })).toBe(false);
  });

  it('with a lifetime under TTL + margin are never fresh', () => {
    expect(assess(entry({ expiresAtMs: T0 + 419_000 }), T0, p).state).toBe('expired');
  });
});

describe('secrets without their own expiry', () => {
  const e = entry();
  it('are fetched again once older than the TTL', () => {
    expect(assess(e, T0 + 299_999, p).state).toBe('fresh');
    expect(assess(e, T0 + 300_000, p).state).toBe('expired');
  });
  it('are refreshed ahead in the last quarter of the TTL, never before it', () => {
    expect(assess(e, T0 + 224_999, p)).toMatchObject({ refreshAhead: false });
    expect(assess(e, Math.ceil(nextRefreshMs(e, p)), p)).toMatchObject({ refreshAhead: true });
    expect(assess(e, T0 + 299_999, p)).toMatchObject({ refreshAhead: true });
  });
  it('are served stale while fetched less than staleIfErrorMs ago', () => {
    expect(assess(e, T0 + 3_599_999, p)).toEqual({
      state: 'expired',
      staleUsable: true,
      usableUntilMs: T0 + 300_000,
    });
    expect(assess(e, T0 + 3_600_000, p)).toEqual({
      state: 'expired',
      staleUsable: false,
      usableUntilMs: T0 + 300_000,
    });
  });
  it('are distrusted when fetched in the future (clock moved back more than a minute)', () => {
    expect(assess(e, T0 - 60_001, p)).toEqual({
      state: 'expired',
      staleUsable: false,
      usableUntilMs: T0 + 300_000,
    });
    expect(assess(e, T0 - 59_000, p).state).toBe('fresh');
  });
});

describe('rejected tokens', () => {
  const served = { fingerprint: 'abc', servedAtMs: T0, ttlMs: 300_000 };
  it('a caller asking again before its TTL ran out has been refused', () => {
    expect(isRejection(served, T0 + 299_999, T0 + 1)).toBe(true);
    expect(isRejection(served, T0 + 300_000, T0 + 1)).toBe(false);
    expect(isRejection(undefined, T0 + 1, T0 + 1)).toBe(false);
  });
  it('a record written after this run started is a concurrent sibling, not a rejection', () => {
    expect(isRejection(served, T0 + 10, T0)).toBe(false);
  });
  it('forced refreshes happen at most once per minimum interval', () => {
    expect(mayForceRefresh(entry(), T0, 10_000)).toBe(true);
    expect(mayForceRefresh(entry({ forcedAtMs: T0 }), T0 + 9_999, 10_000)).toBe(false);
    expect(mayForceRefresh(entry({ forcedAtMs: T0 }), T0 + 10_000, 10_000)).toBe(true);
  });
});

describe('decide', () => {
  const base = {
    params: p,
    minRefreshIntervalMs: 10_000,
    served: undefined,
    entryFingerprint: 'abc',
    invocationStartMs: T0 + 1,
  };
  it('fetches with no entry, serves a fresh one, refreshes ahead late in its life', () => {
    expect(decide({ ...base, entry: undefined, nowMs: T0 })).toEqual({ action: 'fetch' });
    expect(decide({ ...base, entry: entry(), nowMs: T0 + 1000 })).toEqual({ action: 'serve' });
    expect(decide({ ...base, entry: entry(), nowMs: T0 + 299_000 })).toEqual({ action: 'refresh-ahead' });
    expect(decide({ ...base, entry: entry(), nowMs: T0 + 300_000 })).toEqual({ action: 'fetch' });
  });
  it('does not refresh ahead while backing off after a failure', () => {
    expect(decide({ ...base, entry: entry({ backoffUntilMs: T0 + 299_500 }), nowMs: T0 + 299_000 })).toEqual({
      action: 'serve',
    });
  });
  it('forces a refresh when the caller was handed the cached token within its TTL', () => {
    const served = { fingerprint: 'abc', servedAtMs: T0, ttlMs: 300_000 };
    expect(decide({ ...base, served, entry: entry(), nowMs: T0 + 5000 })).toEqual({ action: 'force' });
    expect(decide({ ...base, served, entry: entry({ forcedAtMs: T0 }), nowMs: T0 + 5000 })).toEqual({
      action: 'serve',
    });
    // The cache already holds a newer token than the one the caller refused: serve it.
    expect(
      decide({ ...base, served: { ...served, fingerprint: 'old' }, entry: entry(), nowMs: T0 + 5000 }),
    ).toEqual({
      action: 'serve',
    });
  });
});

describe('backoff', () => {
  it('doubles per failure with jitter between half and the whole step, capped, honouring Retry-After', () => {
    expect(backoffDelayMs(1, 0)).toBe(2_500);
    expect(backoffDelayMs(1, 1)).toBe(5_000);
    expect(backoffDelayMs(3, 1)).toBe(20_000);
    expect(backoffDelayMs(30, 1)).toBe(300_000);
    expect(backoffDelayMs(1, 0, 60)).toBe(60_000);
  });
});
