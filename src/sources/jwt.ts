/**
 * The `jwt` source (contract §3): mints a short-lived JWT signed with jose. It never caches: the
 * broker decides when a new token is needed. jose is loaded only inside getToken / publicJwks.
 */
import { randomUUID } from 'node:crypto';
import type { JwtAlgorithm, JwtSourceConfig } from '../config/types.js';
import { configError, seeDocs } from '../errors.js';
import {
  DEFAULT_JWT_ALGORITHM,
  describeKeyRef,
  jwtAlgorithm,
  type KeyLoadOptions,
  loadSigningKey,
  loginName,
  type PublicJwk,
} from './signing-key.js';
import type { FetchedToken, Source, SourceDeps, TokenRequest } from './types.js';

export { generateSigningKey } from './signing-key.js';

const DEFAULT_NOT_BEFORE_SKEW_SEC = 30;
const DEFAULT_KEY_TIMEOUT_MS = 8_000;

/**
 * Registered claims a `claims` entry may not overwrite, and the setting that controls each. A
 * Map, not an object literal: a claim named `constructor` or `toString` must not find
 * Object.prototype's members.
 */
const RESERVED_CLAIMS: ReadonlyMap<string, string> = new Map([
  ['iss', 'set "issuer" instead'],
  ['sub', 'set "subject" instead'],
  ['aud', 'set "audience" instead'],
  ['exp', 'set "lifetimeSec" instead'],
  ['nbf', 'set "notBeforeSkewSec" instead'],
  ['iat', 'set "notBeforeSkewSec" instead'],
  ['jti', 'keybroker sets a random jti on every token'],
]);

export interface JwtPlan {
  alg: JwtAlgorithm;
  lifetimeSec: number;
  notBeforeSkewSec: number;
  subject: string;
  claims: Record<string, unknown>;
}

/** Default lifetime (contract §2): 2 × TTL + margin, rounded up to whole seconds. */
export function defaultLifetimeSec(ttlMs: number, refreshMarginMs: number): number {
  return Math.ceil((2 * ttlMs + refreshMarginMs) / 1000);
}

const fmtSec = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;

/**
 * Checks the settings that do not need the key: the algorithm, the lifetime rule and the
 * registered-claim guard. Applies the contract defaults (again, defensively: the config
 * resolver normally fills subject and claims).
 */
export function planJwt(config: JwtSourceConfig, deps: SourceDeps): JwtPlan {
  const alg = jwtAlgorithm(config);
  const claims = config.claims ?? { user: loginName(deps.env) };
  for (const name of Object.keys(claims)) {
    const fix = RESERVED_CLAIMS.get(name);
    if (fix !== undefined) {
      throw configError(
        'ERR_JWT_RESERVED_CLAIM',
        `jwt source: claims.${name} would overwrite the registered claim ${name}`,
        { hint: `remove it from "claims" (${fix}); ${seeDocs('ERR_JWT_RESERVED_CLAIM')}` },
      );
    }
  }
  const minMs = deps.ttlMs + deps.refreshMarginMs;
  const lifetimeSec = config.lifetimeSec ?? defaultLifetimeSec(deps.ttlMs, deps.refreshMarginMs);
  if (!Number.isInteger(lifetimeSec) || lifetimeSec * 1000 < minMs) {
    throw configError(
      'ERR_JWT_LIFETIME_TOO_SHORT',
      `jwt source: lifetimeSec ${lifetimeSec} is shorter than the TTL plus the refresh margin (${fmtSec(deps.ttlMs)} + ${fmtSec(deps.refreshMarginMs)} = ${fmtSec(minMs)})`,
      {
        hint: `set lifetimeSec to at least ${Math.ceil(minMs / 1000)} or remove it for the default 2 x TTL + margin = ${defaultLifetimeSec(deps.ttlMs, deps.refreshMarginMs)}; ${seeDocs('ERR_JWT_LIFETIME_TOO_SHORT')}`,
      },
    );
  }
  const notBeforeSkewSec = config.notBeforeSkewSec ?? DEFAULT_NOT_BEFORE_SKEW_SEC;
  return { alg, lifetimeSec, notBeforeSkewSec, subject: config.subject ?? loginName(deps.env), claims };
}

function keyOptions(deps: SourceDeps, timeoutMs: number): KeyLoadOptions {
  return { env: deps.env, homeDir: deps.homeDir, timeoutMs };
}

export function createJwtSource(config: JwtSourceConfig, deps: SourceDeps): Source {
  return {
    type: 'jwt',
    describe() {
      const alg = config.algorithm ?? DEFAULT_JWT_ALGORITHM;
      const key = config.signingKey ? `key from ${describeKeyRef(config.signingKey)}` : 'no signing key';
      const iss = config.issuer ? ` iss=${config.issuer}` : '';
      const aud = config.audience ? ` aud=${[config.audience].flat().join(',')}` : '';
      return `jwt ${alg} (${key})${iss}${aud}`;
    },
    async getToken(request: TokenRequest): Promise<FetchedToken> {
      const plan = planJwt(config, deps);
      const key = await loadSigningKey(
        config,
        keyOptions(deps, Math.max(1, request.deadlineMs - request.now())),
      );
      request.signal.throwIfAborted();
      const { SignJWT } = await import('jose');
      const nowMs = request.now();
      // One whole-second "now" for every claim, rounded down so nbf is never in the future.
      const nowSec = Math.floor(nowMs / 1000);
      const iat = nowSec - plan.notBeforeSkewSec;
      const exp = nowSec + plan.lifetimeSec;
      const jti = randomUUID();
      const payload: Record<string, unknown> = {
        ...plan.claims,
        ...(config.issuer !== undefined ? { iss: config.issuer } : {}),
        sub: plan.subject,
        ...(config.audience !== undefined ? { aud: config.audience } : {}),
        iat,
        nbf: iat,
        exp,
        jti,
      };
      const value = await new SignJWT(payload as any)
        .setProtectedHeader({ alg: plan.alg, kid: key.kid, typ: 'JWT' })
        .sign(key.key);
      deps.logger.debug(
        `jwt: signed ${plan.alg} kid=${key.kid} with key from ${key.origin}, exp in ${plan.lifetimeSec}s`,
      );
      return { value, expiresAtMs: exp * 1000, jti };
    },
  };
}

export interface JwkSet {
  keys: (PublicJwk & { kid: string; alg: string; use: 'sig' })[];
}

/** The public JWK Set of a jwt source's key, for the gateway (`keybroker jwks`). */
export async function publicJwks(config: JwtSourceConfig, deps: SourceDeps): Promise<JwkSet> {
  const alg = jwtAlgorithm(config);
  if (alg === 'HS256') {
    throw configError(
      'ERR_JWKS_SHARED_SECRET',
      'jwks: the profile signs with HS256, a shared secret with no public key',
      {
        hint: `give the gateway the secret itself, or switch to an asymmetric algorithm such as ES256; ${seeDocs('ERR_JWKS_SHARED_SECRET')}`,
      },
    );
  }
  const key = await loadSigningKey(config, keyOptions(deps, DEFAULT_KEY_TIMEOUT_MS));
  return { keys: [{ ...key.publicJwk, kid: key.kid, alg, use: 'sig' }] };
}
