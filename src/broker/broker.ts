/**
 * The use case: resolved profile → cache policy → (lock → source) → cache → result.
 * Printing and exit codes belong to the caller (cli/token.ts); this returns or throws.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fingerprint } from '../cache/entry.js';
import { createFileStore, type FileStore } from '../cache/file-store.js';
import { acquireLock, type Lock } from '../cache/lock.js';
import {
  backoffDelayMs,
  decide,
  inBackoff,
  type PolicyParams,
  RETRY_AFTER_MAX_SEC,
  staleUsable,
} from '../cache/policy.js';
import type { CacheEntry, CacheStore } from '../cache/types.js';
import type { ResolvedProfile } from '../config/types.js';
import type { AppContext } from '../context.js';
import {
  configError,
  ExitCode,
  isKeybrokerError,
  KeybrokerError,
  seeDocs,
  unreachableError,
} from '../errors.js';
import { cacheDir } from '../platform/paths.js';
import { createSource } from '../sources/index.js';
import type { SourceMemo } from '../sources/types.js';
import { checkTokenValue } from './token-value.js';

const SERVED_RECORD_MAX_AGE_MS = 24 * 3600_000;

export type CacheOutcome = 'hit' | 'miss' | 'stale' | 'refresh' | 'rejected';

export interface TokenOptions {
  /** --refresh: skip the cached entry and replace it. */
  refresh: boolean;
  /** --no-cache: read and write no cache, create no file in the cache directory. */
  noCache: boolean;
  /** ms since epoch when this process started (concurrent siblings are not rejections). */
  invocationStartMs: number;
  /** The calling process (pid-start), when known; undefined turns rejected-token detection off. */
  callerId?: string;
}

export interface TokenResult {
  token: string;
  expiresAtMs?: number;
  fetchedAtMs: number;
  source: string;
  profile: string;
  cache: CacheOutcome;
  jti?: string;
}

function nullStore(): CacheStore {
  const blobs = new Map<string, string>();
  return {
    kind: 'none',
    read: async () => undefined,
    write: async () => {},
    delete: async () => {},
    readBlob: async (n) => blobs.get(n),
    writeBlob: async (n, d) => {
      blobs.set(n, d);
    },
    deleteBlob: async (n) => {
      blobs.delete(n);
    },
    listKeys: async () => [],
  };
}

function memoFor(store: CacheStore, key: string): SourceMemo {
  const blobName = (name: string) =>
    `${key}.memo-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
  return {
    async get(name) {
      const text = await store.readBlob(blobName(name)).catch(() => undefined);
      if (text === undefined) return undefined;
      try {
        const o = JSON.parse(text) as { value: unknown; expiresAtMs?: unknown };
        if (typeof o.value !== 'string') return undefined;
        return typeof o.expiresAtMs === 'number'
          ? { value: o.value, expiresAtMs: o.expiresAtMs }
          : { value: o.value };
      } catch {
        return undefined;
      }
    },
    async set(name, value, expiresAtMs) {
      await store.writeBlob(blobName(name), JSON.stringify({ value, expiresAtMs }));
    },
    async delete(name) {
      await store.deleteBlob(blobName(name));
    },
  };
}

export interface BrokerStores {
  store: CacheStore;
  /** The directory for locks and served records; undefined with --no-cache / storage "none". */
  files?: FileStore;
}

/** Opens the profile's cache storage (contract §2 "Storage"). */
export async function openStores(
  ctx: AppContext,
  resolved: ResolvedProfile,
  noCache: boolean,
): Promise<BrokerStores> {
  if (noCache || resolved.cache.storage === 'none') return { store: nullStore() };
  const files = createFileStore({
    dir: cacheDir(ctx),
    onDiscard: (f) => ctx.logger.warn(`warning: discarded a corrupt cache entry ${f}; fetching anew`),
  });
  files.ensureDir();
  if (resolved.cache.storage === 'file') return { store: files, files };
  try {
    const { createKeychainStore } = await import('../cache/keychain-store.js');
    const store = await createKeychainStore({ env: ctx.env, platform: ctx.platform, timeoutMs: 2000 });
    return { store, files };
  } catch (e) {
    ctx.logger.warn(
      `warning: cache.storage is "keychain" but the keychain cannot be used (${isKeybrokerError(e) ? e.code : 'error'}); working uncached (unlock the keychain or set cache.storage)`,
    );
    return { store: nullStore(), files };
  }
}

export async function getToken(
  ctx: AppContext,
  resolved: ResolvedProfile,
  options: TokenOptions,
  stores?: BrokerStores,
): Promise<TokenResult> {
  const log = ctx.logger;
  const startedMs = ctx.now();
  const deadlineMs = startedMs + resolved.timeoutMs;
  const params: PolicyParams = {
    ttlMs: resolved.ttlMs,
    marginMs: resolved.cache.refreshMarginMs,
    staleIfErrorMs: resolved.cache.staleIfErrorMs,
  };
  const key = resolved.cacheKey;
  const { store, files } = stores ?? (await openStores(ctx, resolved, options.noCache));
  log.debug(
    `profile ${resolved.name}: source ${resolved.source.type}, ttl ${resolved.ttlMs} ms (${resolved.ttlOrigin}), cache ${store.kind} key ${key}`,
  );

  const readEntry = async () => {
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
  const writeEntry = async (entry: CacheEntry) => {
    try {
      await store.write(key, entry);
    } catch (e) {
      if (isKeybrokerError(e) && e.exitCode === ExitCode.unsafe) throw e;
      log.warn(
        `warning: could not write the cache entry (${isKeybrokerError(e) ? e.code : ((e as NodeJS.ErrnoException).code ?? 'error')}); the token is still printed`,
      );
    }
  };

  let entry = options.refresh ? undefined : await readEntry();
  const served = options.callerId && files ? files.readServed(key, options.callerId) : undefined;
  const entryFp = entry ? (entry.fingerprint ?? fingerprint(entry.token)) : undefined;
  let decision = options.refresh
    ? ({ action: 'fetch' } as const)
    : decide({
        entry,
        nowMs: ctx.now(),
        params,
        minRefreshIntervalMs: resolved.cache.minRefreshIntervalMs,
        served,
        entryFingerprint: entryFp,
        invocationStartMs: options.invocationStartMs,
      });
  log.debug(
    `cache ${entry ? `entry ${entryFp} fetched ${new Date(entry.fetchedAtMs).toISOString()}` : 'empty'}: ${decision.action}`,
  );

  const result = (e: CacheEntry, cache: CacheOutcome): TokenResult => ({
    token: e.token,
    fetchedAtMs: e.fetchedAtMs,
    source: e.source,
    profile: resolved.name,
    cache,
    ...(e.expiresAtMs !== undefined ? { expiresAtMs: e.expiresAtMs } : {}),
    ...(e.jti !== undefined ? { jti: e.jti } : {}),
  });
  const remember = (r: TokenResult): TokenResult => {
    if (options.callerId && files) {
      try {
        files.writeServed(key, options.callerId, {
          fingerprint: fingerprint(r.token),
          servedAtMs: ctx.now(),
          ttlMs: resolved.ttlMs,
        });
      } catch {
        // rejected-token detection is best effort; never lose a token over it
      }
    }
    return r;
  };

  if (decision.action === 'serve' && entry) return remember(result(entry, 'hit'));

  // Every path below may talk to the source: take the lock (single flight) and look again.
  let lock: Lock | undefined;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), Math.max(1, deadlineMs - ctx.now()));
  timer.unref?.();
  try {
    if (files) {
      lock = await acquireLock({
        dir: files.dir,
        key,
        deadlineMs,
        now: ctx.now,
        maxHoldMs: Math.max(resolved.timeoutMs * 2, 30_000),
        signal: controller.signal,
      }).catch((e: unknown) => {
        // Waiting past the deadline: a stale-but-valid token still beats an error.
        if (entry && staleUsable(entry, ctx.now(), params)) return undefined;
        throw e;
      });
      if (lock?.recovered) log.debug('recovered a lock left by a killed run');
      if (lock) {
        // Someone else may have fetched (or failed) while we waited, or between our first read
        // and taking the lock. With --refresh or a rejected token, only a token fetched since
        // this run began will do.
        const again = await readEntry();
        const mustBeNew = options.refresh || decision.action === 'force';
        const changed =
          again && (!entry || again.fetchedAtMs !== entry.fetchedAtMs || again.token !== entry.token);
        if (again && changed && (!mustBeNew || again.fetchedAtMs >= options.invocationStartMs)) {
          const d = decide({
            entry: again,
            nowMs: ctx.now(),
            params,
            minRefreshIntervalMs: resolved.cache.minRefreshIntervalMs,
            served: undefined,
            entryFingerprint: undefined,
            invocationStartMs: options.invocationStartMs,
          });
          if (d.action === 'serve' || (d.action === 'refresh-ahead' && decision.action !== 'refresh-ahead')) {
            log.debug('another run refreshed the entry while we waited');
            return remember(result(again, 'hit'));
          }
          entry = again;
          if (decision.action === 'force') decision = { action: 'serve' };
        } else if (again && entry && !changed && again.backoffUntilMs !== entry.backoffUntilMs) {
          // Another run's attempt failed meanwhile: its backoff holds for this run too, so that
          // concurrent runs make one attempt per backoff step between them.
          entry = again;
        }
      }
    }
    if (decision.action === 'serve' && entry) return remember(result(entry, 'hit'));
    if (!lock && files && entry) {
      log.warn('warning: another keybroker run is still fetching; printing the cached token');
      return remember(result(entry, 'stale'));
    }

    // Negative caching: a source that failed recently is not asked again before its backoff ends
    // while a cached token can still be served.
    if (entry && inBackoff(entry, ctx.now()) && decision.action !== 'force' && !options.refresh) {
      if (decision.action === 'refresh-ahead') return remember(result(entry, 'hit'));
      if (staleUsable(entry, ctx.now(), params)) {
        log.warn(
          `warning: the ${resolved.source.type} source failed recently; printing the cached token (fetched ${new Date(entry.fetchedAtMs).toISOString()}) until ${new Date(entry.backoffUntilMs!).toISOString()}`,
        );
        return remember(result(entry, 'stale'));
      }
    }

    // A source that said how long to wait (HTTP Retry-After) is not asked again before then when
    // there is nothing to print instead; --refresh, a person asking at once, still asks.
    const waitBlob = `${key}.retry-after`;
    let waitSeen = false;
    if (!options.refresh && (!entry || !staleUsable(entry, ctx.now(), params))) {
      const untilMs = await readWaitUntil(store, waitBlob);
      if (untilMs !== undefined) {
        waitSeen = true;
        // Past the cap it cannot be one we wrote (the clock went back, or the file was edited).
        if (untilMs > ctx.now() && untilMs - ctx.now() <= RETRY_AFTER_MAX_SEC * 1000) {
          throw unreachableError(
            'ERR_SOURCE_RETRY_AFTER',
            `the ${resolved.source.type} source asked to wait (Retry-After): not asking it again before ${new Date(untilMs).toISOString()}`,
            {
              hint: `wait until then, or run keybroker --refresh to ask at once; ${seeDocs('ERR_SOURCE_RETRY_AFTER')}`,
              retryAfterSec: Math.ceil((untilMs - ctx.now()) / 1000),
            },
          );
        }
      }
    }

    const source = await createSource(resolved.source, {
      logger: log,
      memo: memoFor(store, key),
      env: ctx.env,
      homeDir: ctx.homeDir,
      ttlMs: resolved.ttlMs,
      refreshMarginMs: resolved.cache.refreshMarginMs,
    });
    log.debug(`fetching from ${source.describe()}`);
    const fetchStartMs = ctx.now();
    try {
      const fetched = await source.getToken({
        signal: controller.signal,
        now: ctx.now,
        deadlineMs,
        // A rejected token says nothing against the Vault login or the KV mount the source
        // remembered (and a stale memo is noticed and redone anyway): only --refresh, a person
        // asking for everything anew, bypasses them.
        forceFresh: options.refresh,
      });
      const token = checkTokenValue(
        fetched.value,
        `${resolved.source.type} source of profile ${resolved.name}`,
      );
      log.addSecret(token);
      const now = ctx.now();
      // Measured from when the fetch began, with a second of slack for expiries in whole
      // seconds: a lifetime of exactly TTL + margin is allowed (contract §2).
      if (
        fetched.expiresAtMs !== undefined &&
        fetched.expiresAtMs - fetchStartMs < params.ttlMs + params.marginMs - 1000
      ) {
        throw configError(
          'ERR_TOKEN_LIFETIME_TOO_SHORT',
          `${resolved.source.type} source of profile ${resolved.name}: the token is valid for ${Math.round((fetched.expiresAtMs - fetchStartMs) / 1000)} s, less than TTL + margin (${Math.round((params.ttlMs + params.marginMs) / 1000)} s)`,
          {
            hint: `issue longer-lived tokens at the source or lower CLAUDE_CODE_API_KEY_HELPER_TTL_MS; ${seeDocs('ERR_TOKEN_LIFETIME_TOO_SHORT')}`,
          },
        );
      }
      const fresh: CacheEntry = {
        v: 1,
        key,
        profile: resolved.name,
        source: resolved.source.type,
        token,
        fingerprint: fingerprint(token),
        fetchedAtMs: now,
        ...(fetched.expiresAtMs !== undefined ? { expiresAtMs: fetched.expiresAtMs } : {}),
        ...(fetched.jti !== undefined ? { jti: fetched.jti } : {}),
        ...(fetched.meta !== undefined ? { meta: fetched.meta } : {}),
        ...(decision.action === 'force'
          ? { forcedAtMs: now }
          : entry?.forcedAtMs
            ? { forcedAtMs: entry.forcedAtMs }
            : {}),
      };
      await writeEntry(fresh);
      // A wait asked for is over once a token is had. It can only be there when this run read
      // it, the entry records a failure since its last success, or --refresh skipped both checks.
      if (waitSeen || options.refresh || entry?.failures !== undefined) {
        await store.deleteBlob(waitBlob).catch(() => {});
      }
      // One served record per Claude Code process ever served: forget those idle for a day.
      if (files) {
        try {
          files.pruneServed(key, now - SERVED_RECORD_MAX_AGE_MS);
        } catch {
          // housekeeping only
        }
      }
      log.debug(
        `fetched token ${fingerprint(token)}${fresh.expiresAtMs ? ` expiring ${new Date(fresh.expiresAtMs).toISOString()}` : ''}`,
      );
      const cache: CacheOutcome =
        decision.action === 'force'
          ? 'rejected'
          : decision.action === 'refresh-ahead' || options.refresh
            ? 'refresh'
            : 'miss';
      return remember(result(fresh, cache));
    } catch (e) {
      const err = normalizeFetchError(e, resolved, controller.signal.aborted);
      const now = ctx.now();
      if (err.exitCode === ExitCode.unreachable && err.retryAfterSec !== undefined && err.retryAfterSec > 0) {
        const untilMs = now + err.retryAfterSec * 1000;
        await store.writeBlob(waitBlob, JSON.stringify({ untilMs })).catch(() => {});
      }
      if (err.exitCode === ExitCode.unreachable && entry) {
        const failures = (entry.failures ?? 0) + 1;
        await writeEntry({
          ...entry,
          failures,
          backoffUntilMs: now + backoffDelayMs(failures, Math.random(), err.retryAfterSec),
        });
        if (decision.action === 'refresh-ahead' || decision.action === 'force') {
          log.warn(
            `warning: refreshing the token failed (${err.code}); printing the cached token, still valid`,
          );
          return remember(result(entry, 'hit'));
        }
        if (staleUsable(entry, now, params)) {
          log.warn(
            `warning: ${err.message}; printing the cached token fetched ${new Date(entry.fetchedAtMs).toISOString()}`,
          );
          return remember(result(entry, 'stale'));
        }
      }
      if ((err.exitCode === ExitCode.denied || err.exitCode === ExitCode.missing) && entry) {
        // The source is believed: drop what we had.
        await store.delete(key).catch(() => {});
      }
      throw err;
    }
  } finally {
    clearTimeout(timer);
    lock?.release();
  }
}

/** When a source's Retry-After ends (ms since the epoch), from its blob; undefined when none. */
async function readWaitUntil(store: CacheStore, name: string): Promise<number | undefined> {
  const text = await store.readBlob(name).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { untilMs?: unknown };
    return typeof parsed.untilMs === 'number' && Number.isFinite(parsed.untilMs) ? parsed.untilMs : undefined;
  } catch {
    return undefined;
  }
}

function normalizeFetchError(e: unknown, resolved: ResolvedProfile, aborted: boolean): KeybrokerError {
  if (isKeybrokerError(e)) return e;
  if (aborted) {
    return unreachableError(
      'ERR_TIMEOUT',
      `${resolved.source.type} source of profile ${resolved.name}: no answer within ${resolved.timeoutMs} ms`,
      {
        hint: `check that the source is reachable, or raise timeoutMs; ${seeDocs('ERR_TIMEOUT')}`,
        cause: e,
      },
    );
  }
  return new KeybrokerError(
    'ERR_INTERNAL',
    ExitCode.internal,
    `${resolved.source.type} source of profile ${resolved.name}: unexpected ${e instanceof Error ? e.name : typeof e}`,
    {
      hint: `this is a bug; rerun with --debug and report it; ${seeDocs('ERR_INTERNAL')}`,
      cause: e,
    },
  );
}

/** A random id for minted things (exported for tests that need determinism elsewhere). */
export const randomId = () => randomBytes(16).toString('hex');
