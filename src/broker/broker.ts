/**
 * The token use case: a resolved profile → its stores, its lock and its source, composed by
 * the engine (engine.ts), which holds the cache policy. Printing and exit codes belong to the
 * caller (cli/token.ts); this returns or throws.
 */
import { createFileStore, type FileStore } from '../cache/file-store.js';
import { acquireLock } from '../cache/lock.js';
import { createNullStore } from '../cache/null-store.js';
import { memoFor } from '../cache/source-memo.js';
import type { CacheStore } from '../cache/types.js';
import type { ResolvedProfile } from '../config/types.js';
import type { AppContext } from '../context.js';
import { isKeybrokerError } from '../errors.js';
import { sourceDepsFor } from '../sources/deps.js';
import { createSource } from '../sources/index.js';
import { type CachedSourceDeps, createCachedSource, type TokenResult } from './engine.js';
import { hitPolicy } from './hit.js';

export type { CacheOutcome, TokenResult } from './engine.js';

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

/** The profile's two stores: one for entries and memos, the cache directory for coordination. */
interface BrokerStores {
  /** Where entries and source memos live: the file store, the keychain, or nothing. */
  entryStore: CacheStore;
  /** The cache directory, for locks and served records; undefined with --no-cache / storage "none". */
  cacheDir?: FileStore;
}

/** Opens the profile's cache storage (contract §2 "Storage"). */
async function openStores(
  ctx: AppContext,
  resolved: ResolvedProfile,
  noCache: boolean,
): Promise<BrokerStores> {
  if (noCache || resolved.cache.storage === 'none') return { entryStore: createNullStore() };
  const cacheDir = createFileStore({
    dir: resolved.cacheDir,
    onDiscard: (f) => ctx.logger.warn(`warning: discarded a corrupt cache entry ${f}; fetching anew`),
  });
  cacheDir.ensureDir();
  if (resolved.cache.storage === 'file') return { entryStore: cacheDir, cacheDir };
  try {
    const { createKeychainStore } = await import('../cache/keychain-store.js');
    const entryStore = await createKeychainStore({ env: ctx.env, platform: ctx.platform, timeoutMs: 2000 });
    return { entryStore, cacheDir };
  } catch (e) {
    ctx.logger.warn(
      `warning: cache.storage is "keychain" but the keychain cannot be used (${isKeybrokerError(e) ? e.code : 'error'}); working uncached (unlock the keychain or set cache.storage)`,
    );
    return { entryStore: createNullStore(), cacheDir };
  }
}

/** The engine's edges for this profile: real stores, the lock file, the real clock. */
function engineDeps(
  ctx: AppContext,
  resolved: ResolvedProfile,
  { entryStore, cacheDir }: BrokerStores,
): CachedSourceDeps {
  return {
    store: entryStore,
    now: ctx.now,
    random: () => Math.random(),
    log: ctx.logger,
    ...(cacheDir
      ? {
          lock: (key, o) =>
            acquireLock({
              dir: cacheDir.dir,
              key,
              deadlineMs: o.deadlineMs,
              now: ctx.now,
              maxHoldMs: Math.max(resolved.timeoutMs * 2, 30_000),
              signal: o.signal,
              peerDone: o.peerDone,
              random: o.random,
              onWait: o.onWait,
            }),
          served: {
            read: (key, caller) => cacheDir.readServed(key, caller),
            write: (key, caller, record) => cacheDir.writeServed(key, caller, record),
            prune: (key, beforeMs) => {
              cacheDir.pruneServed(key, beforeMs);
            },
          },
        }
      : {}),
  };
}

export async function getToken(
  ctx: AppContext,
  resolved: ResolvedProfile,
  options: TokenOptions,
): Promise<TokenResult> {
  const stores = await openStores(ctx, resolved, options.noCache);
  const key = resolved.cacheKey;
  ctx.logger.debug(
    `profile ${resolved.name}: source ${resolved.source.type}, ttl ${resolved.ttlMs} ms (${resolved.ttlOrigin}), cache ${stores.entryStore.kind} key ${key}`,
  );
  const engine = createCachedSource(
    () =>
      createSource(resolved.source, sourceDepsFor(ctx, resolved, ctx.env, memoFor(stores.entryStore, key))),
    {
      key,
      profile: resolved.name,
      sourceType: resolved.source.type,
      ...hitPolicy(resolved),
      timeoutMs: resolved.timeoutMs,
    },
    engineDeps(ctx, resolved, stores),
  );
  return engine.getToken({
    refresh: options.refresh,
    invocationStartMs: options.invocationStartMs,
    ...(options.callerId !== undefined ? { callerId: options.callerId } : {}),
  });
}
