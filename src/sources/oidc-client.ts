/**
 * The OpenID Connect relying party: openid-client (panva, a certified RP) configured for one
 * `oidc` profile, its HTTP through one seam (`oidcFetch`, where the shared trust-store and proxy
 * module plugs in), and the translation of what the provider says into keybroker's errors.
 * Loaded only on an `oidc` profile's cold path (login, logout, renewal), never on a cache hit.
 */
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import type { OidcSourceConfig, SecretRef } from '../config/types.js';
import { isKeybrokerError, type KeybrokerError } from '../errors.js';
import { assertPrivateFile } from '../platform/safe-fs.js';
import { isObject, printableAscii } from '../platform/text.js';
import { sourceError } from './failure.js';

export { client };

export const DEFAULT_SCOPES = ['openid', 'profile', 'email', 'offline_access'];
/** Discovery is looked up again after this long (endpoints and keys rarely move). */
export const DISCOVERY_MAX_AGE_MS = 24 * 3600_000;

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface OidcClientDeps {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  /** Aborts every request (the profile's deadline on the token path). */
  signal?: AbortSignal;
  /** The HTTP client; defaults to `oidcFetch`. */
  fetch?: FetchLike;
}

/**
 * The one place OIDC HTTP goes through: the shared network client (src/net), so the provider is
 * reached with the OS trust store plus `caCert`, and through the same proxies as every source
 * (contract §3a). Proxy and untrusted-certificate failures come back as ERR_PROXY /
 * ERR_TLS_UNTRUSTED.
 */
export function oidcFetch(source: OidcSourceConfig, env: OidcClientDeps['env']): FetchLike {
  let net: Promise<import('../net/client.js').NetClient> | undefined;
  const open = async () => {
    const { createNetClient } = await import('../net/client.js');
    return createNetClient({
      env,
      rejectUnauthorized: true,
      ...(source.caCert ? { caCerts: [{ file: source.caCert, pem: readFileSync(source.caCert) }] } : {}),
    });
  };
  return async (url, init) => {
    net ??= open();
    const client = await net;
    try {
      return await client.fetch(url, init);
    } catch (e) {
      throw client.explain(e, url) ?? e;
    }
  };
}

export function scopesOf(source: OidcSourceConfig): string[] {
  return source.scopes ?? DEFAULT_SCOPES;
}

/** `profile P` in messages. */
export interface Where {
  profile: string;
  issuer: string;
}

export function loginHint(profile: string): string {
  return `run keybroker login --profile ${profile}`;
}

async function readClientSecret(ref: SecretRef, deps: OidcClientDeps, where: Where): Promise<string> {
  const fail = (why: string) =>
    sourceError(
      'config',
      'ERR_OIDC_CLIENT_SECRET',
      `oidc clientSecret of profile ${where.profile}: ${why}`,
      'fix clientSecret, or leave it out for a public client',
    );
  if ('env' in ref) {
    const v = deps.env[ref.env];
    if (v === undefined || v === '') throw fail(`environment variable ${ref.env} is not set`);
    return v.trim();
  }
  if ('file' in ref) {
    try {
      const { lstatSync } = await import('node:fs');
      assertPrivateFile(ref.file, lstatSync(ref.file), 'oidc client secret file');
      return readFileSync(ref.file, 'utf8').trim();
    } catch (e) {
      if (isKeybrokerError(e)) throw e;
      throw fail(`file ${ref.file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const account = ref.keychain.account ?? deps.env.USER ?? deps.env.USERNAME ?? '';
  const { openKeyring } = await import('../platform/keyring.js');
  const keyring = await openKeyring({ env: deps.env, platform: deps.platform, timeoutMs: 3000 });
  const v = await keyring.get(ref.keychain.service, account);
  if (v === undefined || v === '')
    throw fail(`keychain item service=${ref.keychain.service} account=${account} was not found`);
  return v.trim();
}

/**
 * A configured client. With `server` (a discovery document remembered from the login) no
 * discovery request is made; otherwise the provider's `/.well-known/openid-configuration` is read.
 */
export async function openClient(
  source: OidcSourceConfig,
  deps: OidcClientDeps,
  where: Where,
  server?: Record<string, unknown>,
): Promise<client.Configuration> {
  const secret = source.clientSecret ? await readClientSecret(source.clientSecret, deps, where) : undefined;
  const auth = secret === undefined ? client.None() : client.ClientSecretPost(secret);
  const base = deps.fetch ?? oidcFetch(source, deps.env);
  const signal = deps.signal;
  const customFetch: FetchLike = (url, init) =>
    base(url, {
      ...init,
      ...(signal ? { signal: init.signal ? AbortSignal.any([init.signal, signal]) : signal } : {}),
    });
  const insecure = new URL(source.issuer).protocol === 'http:';
  let config: client.Configuration;
  if (server) {
    config = new client.Configuration(server as client.ServerMetadata, source.clientId, undefined, auth);
    if (insecure) client.allowInsecureRequests(config);
    config[client.customFetch] = customFetch as client.CustomFetch;
  } else {
    try {
      config = await client.discovery(new URL(source.issuer), source.clientId, undefined, auth, {
        // Plain http is refused unless the issuer itself is http (a provider on loopback in tests).
        ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
        [client.customFetch]: customFetch as client.CustomFetch,
      });
    } catch (e) {
      throw oidcError(e, `oidc discovery at ${source.issuer}`, where);
    }
  }
  return config;
}

/**
 * What the provider (or the way to it) said, as keybroker's error: unreachable (3) for network,
 * timeouts and 5xx; denied (4) with the login hint for a refused or expired login; config (2)
 * for a client the provider does not know.
 */
export function oidcError(e: unknown, what: string, where: Where): KeybrokerError {
  if (isKeybrokerError(e)) return e;
  const hint = loginHint(where.profile);
  if (e instanceof client.ResponseBodyError) {
    const code = e.error;
    if (e.status >= 500) {
      return sourceError(
        'unreachable',
        'ERR_OIDC_UNREACHABLE',
        `${what}: the provider answered HTTP ${e.status}`,
        'try again later',
        { cause: e },
      );
    }
    if (code === 'invalid_grant' || code === 'expired_token' || code === 'access_denied') {
      const why =
        code === 'invalid_grant'
          ? 'the provider no longer accepts the login (invalid_grant: expired, revoked or the account disabled)'
          : code === 'expired_token'
            ? 'the sign-in code expired before it was used (expired_token)'
            : 'the sign-in was refused (access_denied)';
      return sourceError('denied', 'ERR_OIDC_LOGIN_REFUSED', `${what}: ${why}`, `${hint}`, { cause: e });
    }
    if (code === 'invalid_client' || code === 'unauthorized_client' || code === 'invalid_scope') {
      return sourceError(
        'config',
        'ERR_OIDC_CLIENT',
        `${what}: the provider refused this client (${safe(code)})`,
        "check clientId, clientSecret and scopes against the provider's app registration",
        { cause: e },
      );
    }
    return sourceError(
      'denied',
      'ERR_OIDC_DENIED',
      `${what}: the provider refused (${safe(code)})`,
      `${hint}`,
      { cause: e },
    );
  }
  if (e instanceof client.AuthorizationResponseError) {
    return sourceError(
      'denied',
      'ERR_OIDC_LOGIN_REFUSED',
      `${what}: the sign-in was refused (${safe(e.error)})`,
      `${hint}`,
      { cause: e },
    );
  }
  const name = (e as Error)?.name;
  // The first system error code down the cause chain (undici nests it, in AggregateErrors too).
  let causeCode = '';
  for (let c: unknown = (e as { cause?: unknown })?.cause, i = 0; c && i < 8 && !causeCode; i++) {
    const o = c as { code?: unknown; errors?: unknown[]; cause?: unknown };
    if (typeof o.code === 'string' && /^E[A-Z_]+$/.test(o.code)) causeCode = o.code;
    c = o.cause ?? o.errors?.[0];
  }
  const causeName = (e as { cause?: { name?: string } })?.cause?.name;
  if (
    name === 'AbortError' ||
    name === 'TimeoutError' ||
    causeName === 'TimeoutError' ||
    causeName === 'AbortError'
  ) {
    return sourceError(
      'unreachable',
      'ERR_OIDC_UNREACHABLE',
      `${what}: no answer in time`,
      'check the network and the issuer address',
      { cause: e },
    );
  }
  if (e instanceof TypeError || causeCode !== '') {
    return sourceError(
      'unreachable',
      'ERR_OIDC_UNREACHABLE',
      `${what}: the provider cannot be reached${causeCode ? ` (${safe(causeCode)})` : ''}`,
      'check the network and the issuer address',
      { cause: e },
    );
  }
  if (e instanceof client.ClientError) {
    // The provider answered something openid-client will not accept (wrong issuer, a bad
    // response): it is the provider's or the configuration's fault, not the network's.
    return sourceError(
      'missing',
      'ERR_OIDC_BAD_RESPONSE',
      `${what}: the provider's answer was refused (${safe(e.message)})`,
      "check that issuer is exactly the provider's issuer",
      { cause: e },
    );
  }
  return sourceError(
    'unreachable',
    'ERR_OIDC_UNREACHABLE',
    `${what}: ${safe(name ?? 'error')}`,
    'check the network and the issuer address',
    { cause: e },
  );
}

/** Text from a server, made printable (contract §7). */
export function safe(s: string | undefined): string {
  return printableAscii(String(s ?? '')).slice(0, 200);
}

/** The claims of a JWT, without verifying it (the provider's signature is the gateway's to check). */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const o = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return isObject(o) ? o : undefined;
  } catch {
    return undefined;
  }
}
