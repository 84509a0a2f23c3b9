/**
 * What the cache keeps for one profile. One entry per cache key (profile name + config hash).
 * Written whole (file: temp + rename; keychain: one item). Never holds anything but the
 * token and non-secret facts about it.
 */
export interface CacheEntry {
  v: 1;
  /** The cache key this entry belongs to; a mismatch means corrupt. */
  key: string;
  profile: string;
  /** Source type (jwt, vault, ...). */
  source: string;
  token: string;
  /** fingerprint(token), kept so that a cache hit need not hash the token again. */
  fingerprint?: string;
  /** When the source produced the token, ms since epoch. */
  fetchedAtMs: number;
  /** The token's own expiry (JWT exp, Vault lease); absent for stored secrets. */
  expiresAtMs?: number;
  jti?: string;
  meta?: Record<string, string | number | boolean>;
  /**
   * Set only on a token that lives shorter than TTL + margin (policy.ts `tooShortLived`): when
   * its fetch began. Such a token is kept but never printed, so that the source is not asked
   * again, for nothing, on every call before it expires.
   */
  shortLivedFromMs?: number;
  /** When a rejected token was last replaced (decision `replace-rejected`), ms since epoch. */
  forcedAtMs?: number;
  /** Negative cache after an upstream failure: no new attempt before this time. */
  backoffUntilMs?: number;
  /** Consecutive upstream failures, drives the backoff step. */
  failures?: number;
  /** When the wait the source asked for (Retry-After) ends, ms since epoch. */
  retryAfterUntilMs?: number;
}

/**
 * A place to keep entries and small named blobs (a source's memo: a Vault login token, the
 * KV version of a mount). Implementations: file (cache/file-store.ts), keychain
 * (cache/keychain-store.ts), none (cache/null-store.ts).
 */
export interface CacheStore {
  readonly kind: 'file' | 'keychain' | 'none';
  /** undefined when absent; a corrupt entry is discarded (deleted) and reported as absent. */
  read(key: string): Promise<CacheEntry | undefined>;
  write(key: string, entry: CacheEntry): Promise<void>;
  delete(key: string): Promise<void>;
  readBlob(name: string): Promise<string | undefined>;
  writeBlob(name: string, data: string): Promise<void>;
  deleteBlob(name: string): Promise<void>;
  /** Keys of all entries (for status and cache clear). */
  listKeys(): Promise<string[]>;
  /**
   * Names of all blobs, where they cannot be found otherwise (the keychain; cache clear
   * removes file blobs with the rest of a profile's files).
   */
  listBlobs?(): Promise<string[]>;
}
