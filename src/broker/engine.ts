/**
 * The token engine: the cache policy of contract §2 wrapped around any source, in the shape of
 * smithy's `memoize` and azure's `createTokenCycler`. The source only fetches; this decides
 * whether to ask it (policy.ts's pure rules), makes concurrent runs share one request (the
 * lock), refreshes ahead, serves stale on failure, backs off and honours Retry-After.
 *
 * Everything from the edge comes in: the store, the lock, the served-record log, the clock and
 * the random numbers, so test/unit/engine.test.ts drives every branch with fakes.
 *
 * One call walks these steps, each a function below:
 *   decideFromCache → serveFresh | refuseShortLived | waitForPeer → refuseShortLived →
 *   holdOffDuringBackoff (whatever is cached) → fetchAndStore → (on failure) fallBackOnFailure
 */
import { fingerprint } from '../cache/entry.js';
import type { Lock, PeerDone } from '../cache/lock.js';
import {
  type BackoffRecord,
  type Decision,
  gate,
  livesLongEnough,
  nextBackoff,
  type PolicyParams,
  type ServedRecord,
  servableUntilMs,
  staleUsable,
  tooShortLived,
} from '../cache/policy.js';
import type { CacheEntry, CacheStore } from '../cache/types.js';
import {
  configError,
  ExitCode,
  internalError,
  isKeybrokerError,
  type KeybrokerError,
  seeDocs,
  unreachableError,
} from '../errors.js';
import type { Logger } from '../output/logger.js';
import { createDeadline, type Deadline } from '../platform/deadline.js';
import type { Source } from '../sources/types.js';
import { decideHit, entryFingerprint, type HitPolicy, servedRecord } from './hit.js';
import { checkTokenValue } from './token-value.js';

/** How long a served record is kept for a Claude Code process that stopped asking. */
const SERVED_RECORD_MAX_AGE_MS = 24 * 3600_000;

/** What --debug says for each decision: the rule in words. */
const DECISION_WORDS: Record<Decision['action'], string> = {
  serve: 'still fresh, served from the cache',
  'refresh-ahead':
    'in the last quarter of its usable life, refreshing ahead (the cached token is printed if that fails)',
  'replace-rejected':
    'the same Claude Code process asked again within the TTL it was given, so its token was rejected: fetching a new one',
  fetch: 'nothing servable, fetching from the source',
  'refuse-short-lived':
    'the kept token lives shorter than TTL + margin and has not expired: not asking the source again before it does',
};

export type CacheOutcome = 'hit' | 'miss' | 'stale' | 'refresh' | 'rejected';

export interface TokenResult {
  token: string;
  expiresAtMs?: number;
  fetchedAtMs: number;
  source: string;
  profile: string;
  cache: CacheOutcome;
  jti?: string;
}

/** What keybroker handed each caller, to notice a token it refused (contract §2 "Rejected tokens"). */
export interface ServedLog {
  read(key: string, callerId: string): ServedRecord | undefined;
  write(key: string, callerId: string, record: ServedRecord): void;
  prune(key: string, beforeMs: number): void;
}

export interface CachedSourceDeps {
  store: CacheStore;
  /** Cross-process single flight; absent when there is no cache directory (--no-cache, storage "none"). */
  lock?: (
    key: string,
    o: {
      deadlineMs: number;
      signal: AbortSignal;
      peerDone: () => Promise<boolean>;
      /** The engine's `random`, for the jitter of the waiters' fallback poll. */
      random: () => number;
      /** Called once when the lock is held by another live run and this one starts waiting. */
      onWait?: (holderPid: number | undefined) => void;
    },
  ) => Promise<Lock | PeerDone>;
  /** Absent turns rejected-token detection off. */
  served?: ServedLog;
  /** ms since epoch. */
  now: () => number;
  /** In [0, 1): the backoff's jitter and the lock waiters' (the only randomness the engine uses). */
  random: () => number;
  log: Pick<Logger, 'debug' | 'warn' | 'addSecret'>;
}

export interface CachedSourceConfig extends HitPolicy {
  /** The cache key (config/cache-key): which entry, lock and blobs are this profile's. */
  key: string;
  profile: string;
  /** The source's type, for messages and the entry. */
  sourceType: string;
  timeoutMs: number;
}

export interface CachedTokenRequest {
  /** --refresh: skip the cached entry and replace it. */
  refresh: boolean;
  /** ms since epoch when this process started (concurrent siblings are not rejections). */
  invocationStartMs: number;
  /** The calling process (pid-start), when known; undefined turns rejected-token detection off. */
  callerId?: string;
}

export interface CachedSource {
  getToken(request: CachedTokenRequest): Promise<TokenResult>;
}

/** The source itself, or how to make it: a source module is imported only when it must be asked. */
export type SourceProvider = Source | (() => Promise<Source>);

/** One call's state as it moves through the steps. */
interface Run {
  req: CachedTokenRequest;
  /** The profile's timeoutMs from the start of the call: bounds the wait, the lock and the source. */
  deadline: Deadline;
  entry: CacheEntry | undefined;
  decision: Decision;
  lock?: Lock;
  /** The backoff record kept beside the entry when there is none (so a token had ends it). */
  kept: BackoffRecord | undefined;
}

export function createCachedSource(
  provider: SourceProvider,
  config: CachedSourceConfig,
  deps: CachedSourceDeps,
): CachedSource {
  const { key, params } = config;
  const { store, log, now } = deps;
  const backoffBlob = `${key}.backoff`;

  // --- the store, with its failures sorted into "refuse" and "carry on" -------------------------

  const readEntry = async (): Promise<CacheEntry | undefined> => {
    try {
      return await store.read(key);
    } catch (e) {
      if (isKeybrokerError(e) && e.exitCode === ExitCode.unsafe) throw e;
      if (store.kind === 'keychain') {
        log.warn(
          `warning: could not read the keychain cache (${isKeybrokerError(e) ? e.code : 'error'}); fetching anew`,
        );
        return undefined;
      }
      throw e;
    }
  };
  const writeEntry = async (entry: CacheEntry): Promise<void> => {
    try {
      await store.write(key, entry);
    } catch (e) {
      if (isKeybrokerError(e) && e.exitCode === ExitCode.unsafe) throw e;
      log.warn(
        `warning: could not write the cache entry (${isKeybrokerError(e) ? e.code : ((e as NodeJS.ErrnoException).code ?? 'error')}); the token is still printed`,
      );
    }
  };

  // --- results ------------------------------------------------------------------------------

  const result = (e: CacheEntry, cache: CacheOutcome): TokenResult => ({
    token: e.token,
    fetchedAtMs: e.fetchedAtMs,
    source: e.source,
    profile: config.profile,
    cache,
    ...(e.expiresAtMs !== undefined ? { expiresAtMs: e.expiresAtMs } : {}),
    ...(e.jti !== undefined ? { jti: e.jti } : {}),
  });
  /** Hands the token out, remembering which one this caller got. */
  const handOut = (run: Run, e: CacheEntry, cache: CacheOutcome): TokenResult => {
    const r = result(e, cache);
    if (run.req.callerId && deps.served) {
      try {
        deps.served.write(key, run.req.callerId, servedRecord(fingerprint(r.token), now(), params.ttlMs));
      } catch {
        // rejected-token detection is best effort; never lose a token over it
      }
    }
    return r;
  };

  // --- the steps ----------------------------------------------------------------------------

  /** What the cached entry and the caller's served record say to do. */
  async function decideFromCache(run: Run): Promise<void> {
    const { req } = run;
    run.entry = req.refresh ? undefined : await readEntry();
    const served = req.callerId && deps.served ? deps.served.read(key, req.callerId) : undefined;
    run.decision = req.refresh
      ? { action: 'fetch' }
      : decideHit(run.entry, config, { nowMs: now(), invocationStartMs: req.invocationStartMs, served });
    log.debug(
      `cache ${run.entry ? `entry ${entryFingerprint(run.entry)} fetched ${new Date(run.entry.fetchedAtMs).toISOString()}` : 'empty'}: ${DECISION_WORDS[run.decision.action]}`,
    );
  }

  /** A kept token that lives shorter than TTL + margin: fail as its fetch did, without asking. */
  function refuseShortLived(run: Run): void {
    const { entry } = run;
    if (run.req.refresh || !entry || !tooShortLived(entry, now(), params)) return;
    throw shortLivedError(config, entry.expiresAtMs! - entry.shortLivedFromMs!, params);
  }

  /** A fresh entry is the whole answer. */
  function serveFresh(run: Run): TokenResult | undefined {
    if (run.decision.action === 'serve' && run.entry) return handOut(run, run.entry, 'hit');
    return undefined;
  }

  /**
   * Single flight: take the lock, then look again, since a peer may have fetched (or failed)
   * while we waited. With --refresh or a rejected token only a token fetched since this run
   * began will do. Waiting past the deadline, a stale-but-valid token beats an error.
   */
  async function waitForPeer(run: Run): Promise<TokenResult | undefined> {
    if (!deps.lock) return undefined;
    const before = run.entry;
    let peers: CacheEntry | undefined;
    const peerDone = async () => {
      peers = servesFromPeer(run, await readEntry());
      return peers !== undefined;
    };
    const got = await deps
      .lock(key, {
        deadlineMs: run.deadline.atMs,
        signal: run.deadline.signal,
        peerDone,
        random: deps.random,
        onWait: (holderPid) => {
          log.debug(
            `waiting for another keybroker run${holderPid ? ` (pid ${holderPid})` : ''} that holds the lock`,
          );
        },
      })
      .catch((e: unknown) => {
        if (before && staleUsable(before, now(), params)) return undefined;
        throw e;
      });
    if (!got) {
      if (!before) return undefined;
      log.warn('warning: another keybroker run is still fetching; printing the cached token');
      return handOut(run, before, 'stale');
    }
    if ('peerDone' in got && peers) {
      log.debug('another run refreshed the entry while we waited');
      return handOut(run, peers, 'hit');
    }
    run.lock = got as Lock;
    if (run.lock.recovered) log.debug('recovered a lock left by a killed run');
    const again = await readEntry();
    const fromPeer = servesFromPeer(run, again);
    if (fromPeer) {
      log.debug('another run refreshed the entry while we waited');
      return handOut(run, fromPeer, 'hit');
    }
    if (again && changedSince(before, again) && mayUse(run, again)) {
      run.entry = again;
      if (run.decision.action === 'replace-rejected') run.decision = { action: 'serve' };
    } else if (
      again &&
      before &&
      !changedSince(before, again) &&
      again.backoffUntilMs !== before.backoffUntilMs
    ) {
      // Another run's attempt failed meanwhile: its backoff holds for this run too, so that
      // concurrent runs make one attempt per backoff step between them.
      run.entry = again;
    }
    return serveFresh(run);
  }

  /** A token another run stored since this one looked, and may be served as it is; else undefined. */
  function servesFromPeer(run: Run, again: CacheEntry | undefined): CacheEntry | undefined {
    if (!again || !changedSince(run.entry, again) || !mayUse(run, again)) return undefined;
    const d = decideHit(again, config, {
      nowMs: now(),
      invocationStartMs: run.req.invocationStartMs,
      served: undefined,
    });
    const serves =
      d.action === 'serve' || (d.action === 'refresh-ahead' && run.decision.action !== 'refresh-ahead');
    return serves ? again : undefined;
  }

  /** With --refresh or a rejected token, only a token fetched since this run began will do. */
  function mayUse(run: Run, again: CacheEntry): boolean {
    const mustBeNew = run.req.refresh || run.decision.action === 'replace-rejected';
    return !mustBeNew || again.fetchedAtMs >= run.req.invocationStartMs;
  }

  /**
   * Backoff, whatever is cached: a source that failed recently is not asked again before its
   * backoff ends. The cached token is printed meanwhile when it may be; else the run fails at
   * once. The record is the entry's, or the one kept beside it when nothing is cached.
   */
  async function holdOffDuringBackoff(run: Run): Promise<TokenResult | undefined> {
    const { entry, decision } = run;
    run.kept = entry ? undefined : await readBackoff(store, backoffBlob);
    const record = entry ?? run.kept;
    const held = gate({
      decision: decision.action,
      entry,
      record,
      nowMs: now(),
      params,
      refresh: run.req.refresh,
    });
    if (held.action === 'serve' && entry) {
      if (!held.stale) return handOut(run, entry, 'hit');
      log.warn(
        `warning: the ${config.sourceType} source failed recently; printing the cached token (fetched ${new Date(entry.fetchedAtMs).toISOString()}) until ${new Date(entry.backoffUntilMs!).toISOString()}`,
      );
      return handOut(run, entry, 'stale');
    }
    if (held.action === 'fail') throw heldOffError(config, held, record?.failures ?? 1, now());
    return undefined;
  }

  /** Asks the source, checks what it gave, stores it and ends any wait it had asked for. */
  async function fetchAndStore(run: Run): Promise<TokenResult> {
    const { req, entry, decision } = run;
    const source = typeof provider === 'function' ? await provider() : provider;
    log.debug(`fetching from ${source.describe()}`);
    const fetchStartMs = now();
    const fetched = await source.getToken({
      signal: run.deadline.signal,
      now,
      deadlineMs: run.deadline.atMs,
      // A rejected token says nothing against the Vault login or the KV mount the source
      // remembered (and a stale memo is noticed and redone anyway): only --refresh, a person
      // asking for everything anew, bypasses them.
      forceFresh: req.refresh,
    });
    const token = checkTokenValue(fetched.value, `${config.sourceType} source of profile ${config.profile}`);
    log.addSecret(token);
    const fetchedAtMs = now();
    const shortLived =
      fetched.expiresAtMs !== undefined && !livesLongEnough(fetched.expiresAtMs, fetchStartMs, params);
    if (shortLived && decision.action === 'refresh-ahead' && entry) {
      // The cached token still serves: a failed refresh, whose backoff keeps the rest of the
      // refresh-ahead window from asking for another short-lived token on every call.
      return keepCachedToken(run, entry, 'ERR_TOKEN_LIFETIME_TOO_SHORT', backoffAfter(run, fetchedAtMs));
    }
    const fresh: CacheEntry = {
      v: 1,
      key,
      profile: config.profile,
      source: config.sourceType,
      token,
      fingerprint: fingerprint(token),
      fetchedAtMs,
      ...(fetched.expiresAtMs !== undefined ? { expiresAtMs: fetched.expiresAtMs } : {}),
      ...(shortLived ? { shortLivedFromMs: fetchStartMs } : {}),
      ...(fetched.jti !== undefined ? { jti: fetched.jti } : {}),
      ...(fetched.meta !== undefined ? { meta: fetched.meta } : {}),
      ...(decision.action === 'replace-rejected'
        ? { forcedAtMs: fetchedAtMs }
        : entry?.forcedAtMs
          ? { forcedAtMs: entry.forcedAtMs }
          : {}),
    };
    await writeEntry(fresh);
    // The backoff is over once a token is had. A record kept beside the entry can only be
    // there when this run read it (nothing was cached) or --refresh skipped the entry.
    if (run.kept || req.refresh) await store.deleteBlob(backoffBlob).catch(() => {});
    // Kept, never printed: the next calls fail at once instead of asking again (tooShortLived).
    if (shortLived) throw shortLivedError(config, fetched.expiresAtMs! - fetchStartMs, params);
    if (deps.served) {
      try {
        deps.served.prune(key, fetchedAtMs - SERVED_RECORD_MAX_AGE_MS);
      } catch {
        // housekeeping only
      }
    }
    log.debug(
      `fetched token ${fresh.fingerprint}${fresh.expiresAtMs ? ` expiring ${new Date(fresh.expiresAtMs).toISOString()}` : ''}`,
    );
    const cache: CacheOutcome =
      decision.action === 'replace-rejected'
        ? 'rejected'
        : decision.action === 'refresh-ahead' || req.refresh
          ? 'refresh'
          : 'miss';
    return handOut(run, fresh, cache);
  }

  /**
   * The source failed. Unreachable: remember its Retry-After, back off, and print the cached
   * token when the policy allows. Denied or not found: believe it and drop the entry.
   */
  /** The next backoff step after a failed attempt, from the entry's record or the kept one. */
  function backoffAfter(run: Run, nowMs: number, retryAfterSec?: number): BackoffRecord {
    return nextBackoff({
      record: run.entry ?? run.kept,
      nowMs,
      random: deps.random(),
      retryAfterSec,
      servableUntilMs: run.entry ? servableUntilMs(run.entry, params) : undefined,
    });
  }

  /** A refresh failed while the cached token still serves: back off, print it with one warning. */
  async function keepCachedToken(
    run: Run,
    entry: CacheEntry,
    code: string,
    next: BackoffRecord,
  ): Promise<TokenResult> {
    await writeEntry({ ...entry, ...next });
    log.warn(`warning: refreshing the token failed (${code}); printing the cached token, still valid`);
    return handOut(run, entry, 'hit');
  }

  async function fallBackOnFailure(run: Run, e: unknown): Promise<TokenResult> {
    const { entry, decision } = run;
    const err = normalizeFetchError(e, config, run.deadline.signal.aborted);
    const t = now();
    const next = err.exitCode === ExitCode.unreachable ? backoffAfter(run, t, err.retryAfterSec) : undefined;
    if (next && !entry) await store.writeBlob(backoffBlob, JSON.stringify(next)).catch(() => {});
    if (next && entry) {
      if (decision.action === 'refresh-ahead' || decision.action === 'replace-rejected')
        return keepCachedToken(run, entry, err.code, next);
      await writeEntry({ ...entry, ...next });
      if (staleUsable(entry, t, params)) {
        log.warn(
          `warning: ${err.message}; printing the cached token fetched ${new Date(entry.fetchedAtMs).toISOString()}`,
        );
        return handOut(run, entry, 'stale');
      }
    }
    if (
      (err.exitCode === ExitCode.denied || err.exitCode === ExitCode.missing) &&
      (entry || run.req.refresh)
    ) {
      // The source is believed: drop what we had (also when --refresh did not read it).
      await store.delete(key).catch(() => {});
    }
    throw err;
  }

  return {
    async getToken(req) {
      const run: Run = {
        req,
        deadline: createDeadline(config.timeoutMs, { now }),
        entry: undefined,
        decision: { action: 'fetch' },
        kept: undefined,
      };
      // Every step may talk to the source: hold the deadline (and the lock) until done.
      try {
        await decideFromCache(run);
        const hit = serveFresh(run);
        if (hit) return hit;
        refuseShortLived(run);
        const fromPeer = await waitForPeer(run);
        if (fromPeer) return fromPeer;
        // A peer may have just kept a short-lived token: the same answer, without asking again.
        refuseShortLived(run);
        const served = await holdOffDuringBackoff(run);
        if (served) return served;
        try {
          return await fetchAndStore(run);
        } catch (e) {
          return await fallBackOnFailure(run, e);
        }
      } finally {
        run.deadline.clear();
        run.lock?.release();
      }
    },
  };
}

/** Another run wrote the entry since `before` was read. */
function changedSince(before: CacheEntry | undefined, again: CacheEntry): boolean {
  return !before || again.fetchedAtMs !== before.fetchedAtMs || again.token !== before.token;
}

/** The backoff record kept beside a missing entry; undefined when none or unreadable. */
async function readBackoff(store: CacheStore, name: string): Promise<BackoffRecord | undefined> {
  const text = await store.readBlob(name).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    if (!num(o.failures) || !num(o.backoffUntilMs)) return undefined;
    return {
      failures: o.failures,
      backoffUntilMs: o.backoffUntilMs,
      ...(num(o.retryAfterUntilMs) ? { retryAfterUntilMs: o.retryAfterUntilMs } : {}),
    };
  } catch {
    return undefined;
  }
}

/** The source gave a token that cannot stay valid for TTL + margin (contract §2). */
function shortLivedError(
  config: CachedSourceConfig,
  lifetimeMs: number,
  params: PolicyParams,
): KeybrokerError {
  return configError(
    'ERR_TOKEN_LIFETIME_TOO_SHORT',
    `${config.sourceType} source of profile ${config.profile}: the token is valid for ${Math.round(lifetimeMs / 1000)} s, less than TTL + margin (${Math.round((params.ttlMs + params.marginMs) / 1000)} s)`,
    {
      hint: `issue longer-lived tokens at the source or lower CLAUDE_CODE_API_KEY_HELPER_TTL_MS; ${seeDocs('ERR_TOKEN_LIFETIME_TOO_SHORT')}`,
    },
  );
}

/** Inside the backoff window with nothing to print: fail at once, saying until when. */
function heldOffError(
  config: CachedSourceConfig,
  held: { untilMs: number; retryAfter: boolean },
  failures: number,
  nowMs: number,
): KeybrokerError {
  const until = new Date(held.untilMs).toISOString();
  const retryAfterSec = Math.ceil((held.untilMs - nowMs) / 1000);
  if (held.retryAfter) {
    return unreachableError(
      'ERR_SOURCE_RETRY_AFTER',
      `the ${config.sourceType} source asked to wait (Retry-After): not asking it again before ${until}`,
      {
        hint: `wait until then, or run keybroker --refresh to ask at once; ${seeDocs('ERR_SOURCE_RETRY_AFTER')}`,
        retryAfterSec,
      },
    );
  }
  return unreachableError(
    'ERR_SOURCE_BACKOFF',
    `the ${config.sourceType} source failed on its last ${failures === 1 ? 'attempt' : `${failures} attempts`}: not asking it again before ${until}`,
    {
      hint: `wait until then, or run keybroker --refresh to ask at once; ${seeDocs('ERR_SOURCE_BACKOFF')}`,
      retryAfterSec,
    },
  );
}

function normalizeFetchError(e: unknown, config: CachedSourceConfig, aborted: boolean): KeybrokerError {
  if (isKeybrokerError(e)) return e;
  const what = `${config.sourceType} source of profile ${config.profile}`;
  if (aborted) {
    return unreachableError('ERR_TIMEOUT', `${what}: no answer within ${config.timeoutMs} ms`, {
      hint: `check that the source is reachable, or raise timeoutMs; ${seeDocs('ERR_TIMEOUT')}`,
      cause: e,
    });
  }
  return internalError('ERR_INTERNAL', `${what}: unexpected ${e instanceof Error ? e.name : typeof e}`, {
    hint: `this is a bug; rerun with --debug and report it; ${seeDocs('ERR_INTERNAL')}`,
    cause: e,
  });
}
