/**
 * Compact JWS as Vault's identity tokens and its kubernetes and jwt auth methods use them:
 * RS256 and ES256 (P-256, IEEE P1363 signatures), keys as JWKs for `.well-known/keys`.
 */

import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import type { OidcKey } from './state.js';
import { isObject } from './values.js';

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export function publicJwk(key: KeyObject, kid: string, alg: string): Record<string, unknown> {
  return { ...createPublicKey(key).export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

export function signJwt(key: OidcKey, claims: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ alg: key.algorithm, kid: key.kid }));
  const payload = b64url(JSON.stringify(claims));
  const input = `${header}.${payload}`;
  const sig =
    key.algorithm === 'RS256'
      ? sign('sha256', Buffer.from(input), key.privateKey)
      : sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

/** Verifies a compact JWS (RS256 or ES256) against PEM public keys; returns its claims. */
export function verifyJwt(jwt: string, pems: string[]): Record<string, unknown> | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  let header: unknown;
  let claims: unknown;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(header) || !isObject(claims)) return undefined;
  const input = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2]!, 'base64url');
  for (const pem of pems) {
    try {
      const key = createPublicKey(pem);
      const ok =
        header.alg === 'RS256'
          ? verify('sha256', input, key, sig)
          : header.alg === 'ES256'
            ? verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, sig)
            : false;
      if (ok) return claims;
    } catch {
      // try the next key
    }
  }
  return undefined;
}
