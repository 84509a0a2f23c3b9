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

/**
 * Whether a token can be printed at all: one with its own expiry must stay valid for TTL + margin,
 * measured from when its fetch began, with a second of slack for expiries in whole seconds (a
 * lifetime of exactly TTL + margin is allowed). A secret without an expiry always can.
 */
export function livesLongEnough(
  expiresAtMs: number | undefined,
  fetchStartMs: number,
  p: PolicyParams,
): boolean {
  return expiresAtMs === undefined || expiresAtMs - fetchStartMs >= p.ttlMs + p.marginMs - 1000;
}

/**
 * A kept token that lives shorter than TTL + margin under the current TTL, and has not expired:
 * it cannot be printed, and asking the source again before it expires would only bring another
 * such token (a provider issuing 5-minute tokens, a short Vault lease). The run fails at once
 * with the same error the fetch gave. Lowering the TTL makes it printable (the TTL is not part
 * of the cache key); once it expires the source is asked again, in case it was fixed.
 */
export function tooShortLived(
  entry: Pick<CacheEntry, 'expiresAtMs' | 'shortLivedFromMs'>,
  nowMs: number,
  p: PolicyParams,
): boolean {
  return (
    entry.shortLivedFromMs !== undefined &&
    entry.expiresAtMs !== undefined &&
    nowMs < entry.expiresAtMs &&
    !livesLongEnough(entry.expiresAtMs, entry.shortLivedFromMs, p)
  );
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

/** A rejected token is replaced at most once per minRefreshIntervalMs for one profile. */
export function mayReplaceRejected(
  entry: CacheEntry | undefined,
  nowMs: number,
  minRefreshIntervalMs: number,
): boolean {
  if (!entry?.forcedAtMs) return true;
  return nowMs - entry.forcedAtMs >= minRefreshIntervalMs || nowMs < entry.forcedAtMs;
}

/**
 * Backoff after a failure of the unreachable kind (contract §2 "Backoff, whatever is cached"):
 * no attempt before `backoffUntilMs`. It lives in the cache entry when there is one, else beside
 * it (a blob), so that a laptop with nothing cached backs off too.
 */
export type BackoffRecord = Pick<CacheEntry, 'failures' | 'backoffUntilMs' | 'retryAfterUntilMs'>;

/**
 * Two ladders of steps, doubling from `baseMs` to `maxMs`. While a cached token can be printed
 * instead, the source may rest long: a dead Vault sees one attempt per step per user and
 * profile. While nothing can be printed, the steps stay short, so that a laptop whose connection
 * comes back gets a token within a minute without --refresh. Chosen with scripts/fleet-sim.mjs
 * (docs/decisions.md, "Backoff, whatever is cached").
 */
export const BACKOFF = {
  withToken: { baseMs: 5_000, maxMs: 300_000 },
  withoutToken: { baseMs: 10_000, maxMs: 60_000 },
} as const;

export type BackoffLadder = (typeof BACKOFF)[keyof typeof BACKOFF];

/** The longest wait a source's Retry-After can impose: a misconfigured proxy must not park a laptop for days. */
export const RETRY_AFTER_MAX_SEC = 3600;

/** A horizon further ahead than any step or Retry-After was not written by us (the clock went back). */
const BACKOFF_HORIZON_MAX_MS = Math.max(RETRY_AFTER_MAX_SEC * 1000, BACKOFF.withToken.maxMs);

/**
 * The step after `failures` consecutive failures, for `random` in [0, 1). Below the top of the
 * ladder a step is jittered between half and the whole of it, so that laptops that failed
 * together drift apart while they climb. The top step is whole: jitter there would shorten the
 * mean gap between attempts, and with it raise both the attempts per outage and the recovery
 * peak (measured in scripts/fleet-sim.mjs).
 */
export function backoffStepMs(ladder: BackoffLadder, failures: number, random: number): number {
  const step = Math.min(ladder.maxMs, ladder.baseMs * 2 ** Math.max(0, failures - 1));
  return step < ladder.maxMs ? step / 2 + (step / 2) * random : step;
}

export interface NextBackoffInput {
  /** The record so far (the entry's, or the one kept beside it); undefined after a success. */
  record: BackoffRecord | undefined;
  nowMs: number;
  /** In [0, 1): the jitter. */
  random: number;
  /** Seconds the source asked to wait (HTTP Retry-After). */
  retryAfterSec?: number | undefined;
  /** Until when a cached token can be printed instead of failing (servableUntilMs); undefined when none. */
  servableUntilMs?: number | undefined;
}

/**
 * The record after one more failure. Long steps only while a cached token can be printed: a
 * step ends at a random point within one short step after the token can no longer be printed,
 * so the user is not left without one for long, and laptops whose tokens ran out together (they
 * were fetched together, at 9:00 or after the last outage) do not come back together. A
 * Retry-After wins over both ladders.
 */
export function nextBackoff(
  i: NextBackoffInput,
): Required<Pick<BackoffRecord, 'failures' | 'backoffUntilMs'>> & Pick<BackoffRecord, 'retryAfterUntilMs'> {
  const failures = (i.record?.failures ?? 0) + 1;
  const shortMs = backoffStepMs(BACKOFF.withoutToken, failures, i.random);
  let untilMs = i.nowMs + shortMs;
  if (i.servableUntilMs !== undefined && i.servableUntilMs > i.nowMs) {
    untilMs = Math.min(
      i.nowMs + backoffStepMs(BACKOFF.withToken, failures, i.random),
      Math.max(untilMs, i.servableUntilMs + shortMs * i.random),
    );
  }
  if (i.retryAfterSec !== undefined && i.retryAfterSec > 0) {
    const retryAfterUntilMs = i.nowMs + Math.min(i.retryAfterSec, RETRY_AFTER_MAX_SEC) * 1000;
    return { failures, backoffUntilMs: Math.max(untilMs, retryAfterUntilMs), retryAfterUntilMs };
  }
  return { failures, backoffUntilMs: untilMs };
}

/**
 * Until when this entry can be printed instead of failing: fresh until its usable life ends,
 * then stale while stale-if-error allows.
 */
export function servableUntilMs(entry: CacheEntry, p: PolicyParams): number {
  const fresh = usableUntilMs(entry, p);
  if (p.staleIfErrorMs <= 0) return fresh;
  return Math.max(fresh, entry.expiresAtMs ?? entry.fetchedAtMs + p.staleIfErrorMs);
}

export function inBackoff(record: BackoffRecord | undefined, nowMs: number): boolean {
  const until = record?.backoffUntilMs;
  return until !== undefined && nowMs < until && until - nowMs <= BACKOFF_HORIZON_MAX_MS;
}

export type Gate =
  /** Ask the source. */
  | { action: 'ask' }
  /** In backoff: print the cached token without asking; `stale` says it is printed with a warning. */
  | { action: 'serve'; stale: boolean }
  /** In backoff with nothing to print: fail at once. `retryAfter`: the source asked for this wait. */
  | { action: 'fail'; untilMs: number; retryAfter: boolean };

export interface GateInput {
  decision: Decision['action'];
  entry: CacheEntry | undefined;
  /** The entry's backoff record, or the one kept beside it when there is no entry. */
  record: BackoffRecord | undefined;
  nowMs: number;
  params: PolicyParams;
  /** --refresh: a person asking now always asks. */
  refresh: boolean;
}

/**
 * Whether a call that would talk to the source may: not inside the backoff window, whatever is
 * cached. A rejected token (replace-rejected) is asked about at once, limited by minRefreshIntervalMs.
 */
export function gate(i: GateInput): Gate {
  if (i.refresh || i.decision === 'replace-rejected' || !inBackoff(i.record, i.nowMs))
    return { action: 'ask' };
  if (i.entry && (i.decision === 'refresh-ahead' || i.decision === 'serve'))
    return { action: 'serve', stale: false };
  if (i.entry && staleUsable(i.entry, i.nowMs, i.params)) return { action: 'serve', stale: true };
  const untilMs = i.record!.backoffUntilMs!;
  const asked = i.record!.retryAfterUntilMs;
  return { action: 'fail', untilMs, retryAfter: asked !== undefined && asked >= untilMs };
}

export type Decision =
  /** Print the cached token, nothing else to do. */
  | { action: 'serve' }
  /** Print the cached token, but try a refresh first (refresh ahead); on failure print it anyway. */
  | { action: 'refresh-ahead' }
  /** The caller rejected the token it was handed: fetch anew (at most once per min interval). */
  | { action: 'replace-rejected' }
  /** Nothing servable: fetch (stale may be printed if the source is unreachable). */
  | { action: 'fetch' }
  /** The kept token lives shorter than TTL + margin (tooShortLived): fail without asking. */
  | { action: 'refuse-short-lived' };

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
  if (tooShortLived(entry, nowMs, params)) return { action: 'refuse-short-lived' };
  const a = assess(entry, nowMs, params);
  if (
    isRejection(input.served, nowMs, input.invocationStartMs) &&
    input.served?.fingerprint === input.entryFingerprint
  ) {
    // The token we handed this caller is still the cached one: it was refused.
    if (mayReplaceRejected(entry, nowMs, input.minRefreshIntervalMs)) return { action: 'replace-rejected' };
    // Within the window the newest token is printed (if it is still servable at all).
    if (a.state === 'fresh') return { action: 'serve' };
    return { action: 'fetch' };
  }
  if (a.state === 'expired') return { action: 'fetch' };
  if (a.refreshAhead && !inBackoff(entry, nowMs)) return { action: 'refresh-ahead' };
  return { action: 'serve' };
}
