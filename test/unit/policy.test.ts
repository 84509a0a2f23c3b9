/** The cache policy of contract §2 on a fake clock. */
import { describe, expect, it } from 'vitest';
import {
  assess,
  BACKOFF,
  backoffStepMs,
  decide,
  gate,
  inBackoff,
  isRejection,
  livesLongEnough,
  mayReplaceRejected,
  nextBackoff,
  nextRefreshMs,
  type PolicyParams,
  refreshPoint,
  servableUntilMs,
  staleUsable,
  tooShortLived,
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
    expect(mayReplaceRejected(entry(), T0, 10_000)).toBe(true);
    expect(mayReplaceRejected(entry({ forcedAtMs: T0 }), T0 + 9_999, 10_000)).toBe(false);
    expect(mayReplaceRejected(entry({ forcedAtMs: T0 }), T0 + 10_000, 10_000)).toBe(true);
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
    expect(decide({ ...base, served, entry: entry(), nowMs: T0 + 5000 })).toEqual({
      action: 'replace-rejected',
    });
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

describe('backoff, whatever is cached', () => {
  it('doubles per failure on each ladder, jittered between half and the whole step below the top, whole at the top', () => {
    const { withToken, withoutToken } = BACKOFF;
    expect(backoffStepMs(withToken, 1, 0)).toBe(2_500);
    expect(backoffStepMs(withToken, 1, 1)).toBe(5_000);
    expect(backoffStepMs(withToken, 3, 1)).toBe(20_000);
    expect(backoffStepMs(withToken, 30, 0)).toBe(300_000);
    expect(backoffStepMs(withoutToken, 1, 0)).toBe(5_000);
    expect(backoffStepMs(withoutToken, 3, 0.5)).toBe(30_000);
    expect(backoffStepMs(withoutToken, 4, 0)).toBe(60_000);
    expect(backoffStepMs(withoutToken, 40, 0.99)).toBe(60_000);
  });

  it('without a servable token the short ladder applies; a Retry-After wins', () => {
    expect(nextBackoff({ record: undefined, nowMs: T0, random: 0 })).toEqual({
      failures: 1,
      backoffUntilMs: T0 + 5_000,
    });
    expect(nextBackoff({ record: { failures: 9, backoffUntilMs: T0 }, nowMs: T0, random: 0 })).toEqual({
      failures: 10,
      backoffUntilMs: T0 + 60_000,
    });
    expect(nextBackoff({ record: undefined, nowMs: T0, random: 0, retryAfterSec: 600 })).toEqual({
      failures: 1,
      backoffUntilMs: T0 + 600_000,
      retryAfterUntilMs: T0 + 600_000,
    });
    // Capped at an hour.
    expect(
      nextBackoff({ record: undefined, nowMs: T0, random: 0, retryAfterSec: 86_400 }).backoffUntilMs,
    ).toBe(T0 + 3_600_000);
  });

  it('with a servable token the long ladder applies, ending within a short step after the token does', () => {
    const far = T0 + 3_600_000;
    expect(nextBackoff({ record: { failures: 9 }, nowMs: T0, random: 0, servableUntilMs: far })).toEqual({
      failures: 10,
      backoffUntilMs: T0 + 300_000,
    });
    expect(
      nextBackoff({ record: { failures: 9 }, nowMs: T0, random: 0.5, servableUntilMs: T0 + 100_000 })
        .backoffUntilMs,
    ).toBe(T0 + 100_000 + 30_000);
    // Never shorter than the short step.
    expect(
      nextBackoff({ record: { failures: 9 }, nowMs: T0, random: 0, servableUntilMs: T0 + 1_000 })
        .backoffUntilMs,
    ).toBe(T0 + 60_000);
  });

  it('a token is servable while fresh, then while stale-if-error allows', () => {
    expect(servableUntilMs(entry(), p)).toBe(T0 + 3_600_000);
    expect(servableUntilMs(entry(), { ...p, staleIfErrorMs: 0 })).toBe(T0 + 300_000);
    expect(servableUntilMs(entry({ expiresAtMs: T0 + 720_000 }), p)).toBe(T0 + 720_000);
  });

  it('a horizon beyond an hour ahead is not ours and is ignored (the clock went back)', () => {
    expect(inBackoff({ backoffUntilMs: T0 + 3_600_000 }, T0)).toBe(true);
    expect(inBackoff({ backoffUntilMs: T0 + 3_600_001 }, T0)).toBe(false);
    expect(inBackoff({ backoffUntilMs: T0 }, T0)).toBe(false);
  });

  it('gate: inside the window nobody asks; the cached token is printed when it may be, else the run fails at once', () => {
    const record = { failures: 2, backoffUntilMs: T0 + 400_000 };
    const g = (over: Partial<Parameters<typeof gate>[0]>) =>
      gate({
        decision: 'fetch',
        entry: undefined,
        record,
        nowMs: T0 + 350_000,
        params: p,
        refresh: false,
        ...over,
      });
    expect(g({})).toEqual({ action: 'fail', untilMs: T0 + 400_000, retryAfter: false });
    expect(g({ entry: entry(record) })).toEqual({ action: 'serve', stale: true });
    expect(g({ entry: entry(record), decision: 'refresh-ahead' })).toEqual({ action: 'serve', stale: false });
    expect(g({ entry: entry(record), params: { ...p, staleIfErrorMs: 0 } })).toMatchObject({
      action: 'fail',
    });
    expect(g({ record: { ...record, retryAfterUntilMs: T0 + 400_000 } })).toMatchObject({ retryAfter: true });
    expect(g({ refresh: true })).toEqual({ action: 'ask' });
    expect(g({ decision: 'replace-rejected' })).toEqual({ action: 'ask' });
    expect(g({ nowMs: T0 + 400_000 })).toEqual({ action: 'ask' });
  });
});

describe('livesLongEnough (contract §2: printed only while valid for TTL + margin)', () => {
  it('takes a lifetime of TTL + margin, to the second, and refuses a shorter one; a secret without expiry always', () => {
    expect(livesLongEnough(T0 + 420_000, T0, p)).toBe(true);
    // Expiries come in whole seconds: a second of slack.
    expect(livesLongEnough(T0 + 419_000, T0, p)).toBe(true);
    expect(livesLongEnough(T0 + 418_999, T0, p)).toBe(false);
    expect(livesLongEnough(T0 + 300_000, T0, p)).toBe(false);
    expect(livesLongEnough(undefined, T0, p)).toBe(true);
  });
});

describe('tooShortLived (a kept token that lives less than TTL + margin: fail without asking)', () => {
  const short = entry({ expiresAtMs: T0 + 300_000, shortLivedFromMs: T0 - 500 });
  it('holds until the token expires, then lets the source be asked', () => {
    expect(tooShortLived(short, T0, p)).toBe(true);
    expect(tooShortLived(short, T0 + 299_999, p)).toBe(true);
    expect(tooShortLived(short, T0 + 300_000, p)).toBe(false);
  });
  it('a TTL low enough for the token ends it (the TTL is not part of the cache key)', () => {
    expect(tooShortLived(short, T0, { ...p, ttlMs: 180_000 })).toBe(false);
    expect(tooShortLived(short, T0, { ...p, ttlMs: 181_000 })).toBe(false);
    expect(tooShortLived(short, T0, { ...p, ttlMs: 182_000 })).toBe(true);
  });
  it('only a token marked at fetch time: one printed then and expired since is simply fetched again', () => {
    const decideAtT0 = (e: CacheEntry) =>
      decide({
        entry: e,
        nowMs: T0,
        params: p,
        minRefreshIntervalMs: 10_000,
        served: undefined,
        entryFingerprint: undefined,
        invocationStartMs: T0,
      }).action;
    expect(tooShortLived(entry({ expiresAtMs: T0 + 300_000 }), T0, p)).toBe(false);
    expect(decideAtT0(short)).toBe('refuse-short-lived');
    expect(decideAtT0(entry({ expiresAtMs: T0 + 300_000 }))).toBe('fetch');
  });
});
