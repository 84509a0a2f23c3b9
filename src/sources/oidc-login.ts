/**
 * Where an `oidc` profile's login lives: the refresh token (a secret) in the profile's cache
 * storage (keychain items or the 0600 file store, never a plain file when the keychain was asked
 * for), and a small non-secret identity record (`sub`, `email`, `groups`, when) beside the cache
 * so that `status` and the cache key can name who is signed in without opening the keychain.
 *
 * A login is not a cache entry: its names do not follow `<profile>-<16 hex>`, so `cache clear`
 * leaves it alone and `--no-cache` still uses it (a rotated refresh token must be kept whatever
 * the caching flags say, or the user is logged out). `keybroker logout` removes it.
 *
 * This module is safe for the first stage: node:fs and node:path only, statically.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CacheStorage, OidcSourceConfig } from '../config/types.js';
import { configError, seeDocs } from '../errors.js';
import { sha256Hex } from '../platform/sha256.js';

/** The secret part, kept in the profile's cache storage. */
export interface LoginSecret {
  v: 1;
  refreshToken: string;
  /** When this refresh token was received (login or rotation), ms since epoch. */
  receivedAtMs: number;
}

/** The non-secret part: who signed in, and when. Never a token. */
export interface LoginIdentity {
  v: 1;
  issuer: string;
  clientId: string;
  sub: string;
  email?: string;
  groups?: string[];
  name?: string;
  loginAtMs: number;
  /** The provider's discovery document as of the login (endpoints only; refreshed daily). */
  server?: Record<string, unknown>;
  discoveredAtMs?: number;
}

/** `oidc-login.<profile>.<24 hex of issuer + client id>`: one login per profile and provider client. */
export function loginName(profile: string, source: Pick<OidcSourceConfig, 'issuer' | 'clientId'>): string {
  return `oidc-login.${profile}.${sha256Hex(`${source.issuer}\n${source.clientId}`).slice(0, 24)}`;
}

/** The identity record's file in the cache directory. */
export function identityFile(dir: string, name: string): string {
  return join(dir, `${name}.who.json`);
}

/**
 * Reads who is signed in to a profile, synchronously and without the keychain: for `status`,
 * and the hook for the cache key (contract §2: an OIDC login's subject is part of the key).
 * undefined when nobody is (or the record is unreadable, unsafe or corrupt).
 */
export function readLoginIdentity(
  dir: string,
  profile: string,
  source: Pick<OidcSourceConfig, 'issuer' | 'clientId'>,
): LoginIdentity | undefined {
  const file = identityFile(dir, loginName(profile, source));
  try {
    const st = lstatSync(file);
    if (!st.isFile() || (process.platform !== 'win32' && (st.mode & 0o077) !== 0)) return undefined;
    const o = JSON.parse(readFileSync(file, 'utf8')) as LoginIdentity;
    if (
      o.v !== 1 ||
      typeof o.sub !== 'string' ||
      o.issuer !== source.issuer ||
      o.clientId !== source.clientId
    ) {
      return undefined;
    }
    return o;
  } catch {
    return undefined;
  }
}

/** The part of the cache key that names the login (contract §2); '' when nobody is signed in. */
export function oidcCredentialIdentity(
  dir: string,
  profile: string,
  source: Pick<OidcSourceConfig, 'issuer' | 'clientId'>,
): string {
  const who = readLoginIdentity(dir, profile, source);
  return who ? `oidc:${who.issuer}:${who.sub}` : '';
}

export function refuseWithoutStorage(storage: CacheStorage, profile: string): void {
  if (storage !== 'none') return;
  throw configError(
    'ERR_OIDC_NO_STORAGE',
    `profile ${profile}: cache.storage is "none", so there is nowhere to keep the oidc login`,
    {
      hint: `set cache.storage to "keychain" (or "file", a 0600 file) for this profile's config; ${seeDocs('ERR_OIDC_NO_STORAGE')}`,
    },
  );
}
