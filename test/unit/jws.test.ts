/**
 * src/sources/jws.ts signs with node:crypto; jose, an independent implementation, is the judge:
 * every algorithm verifies with jose's compactVerify, the header and payload are the bytes
 * jose's SignJWT writes, and each thumbprint is the one jose's calculateJwkThumbprint gives.
 */
import {
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { calculateJwkThumbprint, compactVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { JwtAlgorithm } from '../../src/config/types.js';
import { jwkThumbprint, signCompactJws } from '../../src/sources/jws.js';

const KEYS: Record<Exclude<JwtAlgorithm, 'HS256'>, () => KeyObject> = {
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  ES384: () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  PS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  EdDSA: () => generateKeyPairSync('ed25519').privateKey,
};
const PAYLOAD = {
  user: 'ana',
  sub: 'ana',
  aud: ['a', 'b'],
  iat: 1_800_000_000,
  exp: 1_800_000_720,
  jti: 'x',
};

function parts(jws: string): string[] {
  return jws.split('.');
}

describe('signCompactJws', () => {
  for (const [alg, make] of Object.entries(KEYS) as [Exclude<JwtAlgorithm, 'HS256'>, () => KeyObject][]) {
    it(`${alg}: jose verifies it with the public key, and its header and payload are jose's bytes`, async () => {
      const key = make();
      const header = { alg, kid: 'k1', typ: 'JWT' };
      const jws = signCompactJws(alg, key, header, PAYLOAD);
      const verified = await compactVerify(jws, createPublicKey(key), { algorithms: [alg] });
      expect(verified.protectedHeader).toEqual(header);
      expect(JSON.parse(Buffer.from(verified.payload).toString('utf8'))).toEqual(PAYLOAD);
      const byJose = await new SignJWT(PAYLOAD).setProtectedHeader(header).sign(key);
      expect(parts(jws).slice(0, 2)).toEqual(parts(byJose).slice(0, 2));
    });
  }

  it('HS256: jose verifies it with the shared secret', async () => {
    const secret = randomBytes(32);
    const jws = signCompactJws('HS256', secret, { alg: 'HS256', kid: 'k', typ: 'JWT' }, PAYLOAD);
    const verified = await compactVerify(jws, createSecretKey(secret), { algorithms: ['HS256'] });
    expect(verified.protectedHeader.alg).toBe('HS256');
  });

  it('a signature made for one key does not verify with another', async () => {
    const jws = signCompactJws('ES256', KEYS.ES256(), { alg: 'ES256', typ: 'JWT' }, PAYLOAD);
    await expect(compactVerify(jws, createPublicKey(KEYS.ES256()))).rejects.toThrow(/signature/);
  });

  it('refuses a key of the wrong kind for the algorithm', () => {
    expect(() => signCompactJws('HS256', KEYS.ES256(), {}, PAYLOAD)).toThrow(
      'HS256 signs with a shared secret',
    );
    expect(() => signCompactJws('ES256', randomBytes(32), {}, PAYLOAD)).toThrow(
      'ES256 signs with a private key',
    );
  });
});

describe('jwkThumbprint', () => {
  for (const [alg, make] of Object.entries(KEYS)) {
    it(`${alg} key: the thumbprint jose calculates`, async () => {
      const jwk = createPublicKey(make()).export({ format: 'jwk' }) as Record<string, string>;
      expect(jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
    });
  }

  it('an oct JWK (HS256): the thumbprint jose calculates', async () => {
    const jwk = { kty: 'oct', k: randomBytes(32).toString('base64url') };
    expect(jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
  });

  it('the RFC 7638 §3.1 example', () => {
    const n =
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    expect(jwkThumbprint({ kty: 'RSA', n, e: 'AQAB', alg: 'RS256', kid: '2011-04-29' })).toBe(
      'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs',
    );
  });

  it('a JWK without its required members has no thumbprint', () => {
    expect(() => jwkThumbprint({ kty: 'EC', crv: 'P-256', x: 'AA' })).toThrow('the JWK has no "y"');
    expect(() => jwkThumbprint({ kty: 'XYZ' })).toThrow('no RFC 7638 thumbprint for kty XYZ');
  });
});
