/**
 * A JWS in compact serialization (RFC 7515 §7.1) signed with node:crypto, and the RFC 7638 JWK
 * thumbprint. Why not jose, which the tests keep as the verifier: jose's Node build signs and
 * hashes through WebCrypto, whose jobs run on the thread pool, and loading it with WebCrypto
 * cost a cold JWT mint about as much as everything else keybroker does (docs/performance.md).
 * The keys reaching here were checked by signing-key.ts (type and curve fit the algorithm, RSA
 * at least 2048 bits, an HS256 secret at least 32 bytes).
 */
import { constants, createHash, createHmac, type KeyObject, sign } from 'node:crypto';
import type { JwtAlgorithm } from '../config/types.js';

const b64url = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

/** The signature of `input` under `alg` (RFC 7518 §3: ECDSA as R || S, PSS with a 32-byte salt). */
function signature(alg: JwtAlgorithm, key: KeyObject | Uint8Array, input: Buffer): Buffer {
  if (alg === 'HS256') {
    if (!(key instanceof Uint8Array)) throw new TypeError('HS256 signs with a shared secret');
    return createHmac('sha256', key).update(input).digest();
  }
  if (key instanceof Uint8Array) throw new TypeError(`${alg} signs with a private key`);
  switch (alg) {
    case 'ES256':
      return sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
    case 'ES384':
      return sign('sha384', input, { key, dsaEncoding: 'ieee-p1363' });
    case 'RS256':
      return sign('sha256', input, { key, padding: constants.RSA_PKCS1_PADDING });
    case 'PS256':
      return sign('sha256', input, {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      });
    case 'EdDSA':
      return sign(null, input, key);
    default:
      throw new TypeError(`unsupported algorithm ${String(alg)}`);
  }
}

/** `base64url(header).base64url(payload).base64url(signature)`, the header's `alg` being `alg`. */
export function signCompactJws(
  alg: JwtAlgorithm,
  key: KeyObject | Uint8Array,
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
): string {
  const input = `${b64url(JSON.stringify({ ...header, alg }))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${signature(alg, key, Buffer.from(input, 'ascii')).toString('base64url')}`;
}

/** The members RFC 7638 §3.2 hashes for each key type, in lexicographic order. */
const THUMBPRINT_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n'],
  oct: ['k', 'kty'],
};

/** RFC 7638 thumbprint of a public (or oct) JWK: SHA-256 of its required members, base64url. */
export function jwkThumbprint(jwk: Readonly<Record<string, string>>): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty ?? ''];
  if (!members) throw new TypeError(`no RFC 7638 thumbprint for kty ${String(jwk.kty)}`);
  const canonical: Record<string, string> = {};
  for (const m of members) {
    const v = jwk[m];
    if (typeof v !== 'string' || v === '') throw new TypeError(`the JWK has no "${m}"`);
    canonical[m] = v;
  }
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}
