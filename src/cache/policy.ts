/**
 * The cache policy of contract §2, pure: every function takes the clock reading as a number.
 * Both stages use it, so it imports nothing.
 */
import type { CacheEntry } from './types.js';

export interface PolicyParams {
  /** How long Claude Code will hold a printed token. */
  ttlMs: number;
  /** cache.refreshMarginMs: room for clock skew and request time. */
  marginMs: number;
  /** cache.staleIfErrorMs: how old a stored secret may be when served because the source is down. */
  staleIfErrorMs: number;
}

export type Assessment =
  /** Servable. `refreshAhead`: inside the last quarter of its usable life, refresh during this run. */
  | { state: 'fresh'; refreshAhead: boolean; usableUntilMs: number }
  /** Not servable normally; `staleUsable`: may still be printed (with a warning) if the source is unreachable. */
  | { state: 'expired'; staleUsable: boolean; usableUntilMs: number };

/** Clock skew we tolerate between an entry's fetchedAtMs and now before distrusting the entry. */
const FUTURE_SKEW_MS = 60_000;

/**
 * Until when an entry may be printed: a token with its own expiry while it stays valid for
 * TTL + margin more; a stored secret until it is older than the TTL.
 */
export function usableUntilMs(
  entry: Pick<CacheEntry, 'fetchedAtMs' | 'expiresAtMs'>,
  p: PolicyParams,
): number {
  return entry.expiresAtMs !== undefined
    ? entry.expiresAtMs - (p.ttlMs + p.marginMs)
    : entry.fetchedAtMs + p.ttlMs;
}

export function assess(entry: CacheEntry, nowMs: number, p: PolicyParams): Assessment {
  const until = usableUntilMs(entry, p);
  const fromFuture = entry.fetchedAtMs - nowMs > FUTURE_SKEW_MS;
  if (nowMs < until && !fromFuture) {
    return { state: 'fresh', refreshAhead: nowMs >= nextRefreshMs(entry, p), usableUntilMs: until };
  }
  return { state: 'expired', staleUsable: staleUsable(entry, nowMs, p) && !fromFuture, usableUntilMs: until };
}

/** Stale if error: a token that has not expired; a stored secret fetched less than staleIfErrorMs ago. */
export function staleUsable(entry: CacheEntry, nowMs: number, p: PolicyParams): boolean {
  if (p.staleIfErrorMs <= 0) return false;
  if (entry.expiresAtMs !== undefined) return nowMs < entry.expiresAtMs;
  return nowMs - entry.fetchedAtMs < p.staleIfErrorMs;
}

/**
 * Where this entry's refresh ahead starts: a point of its own inside the last quarter of its
 * usable life, taken from the sub-second digits of fetchedAtMs. Starting every entry at the
 * quarter's very beginning made a laptop with many busy sessions fetch a stored secret every
 * three quarters of a TTL (1.12-1.25 × users / TTL in scripts/fleet-sim.mjs); spread over the
 * quarter it is about once per TTL (1.01), and a fleet's early refreshes do not line up.
 */
export function nextRefreshMs(
  entry: Pick<CacheEntry, 'fetchedAtMs' | 'expiresAtMs'>,
  p: PolicyParams,
): number {
  const until = usableUntilMs(entry, p);
  return until - (Math.max(0, until - entry.fetchedAtMs) / 4) * refreshPoint(entry.fetchedAtMs);
}

/** A fraction in (0, 1]: how far before the end of the usable life the refresh ahead starts, in quarters. */
export function refreshPoint(fetchedAtMs: number): number {
  return ((Math.abs(Math.trunc(fetchedAtMs)) % 997) + 1) / 997;
}

/** What keybroker remembers about the last token it handed one caller (a Claude Code process). */
export interface ServedRecord {
  fingerprint: string;
  servedAtMs: number;
  /** The TTL that caller was told to hold the token for. */
  ttlMs: number;
}

/**
 * The same caller asking again before the TTL it was given has run out has almost surely been
 * refused. A record written after this invocation started is a concurrent sibling, not a
 * rejection: the caller cannot have used that token before it spawned us.
 */
export function isRejection(
  record: ServedRecord | undefined,
  nowMs: number,
  invocationStartMs: number,
): boolean {
  if (!record) return false;
  if (record.servedAtMs >= invocationStartMs) return false;
  return nowMs < record.servedAtMs + record.ttlMs;
}

/** Forced refreshes for one profile happen at most once per minRefreshIntervalMs. */
export function mayForceRefresh(
  entry: CacheEntry | undefined,
  nowMs: number,
  minRefreshIntervalMs: number,
): boolean {
  if (!entry?.forcedAtMs) return true;
  return nowMs - entry.forcedAtMs >= minRefreshIntervalMs || nowMs < entry.forcedAtMs;
}

/** Exponential backoff with jitter after upstream failures (negative caching). */
export const BACKOFF = { baseMs: 5_000, maxMs: 300_000 } as const;

/** The longest wait a source's Retry-After can impose: a misconfigured proxy must not park a laptop for days. */
export const RETRY_AFTER_MAX_SEC = 3600;

export function backoffDelayMs(failures: number, random: number, retryAfterSec?: number): number {
  const step = Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** Math.max(0, failures - 1));
  const jittered = step / 2 + (step / 2) * random;
  return Math.max(jittered, (retryAfterSec ?? 0) * 1000);
}

export function inBackoff(entry: CacheEntry | undefined, nowMs: number): boolean {
  return entry?.backoffUntilMs !== undefined && nowMs < entry.backoffUntilMs;
}

export type Decision =
  /** Print the cached token, nothing else to do. */
  | { action: 'serve' }
  /** Print the cached token, but try a refresh first (refresh ahead); on failure print it anyway. */
  | { action: 'refresh-ahead' }
  /** The caller rejected the token it was handed: fetch anew (at most once per min interval). */
  | { action: 'force' }
  /** Nothing servable: fetch (stale may be printed if the source is unreachable). */
  | { action: 'fetch' };

export interface DecideInput {
  entry: CacheEntry | undefined;
  nowMs: number;
  params: PolicyParams;
  minRefreshIntervalMs: number;
  /** The caller's last served record (undefined when unknown or not tracked). */
  served: ServedRecord | undefined;
  /** Fingerprint of the cached token (to compare with the served one). */
  entryFingerprint: string | undefined;
  invocationStartMs: number;
}

export function decide(input: DecideInput): Decision {
  const { entry, nowMs, params } = input;
  if (!entry) return { action: 'fetch' };
  const a = assess(entry, nowMs, params);
  if (
    isRejection(input.served, nowMs, input.invocationStartMs) &&
    input.served?.fingerprint === input.entryFingerprint
  ) {
    // The token we handed this caller is still the cached one: it was refused.
    if (mayForceRefresh(entry, nowMs, input.minRefreshIntervalMs)) return { action: 'force' };
    // Within the window the newest token is printed (if it is still servable at all).
    if (a.state === 'fresh') return { action: 'serve' };
    return { action: 'fetch' };
  }
  if (a.state === 'expired') return { action: 'fetch' };
  if (a.refreshAhead && !inBackoff(entry, nowMs)) return { action: 'refresh-ahead' };
  return { action: 'serve' };
}
