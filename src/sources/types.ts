/**
 * A source fetches one token. It never caches, locks, prints or reads the environment
 * directly: everything it needs arrives resolved in its config and in `SourceDeps`.
 */
import type { Logger } from '../output/logger.js';

export interface TokenRequest {
  /** Aborted when the profile's timeoutMs deadline passes. */
  signal: AbortSignal;
  /** Wall-clock now, in ms since the epoch (a fake clock in tests). */
  now: () => number;
  /** Absolute deadline (ms since epoch) for the whole run; bound every request by it. */
  deadlineMs: number;
  /** True when the token path must bypass any source-side memo (--refresh). */
  forceFresh: boolean;
}

export interface FetchedToken {
  /** The raw value; the broker trims and checks it (printable ASCII, ≤ 16,384 chars). */
  value: string;
  /** The token's own expiry (JWT exp, Vault lease end), ms since epoch; absent for stored secrets. */
  expiresAtMs?: number;
  /** For minted JWTs: the jti, for the audit log. */
  jti?: string;
  /** Non-secret facts worth remembering with the cache entry (e.g. KV version found for a mount). */
  meta?: Record<string, string | number | boolean>;
}

export interface Source {
  /** Source type as in config: 'jwt' | 'vault' | 'vault-identity' | 'aws-secrets-manager' | 'keychain'. */
  readonly type: string;
  getToken(request: TokenRequest): Promise<FetchedToken>;
  /** A one-line description without secrets, e.g. `vault kv secret/llm field=token at https://vault:8200`. */
  describe(): string;
}

/**
 * Small persistent memo a source may use for things that are not the token itself
 * (a Vault login token, the KV version of a mount). The broker backs it with the same
 * storage as the token cache (file, keychain, or nothing for --no-cache), keyed per profile.
 */
export interface SourceMemo {
  get(name: string): Promise<{ value: string; expiresAtMs?: number } | undefined>;
  set(name: string, value: string, expiresAtMs?: number): Promise<void>;
  delete(name: string): Promise<void>;
}

export interface SourceDeps {
  logger: Logger;
  memo: SourceMemo;
  /** Environment snapshot; only source factories read it, for their documented standard variables. */
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  /** The TTL Claude Code holds a token (contract §2), and the refresh margin: a jwt source's default lifetime is 2 × TTL + M. */
  ttlMs: number;
  refreshMarginMs: number;
  /** The profile's name, cache storage and platform: where a source keeps a login (oidc). */
  profile?: string;
  cacheStorage?: import('../config/types.js').CacheStorage;
  platform?: NodeJS.Platform;
  /** The resolved cache directory (locks, the login's identity record). */
  cacheDir?: string;
  /** The profile's `"proxy"` setting (contract §3a): `"env"` (default), `"none"` or a URL. */
  proxy?: 'env' | 'none' | string;
}
