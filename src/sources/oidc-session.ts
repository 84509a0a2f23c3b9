/**
 * One profile's login at its provider: where the refresh token is kept, the lock that keeps two
 * processes from redeeming the same refresh token, and the renewal itself.
 *
 * Rotation: providers with reuse detection revoke the whole login when a rotated-out refresh
 * token is presented again. So every redemption happens under the login's own lock (whatever
 * cache key the caller has), the token is read again under that lock, and a new refresh token is
 * written (fsync'd, renamed) the moment the token response has arrived, before openid-client has
 * even parsed it, and long before anything is printed.
 */
import { acquireLock, type Lock } from '../cache/lock.js';
import type { CacheStore } from '../cache/types.js';
import type { CacheStorage, OidcSourceConfig } from '../config/types.js';
import { deniedError, isKeybrokerError, missingError, seeDocs } from '../errors.js';
import type { Logger } from '../output/logger.js';
import { ensurePrivateDir, writeFileAtomic } from '../platform/safe-fs.js';
import { isObject } from '../platform/text.js';
import {
  client,
  DISCOVERY_MAX_AGE_MS,
  type FetchLike,
  jwtClaims,
  loginHint,
  oidcError,
  oidcFetch,
  openClient,
  safe,
  type Where,
} from './oidc-client.js';
import {
  identityFile,
  type LoginIdentity,
  type LoginSecret,
  loginName,
  readLoginIdentity,
  refuseWithoutStorage,
} from './oidc-login.js';

export interface SessionDeps {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  homeDir: string;
  logger: Logger;
  now: () => number;
  /** The resolved cache directory: locks and the identity record live there. */
  cacheDir: string;
}

export interface OidcSession {
  readonly name: string;
  readonly where: Where;
  readonly dir: string;
  store: CacheStore;
  readSecret(): Promise<LoginSecret | undefined>;
  writeSecret(secret: LoginSecret): Promise<void>;
  readIdentity(): LoginIdentity | undefined;
  writeIdentity(identity: LoginIdentity): void;
  /** Removes the refresh token and the identity record. */
  forget(): Promise<void>;
  lock(deadlineMs: number, signal?: AbortSignal): Promise<Lock>;
}

/**
 * Opens the login's storage: the profile's cache storage, without the token path's fallback to
 * working uncached (a refresh token is never kept nowhere, and never in a plain file when the
 * keychain was asked for).
 */
export async function openSession(
  profile: string,
  source: OidcSourceConfig,
  storage: CacheStorage,
  deps: SessionDeps,
): Promise<OidcSession> {
  refuseWithoutStorage(storage, profile);
  const dir = deps.cacheDir;
  const { createFileStore } = await import('../cache/file-store.js');
  const files = createFileStore({ dir });
  files.ensureDir();
  let store: CacheStore = files;
  if (storage === 'keychain') {
    const { createKeychainStore } = await import('../cache/keychain-store.js');
    store = await createKeychainStore({ env: deps.env, platform: deps.platform, timeoutMs: 3000 });
  }
  const name = loginName(profile, source);
  const where: Where = { profile, issuer: source.issuer };
  return {
    name,
    where,
    dir,
    store,
    async readSecret() {
      const text = await store.readBlob(name);
      if (text === undefined) return undefined;
      try {
        const o = JSON.parse(text) as LoginSecret;
        return o.v === 1 && typeof o.refreshToken === 'string' && o.refreshToken !== '' ? o : undefined;
      } catch {
        return undefined;
      }
    },
    async writeSecret(secret) {
      await store.writeBlob(name, JSON.stringify(secret));
    },
    readIdentity: () => readLoginIdentity(dir, profile, source),
    writeIdentity(identity) {
      ensurePrivateDir(dir);
      writeFileAtomic(identityFile(dir, name), `${JSON.stringify(identity)}\n`);
    },
    async forget() {
      await store.deleteBlob(name);
      const { rmSync } = await import('node:fs');
      rmSync(identityFile(dir, name), { force: true });
    },
    lock(deadlineMs, signal) {
      return acquireLock({
        dir,
        key: name,
        deadlineMs,
        now: deps.now,
        maxHoldMs: 60_000,
        ...(signal ? { signal } : {}),
      });
    },
  };
}

export interface RenewedToken {
  value: string;
  expiresAtMs: number;
  claims?: Record<string, unknown>;
}

/** Audience parameters for providers that take one on the token request (Auth0 `audience`, RFC 8707 `resource`). */
export function audienceParams(source: OidcSourceConfig): Record<string, string> {
  return source.token === 'access_token' && source.audience
    ? { audience: source.audience, resource: source.audience }
    : {};
}

/**
 * Token path: redeems the refresh token once (under the login's lock), keeps a rotated one, and
 * returns the token the profile prints. Never opens a browser, never prompts.
 */
export async function renew(
  session: OidcSession,
  source: OidcSourceConfig,
  deps: SessionDeps,
  request: { signal: AbortSignal; deadlineMs: number },
): Promise<RenewedToken> {
  const { where } = session;
  const noLogin = (why: string) =>
    deniedError('ERR_OIDC_NO_LOGIN', `oidc source of profile ${where.profile}: ${why}`, {
      hint: `${loginHint(where.profile)}; ${seeDocs('ERR_OIDC_NO_LOGIN')}`,
    });
  const lock = await session.lock(request.deadlineMs, request.signal);
  try {
    // Read under the lock: another process may have rotated the token meanwhile.
    const secret = await session.readSecret();
    if (!secret) throw noLogin('not signed in');
    const identity = session.readIdentity();
    const fresh =
      identity?.server && identity.discoveredAtMs !== undefined
        ? deps.now() - identity.discoveredAtMs < DISCOVERY_MAX_AGE_MS
        : false;
    const base = oidcFetch(source, deps.env);
    let tokenEndpoint: string | undefined;
    let kept = false;
    // The new refresh token is stored the moment its response is in, before parsing goes on.
    const keepRotated: FetchLike = async (url, init) => {
      const res = await base(url, init);
      if (tokenEndpoint !== undefined && url === tokenEndpoint && res.status === 200) {
        try {
          const body = (await res.clone().json()) as { refresh_token?: unknown };
          if (typeof body.refresh_token === 'string' && body.refresh_token !== secret.refreshToken) {
            await session.writeSecret({ v: 1, refreshToken: body.refresh_token, receivedAtMs: deps.now() });
            kept = true;
          }
        } catch (e) {
          if (isKeybrokerError(e)) throw e;
          // not JSON: openid-client reports it
        }
      }
      return res;
    };
    const config = await openClient(
      source,
      { env: deps.env, platform: deps.platform, signal: request.signal, fetch: keepRotated },
      where,
      fresh ? identity!.server : undefined,
    );
    tokenEndpoint = config.serverMetadata().token_endpoint;
    // The profile's deadline bounds the request, not openid-client's own 30 s default: a request
    // given up on while the provider still works on it may have rotated the token we keep.
    config.timeout = Math.max(1, Math.ceil((request.deadlineMs - deps.now()) / 1000));
    let tokens: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
    try {
      tokens = await client.refreshTokenGrant(config, secret.refreshToken, audienceParams(source));
    } catch (e) {
      const err = oidcError(e, `oidc renewal for profile ${where.profile} at ${source.issuer}`, where);
      if (err.code === 'ERR_OIDC_LOGIN_REFUSED') {
        // The provider has ended this login: drop the dead refresh token (who it was stays for status).
        await session.store.deleteBlob(session.name).catch(() => {});
        throw deniedError(
          'ERR_OIDC_LOGIN_EXPIRED',
          `oidc source of profile ${where.profile}: the provider no longer accepts the login (invalid_grant: expired, revoked or the account disabled)`,
          { hint: `${loginHint(where.profile)}; ${seeDocs('ERR_OIDC_LOGIN_EXPIRED')}` },
        );
      }
      throw err;
    }
    if (tokens.refresh_token && tokens.refresh_token !== secret.refreshToken && !kept) {
      await session.writeSecret({ v: 1, refreshToken: tokens.refresh_token, receivedAtMs: deps.now() });
    }
    if (identity && !fresh) {
      session.writeIdentity({
        ...identity,
        server: { ...config.serverMetadata() },
        discoveredAtMs: deps.now(),
      });
    }
    return await pickToken(config, tokens, source, where, deps.now);
  } finally {
    lock.release();
  }
}

/** The token the profile prints: the ID token, the access token, or an RFC 8693 exchange of it. */
async function pickToken(
  config: client.Configuration,
  tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
  source: OidcSourceConfig,
  where: Where,
  now: () => number,
): Promise<RenewedToken> {
  let value: string | undefined;
  let expiresAtMs: number | undefined;
  const what = `oidc source of profile ${where.profile}`;
  if (source.exchange) {
    if (!tokens.access_token)
      throw missingError('ERR_OIDC_NO_TOKEN', `${what}: the provider gave no access token to exchange`, {
        hint: `check the client's grant settings at the provider; ${seeDocs('ERR_OIDC_NO_TOKEN')}`,
      });
    const params: Record<string, string> = {
      subject_token: tokens.access_token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      ...(source.exchange.audience ? { audience: source.exchange.audience } : {}),
      ...(source.exchange.scope ? { scope: source.exchange.scope } : {}),
    };
    let exchanged: Awaited<ReturnType<typeof client.genericGrantRequest>>;
    try {
      exchanged = await client.genericGrantRequest(
        config,
        'urn:ietf:params:oauth:grant-type:token-exchange',
        params,
      );
    } catch (e) {
      throw exchangeError(e, source.exchange, where);
    }
    value = exchanged.access_token;
    expiresAtMs = expiryOf(value, exchanged.expires_in, now);
  } else if ((source.token ?? 'id_token') === 'id_token') {
    value = tokens.id_token;
    if (!value) {
      throw missingError('ERR_OIDC_NO_TOKEN', `${what}: the provider's renewal carried no id_token`, {
        hint: `include "openid" in scopes, or set "token": "access_token"; ${seeDocs('ERR_OIDC_NO_TOKEN')}`,
      });
    }
    const exp = tokens.claims()?.exp;
    expiresAtMs = typeof exp === 'number' ? exp * 1000 : expiryOf(value, undefined, now);
  } else {
    value = tokens.access_token;
    expiresAtMs = expiryOf(value, tokens.expires_in, now);
  }
  if (!value) {
    throw missingError('ERR_OIDC_NO_TOKEN', `${what}: the provider gave no token`, {
      hint: `check the client's settings at the provider; ${seeDocs('ERR_OIDC_NO_TOKEN')}`,
    });
  }
  if (expiresAtMs === undefined) {
    throw missingError('ERR_OIDC_NO_TOKEN', `${what}: the token carries no expiry (no exp, no expires_in)`, {
      hint: `use "token": "id_token", or a provider setting that issues JWT access tokens; ${seeDocs('ERR_OIDC_NO_TOKEN')}`,
    });
  }
  const claims = jwtClaims(value);
  const required = source.requireClaims ?? [];
  if (required.length > 0) {
    const absent = required.filter((c) => claims?.[c] === undefined);
    if (absent.length > 0) {
      const refused = missingError(
        'ERR_OIDC_CLAIMS_MISSING',
        `${what}: the token lacks required claim${absent.length > 1 ? 's' : ''} ${absent.join(', ')}${claims ? '' : ' (it is not a JWT)'}`,
        {
          hint: `map the claim${absent.length > 1 ? 's' : ''} at the provider (scopes, claim rules) or change requireClaims; ${seeDocs('ERR_OIDC_CLAIMS_MISSING')}`,
        },
      );
      // doctor --probe shows what the refused token did carry (claims, never the token).
      throw Object.assign(refused, { tokenClaims: claims ?? {} });
    }
  }
  return { value, expiresAtMs, ...(claims ? { claims } : {}) };
}

/** The claims of a token refused for lacking a required claim (ERR_OIDC_CLAIMS_MISSING). */
export function refusedTokenClaims(e: unknown): Record<string, unknown> | undefined {
  const claims = (e as { tokenClaims?: unknown } | undefined)?.tokenClaims;
  return isObject(claims) ? claims : undefined;
}

/**
 * OAuth errors a token exchange is refused with (RFC 8693 §2.2.2, RFC 6749 §5.2). The renewal
 * before it worked, so they say nothing about the login: signing in again would not help, the
 * exchange's audience or scope (or the client's permission to exchange) needs changing.
 */
const EXCHANGE_REFUSALS = new Set([
  'invalid_request',
  'invalid_grant',
  'invalid_target',
  'invalid_scope',
  'unauthorized_client',
  'unsupported_grant_type',
  'access_denied',
]);

function exchangeError(e: unknown, exchange: NonNullable<OidcSourceConfig['exchange']>, where: Where): Error {
  const what = `oidc token exchange for profile ${where.profile}`;
  if (e instanceof client.ResponseBodyError && e.status < 500 && EXCHANGE_REFUSALS.has(e.error)) {
    return deniedError(
      'ERR_OIDC_EXCHANGE_REFUSED',
      `${what}: the provider refused to exchange the token${exchange.audience ? ` for audience ${safe(exchange.audience)}` : ''} (${safe(e.error)})`,
      {
        hint: `check exchange.audience and exchange.scope against what the provider lets this client exchange for; ${seeDocs('ERR_OIDC_EXCHANGE_REFUSED')}`,
        cause: e,
      },
    );
  }
  return oidcError(e, what, where);
}

function expiryOf(
  token: string | undefined,
  expiresIn: number | undefined,
  now: () => number,
): number | undefined {
  const exp = token ? jwtClaims(token)?.exp : undefined;
  if (typeof exp === 'number') return exp * 1000;
  return typeof expiresIn === 'number' ? now() + expiresIn * 1000 : undefined;
}
