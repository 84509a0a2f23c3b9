/**
 * The cache hit, synchronous and with node:fs alone: the first stage (src/entry.ts) answers
 * every hit through serveHitSync, and the engine (engine.ts) decides through decideHit, so the
 * two stages cannot disagree on what a hit is. Stage 1 imports this: keep its imports tiny.
 */
import { fingerprint } from '../cache/entry.js';
import type { FileStore } from '../cache/file-store.js';
import { type Decision, decide, type PolicyParams, type ServedRecord } from '../cache/policy.js';
import type { CacheEntry } from '../cache/types.js';

export interface HitPolicy {
  params: PolicyParams;
  minRefreshIntervalMs: number;
}

export interface HitRequest {
  nowMs: number;
  /** ms since epoch when this process started (concurrent siblings are not rejections). */
  invocationStartMs: number;
  /** What this caller was handed last; undefined when unknown or not tracked. */
  served: ServedRecord | undefined;
}

/** The profile's cache policy, as both stages read it from the resolved profile. */
export function hitPolicy(resolved: {
  ttlMs: number;
  cache: { refreshMarginMs: number; staleIfErrorMs: number; minRefreshIntervalMs: number };
}): HitPolicy {
  return {
    params: {
      ttlMs: resolved.ttlMs,
      marginMs: resolved.cache.refreshMarginMs,
      staleIfErrorMs: resolved.cache.staleIfErrorMs,
    },
    minRefreshIntervalMs: resolved.cache.minRefreshIntervalMs,
  };
}

/** The cached entry's token fingerprint: kept in the entry, so a hit need not hash the token. */
export function entryFingerprint(entry: CacheEntry): string {
  return entry.fingerprint ?? fingerprint(entry.token);
}

/** What the cached entry and the caller's served record say to do (contract §2). */
export function decideHit(entry: CacheEntry | undefined, policy: HitPolicy, req: HitRequest): Decision {
  return decide({
    entry,
    nowMs: req.nowMs,
    params: policy.params,
    minRefreshIntervalMs: policy.minRefreshIntervalMs,
    served: req.served,
    entryFingerprint: entry ? entryFingerprint(entry) : undefined,
    invocationStartMs: req.invocationStartMs,
  });
}

/** The record of a token handed to a caller. */
export function servedRecord(tokenFingerprint: string, nowMs: number, ttlMs: number): ServedRecord {
  return { fingerprint: tokenFingerprint, servedAtMs: nowMs, ttlMs };
}

/**
 * The first stage's whole cache logic: the entry when the policy says serve it as is (and the
 * caller, if known, recorded as handed it); undefined for anything else, which the second
 * stage then handles.
 */
export function serveHitSync(
  files: FileStore,
  key: string,
  policy: HitPolicy,
  o: { nowMs: () => number; invocationStartMs: number; callerId: string | undefined },
): { entry: CacheEntry; fingerprint: string } | undefined {
  const entry = files.readSync(key);
  if (!entry) return undefined;
  const served = o.callerId ? files.readServed(key, o.callerId) : undefined;
  const decision = decideHit(entry, policy, {
    nowMs: o.nowMs(),
    invocationStartMs: o.invocationStartMs,
    served,
  });
  if (decision.action !== 'serve') return undefined;
  const fp = entryFingerprint(entry);
  if (o.callerId) files.writeServed(key, o.callerId, servedRecord(fp, o.nowMs(), policy.params.ttlMs));
  return { entry, fingerprint: fp };
}
