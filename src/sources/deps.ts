/**
 * What a source is given, built in one place from the resolved profile: the token path passes
 * the profile's memo (kept login tokens, KV mounts); doctor and status pass none, as they
 * never cache.
 */
import type { ResolvedProfile } from '../config/types.js';
import type { AppContext } from '../context.js';
import type { SourceDeps, SourceMemo } from './types.js';

const NO_MEMO: SourceMemo = { get: async () => undefined, set: async () => {}, delete: async () => {} };

export function sourceDepsFor(
  ctx: AppContext,
  resolved: ResolvedProfile,
  env: SourceDeps['env'],
  memo: SourceMemo = NO_MEMO,
): SourceDeps {
  return {
    logger: ctx.logger,
    memo,
    env,
    homeDir: ctx.homeDir,
    ttlMs: resolved.ttlMs,
    refreshMarginMs: resolved.cache.refreshMarginMs,
    profile: resolved.name,
    cacheStorage: resolved.cache.storage,
    platform: ctx.platform,
    cacheDir: resolved.cacheDir,
    proxy: resolved.proxy,
  };
}
