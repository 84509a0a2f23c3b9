import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeProtectedHeader,
  exportJWK,
  importPKCS8,
  jwtVerify,
} from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JwtAlgorithm, JwtSourceConfig } from '../../src/config/types.js';
import {
  createJwtSource,
  defaultLifetimeSec,
  generateSigningKey,
  publicJwks,
} from '../../src/sources/jwt.js';
import type { SourceDeps } from '../../src/sources/types.js';
import { failure, sourceDeps, tokenRequest } from './jwt-fixtures.js';

const NOW_MS = 1_800_000_000_900; // a fractional second, to pin the rounding (down)
const NOW_SEC = 1_800_000_000;
const ALGS: JwtAlgorithm[] = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'HS256'];

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-jwt-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const deps = (over: Partial<SourceDeps> = {}) => sourceDeps(dir, over);
const request = (nowMs = NOW_MS) => tokenRequest(nowMs);

function writeKey(name: string, material: string, mode = 0o600): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, material, { mode });
  fs.chmodSync(p, mode);
  return p;
}

describe('jwt source: every algorithm', () => {
  for (const alg of ALGS) {
    it(`${alg}: mints a token that verifies against the profile's JWK Set`, async () => {
      const gen = await generateSigningKey(alg);
      const file = writeKey('key', gen.material);
      const config: JwtSourceConfig = {
        type: 'jwt',
        algorithm: alg,
        signingKey: { file },
        issuer: 'https://keybroker.test',
        audience: 'litellm',
        subject: 'alice',
        claims: { user: 'alice', team: 'engineering' },
      };
      const token = await createJwtSource(config, deps()).getToken(request());
      const header = decodeProtectedHeader(token.value);
      expect(header).toEqual({ alg, kid: gen.kid, typ: 'JWT' });
      let payload: Record<string, unknown>;
      if (alg === 'HS256') {
        const k = JSON.parse(gen.material).k as string;
        await expect(publicJwks(config, deps())).rejects.toThrow(/HS256, a shared secret with no public key/);
        payload = (
          await jwtVerify(token.value, Buffer.from(k, 'base64url'), { currentDate: new Date(NOW_MS) })
        ).payload;
      } else {
        const jwks = await publicJwks(config, deps());
        expect(jwks.keys).toHaveLength(1);
        const jwk = jwks.keys[0]!;
        expect(jwk).toMatchObject({ kid: gen.kid, alg, use: 'sig' });
        expect(jwk).not.toHaveProperty('d');
        payload = (
          await jwtVerify(token.value, createLocalJWKSet(jwks as any), {
            currentDate: new Date(NOW_MS),
            issuer: 'https://keybroker.test',
            audience: 'litellm',
            algorithms: [alg],
          })
        ).payload;
      }
      expect(payload).toEqual({
        user: 'alice',
        team: 'engineering',
        iss: 'https://keybroker.test',
        sub: 'alice',
        aud: 'litellm',
        iat: NOW_SEC - 30,
        nbf: NOW_SEC - 30,
        exp: NOW_SEC + 720,
        jti: token.jti,
      });
      expect(token.expiresAtMs).toBe((NOW_SEC + 720) * 1000);
    });
  }

  it('a token does not verify against another key of the same algorithm', async () => {
    const a = await generateSigningKey('ES256');
    const b = await generateSigningKey('ES256');
    const token = await createJwtSource(
      { type: 'jwt', signingKey: { file: writeKey('a', a.material) } },
      deps(),
    ).getToken(request());
    const jwksB = await publicJwks({ type: 'jwt', signingKey: { file: writeKey('b', b.material) } }, deps());
    await expect(
      jwtVerify(token.value, createLocalJWKSet(jwksB as any), { currentDate: new Date(NOW_MS) }),
    ).rejects.toThrow();
  });
});

describe('jwt source: claims', () => {
  it('defaults: ES256, sub and user = login name, no iss/aud, lifetime 2 x TTL + margin, skew 30 s', async () => {
    const gen = await generateSigningKey('ES256');
    const token = await createJwtSource(
      { type: 'jwt', signingKey: { file: writeKey('k', gen.material) } },
      deps({ ttlMs: 3_600_000, refreshMarginMs: 120_000 }),
    ).getToken(request(NOW_SEC * 1000));
    const { payload, protectedHeader } = await jwtVerify(
      token.value,
      createLocalJWKSet(
        (await publicJwks({ type: 'jwt', signingKey: { file: path.join(dir, 'k') } }, deps())) as any,
      ),
      { currentDate: new Date(NOW_SEC * 1000) },
    );
    expect(protectedHeader.alg).toBe('ES256');
    const user = os.userInfo().username;
    expect(payload).toEqual({
      user,
      sub: user,
      iat: NOW_SEC - 30,
      nbf: NOW_SEC - 30,
      exp: NOW_SEC + 7320,
      jti: token.jti,
    });
    expect(token.jti).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('lifetimeSec, notBeforeSkewSec, an audience list and custom claims are applied; jti differs per token', async () => {
    const gen = await generateSigningKey('EdDSA');
    const source = createJwtSource(
      {
        type: 'jwt',
        algorithm: 'EdDSA',
        signingKey: { file: writeKey('k', gen.material) },
        audience: ['a', 'b'],
        lifetimeSec: 900,
        notBeforeSkewSec: 5,
        claims: { team: 'eng', groups: ['x', 'y'], level: 3 },
      },
      deps(),
    );
    const t1 = await source.getToken(request(NOW_SEC * 1000));
    const t2 = await source.getToken(request(NOW_SEC * 1000));
    expect(t1.jti).not.toBe(t2.jti);
    const body = JSON.parse(Buffer.from(t1.value.split('.')[1]!, 'base64url').toString('utf8'));
    expect(body).toEqual({
      team: 'eng',
      groups: ['x', 'y'],
      level: 3,
      sub: os.userInfo().username,
      aud: ['a', 'b'],
      iat: NOW_SEC - 5,
      nbf: NOW_SEC - 5,
      exp: NOW_SEC + 900,
      jti: t1.jti,
    });
    expect(t1.expiresAtMs).toBe((NOW_SEC + 900) * 1000);
  });

  it('default lifetime is rounded up to whole seconds', () => {
    expect(defaultLifetimeSec(300_000, 120_000)).toBe(720);
    expect(defaultLifetimeSec(300_001, 120_000)).toBe(721);
  });

  for (const [claim, fix] of [
    ['iss', 'set "issuer" instead'],
    ['sub', 'set "subject" instead'],
    ['aud', 'set "audience" instead'],
    ['exp', 'set "lifetimeSec" instead'],
    ['nbf', 'set "notBeforeSkewSec" instead'],
    ['iat', 'set "notBeforeSkewSec" instead'],
    ['jti', 'keybroker sets a random jti on every token'],
  ] as const) {
    it(`a claims entry named ${claim} is a configuration error (exit 2)`, async () => {
      const gen = await generateSigningKey('ES256');
      const source = createJwtSource(
        {
          type: 'jwt',
          signingKey: { file: writeKey('k', gen.material) },
          claims: { team: 'x', [claim]: 'evil' },
        },
        deps(),
      );
      expect(await failure(source.getToken(request()))).toEqual({
        exit: 2,
        line: `keybroker: jwt source: claims.${claim} would overwrite the registered claim ${claim} (remove it from "claims" (${fix}); run keybroker explain ERR_JWT_RESERVED_CLAIM)`,
      });
    });
  }
});

describe('finding 12a: claim names that are Object.prototype members', () => {
  it('claims named constructor, toString and __proto__ are ordinary claims, not reserved ones', async () => {
    const gen = await generateSigningKey('ES256');
    const claims = JSON.parse(
      '{"constructor": "c", "toString": "t", "hasOwnProperty": "h", "__proto__": "p"}',
    );
    const token = await createJwtSource(
      { type: 'jwt', signingKey: { file: writeKey('k', gen.material) }, claims },
      deps(),
    ).getToken(request());
    const body = JSON.parse(Buffer.from(token.value.split('.')[1]!, 'base64url').toString('utf8'));
    expect([body.constructor, body.toString, body.hasOwnProperty]).toEqual(['c', 't', 'h']);
  });
});

describe('jwt source: lifetime rule', () => {
  it('a lifetime under TTL + margin is exit 2 with the numbers and what to set', async () => {
    const source = createJwtSource({ type: 'jwt', signingKey: { env: 'K' }, lifetimeSec: 419 }, deps());
    expect(await failure(source.getToken(request()))).toEqual({
      exit: 2,
      line: 'keybroker: jwt source: lifetimeSec 419 is shorter than the TTL plus the refresh margin (300 s + 120 s = 420 s) (set lifetimeSec to at least 420 or remove it for the default 2 x TTL + margin = 720; run keybroker explain ERR_JWT_LIFETIME_TOO_SHORT)',
    });
  });

  it('a lifetime of exactly TTL + margin is accepted', async () => {
    const gen = await generateSigningKey('ES256');
    const token = await createJwtSource(
      { type: 'jwt', signingKey: { env: 'K' }, lifetimeSec: 420 },
      deps({ env: { K: gen.material } }),
    ).getToken(request(NOW_SEC * 1000));
    expect(token.expiresAtMs).toBe((NOW_SEC + 420) * 1000);
  });

  it('the TTL from Claude Code moves the bound (1 h TTL: 3720 s)', async () => {
    const source = createJwtSource(
      { type: 'jwt', signingKey: { env: 'K' }, lifetimeSec: 3600 },
      deps({ ttlMs: 3_600_000 }),
    );
    expect((await failure(source.getToken(request()))).line).toBe(
      'keybroker: jwt source: lifetimeSec 3600 is shorter than the TTL plus the refresh margin (3600 s + 120 s = 3720 s) (set lifetimeSec to at least 3720 or remove it for the default 2 x TTL + margin = 7320; run keybroker explain ERR_JWT_LIFETIME_TOO_SHORT)',
    );
  });
});

describe('jwt source: signing keys', () => {
  it('the default kid is the RFC 7638 thumbprint jose computes for the public key', async () => {
    const gen = await generateSigningKey('ES256');
    const priv = await importPKCS8(gen.material, 'ES256', { extractable: true });
    const { d: _d, ...pub } = await exportJWK(priv);
    const expected = await calculateJwkThumbprint(pub);
    expect(gen.kid).toBe(expected);
    const jwks = await publicJwks({ type: 'jwt', signingKey: { file: writeKey('k', gen.material) } }, deps());
    expect(jwks.keys[0]!.kid).toBe(expected);
  });

  it('keyId overrides the thumbprint in the header and the JWK Set', async () => {
    const gen = await generateSigningKey('ES256');
    const config: JwtSourceConfig = {
      type: 'jwt',
      keyId: 'key-2026',
      signingKey: { file: writeKey('k', gen.material) },
    };
    const token = await createJwtSource(config, deps()).getToken(request());
    expect(decodeProtectedHeader(token.value).kid).toBe('key-2026');
    expect((await publicJwks(config, deps())).keys[0]!.kid).toBe('key-2026');
  });

  it('HS256 without keyId uses the thumbprint of the oct JWK', async () => {
    const gen = await generateSigningKey('HS256');
    const { k } = JSON.parse(gen.material);
    expect(gen.kid).toBe(await calculateJwkThumbprint({ kty: 'oct', k }));
  });

  it('a key from an environment variable: PEM, JWK JSON, or for HS256 the raw secret', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const jwk = JSON.stringify(privateKey.export({ format: 'jwk' }));
    const a = await createJwtSource(
      { type: 'jwt', signingKey: { env: 'KEY' } },
      deps({ env: { KEY: pem } }),
    ).getToken(request());
    const b = await createJwtSource(
      { type: 'jwt', signingKey: { env: 'KEY' } },
      deps({ env: { KEY: jwk } }),
    ).getToken(request());
    expect(decodeProtectedHeader(a.value).kid).toBe(decodeProtectedHeader(b.value).kid);
    const secret = 'correct horse battery staple, thirty-two+ bytes';
    const h = await createJwtSource(
      { type: 'jwt', algorithm: 'HS256', signingKey: { env: 'KEY' } },
      deps({ env: { KEY: secret } }),
    ).getToken(request());
    await jwtVerify(h.value, new TextEncoder().encode(secret), { currentDate: new Date(NOW_MS) });
  });

  it('a key from a JWK JSON file', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const file = writeKey('k.json', JSON.stringify(privateKey.export({ format: 'jwk' })));
    const config: JwtSourceConfig = { type: 'jwt', algorithm: 'EdDSA', signingKey: { file } };
    const token = await createJwtSource(config, deps()).getToken(request());
    await jwtVerify(token.value, createLocalJWKSet((await publicJwks(config, deps())) as any), {
      currentDate: new Date(NOW_MS),
    });
  });

  it('~ in signingKey.file is the home directory', async () => {
    const gen = await generateSigningKey('ES256');
    writeKey('k', gen.material);
    const jwks = await publicJwks({ type: 'jwt', signingKey: { file: '~/k' } }, deps());
    expect(jwks.keys[0]!.kid).toBe(gen.kid);
  });

  it('a 0644 key file is exit 6 with the exact message', async () => {
    const gen = await generateSigningKey('ES256');
    const file = writeKey('k', gen.material, 0o644);
    expect(
      await failure(createJwtSource({ type: 'jwt', signingKey: { file } }, deps()).getToken(request())),
    ).toEqual({
      exit: 6,
      line: `keybroker: signing key file ${file}: permissions 0644 are too open (run chmod 600 '${file}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)`,
    });
  });

  it('finding 1: a root-owned key readable by its group (0640) is accepted; 0660 and 0644 are not', async () => {
    const gen = await generateSigningKey('ES256');
    const file = writeKey('k', gen.material, 0o640);
    fs.chownSync(file, 0, 0);
    const token = await createJwtSource({ type: 'jwt', signingKey: { file } }, deps()).getToken(request());
    expect(token.value.split('.')).toHaveLength(3);
    for (const mode of [0o660, 0o644]) {
      fs.chmodSync(file, mode);
      const octal = mode.toString(8).padStart(4, '0');
      expect(
        await failure(createJwtSource({ type: 'jwt', signingKey: { file } }, deps()).getToken(request())),
      ).toEqual({
        exit: 6,
        line: `keybroker: signing key file ${file}: permissions ${octal} are too open (run chmod 600 '${file}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)`,
      });
    }
  });

  it('a symlinked key file is exit 6', async () => {
    const gen = await generateSigningKey('ES256');
    const target = writeKey('real', gen.material);
    const link = path.join(dir, 'link');
    fs.symlinkSync(target, link);
    expect(await failure(publicJwks({ type: 'jwt', signingKey: { file: link } }, deps()))).toEqual({
      exit: 6,
      line: `keybroker: signing key file ${link}: is a symbolic link (replace the link with the file itself; run keybroker explain ERR_UNSAFE_SYMLINK)`,
    });
  });

  it('a missing key file is exit 2 with a keygen hint', async () => {
    const file = path.join(dir, 'nope.pem');
    expect(
      await failure(createJwtSource({ type: 'jwt', signingKey: { file } }, deps()).getToken(request())),
    ).toEqual({
      exit: 2,
      line: `keybroker: jwt signing key file ${file}: does not exist (create it with keybroker keygen --algorithm ES256 --out '${file}', or fix signingKey.file; run keybroker explain ERR_JWT_KEY_FILE_MISSING)`,
    });
  });

  it('a malformed key file is exit 2 naming the file, never its content', async () => {
    const file = writeKey('k', '-----BEGIN PRIVATE KEY-----\nTOPSECRETGARBAGE\n-----END PRIVATE KEY-----\n');
    const f1 = await failure(
      createJwtSource({ type: 'jwt', signingKey: { file } }, deps()).getToken(request()),
    );
    expect(f1).toEqual({
      exit: 2,
      line: `keybroker: jwt signing key from file ${file}: is not a valid PEM private key (provide an unencrypted PKCS#8 PEM or a private JWK (keybroker keygen makes one); run keybroker explain ERR_JWT_KEY_MALFORMED)`,
    });
    const json = writeKey('j', '{"kty": "EC", "d": TOPSECRET');
    const f2 = await failure(publicJwks({ type: 'jwt', signingKey: { file: json } }, deps()));
    expect(f2.line).toBe(
      `keybroker: jwt signing key from file ${json}: is not valid JSON (provide an unencrypted PKCS#8 PEM or a private JWK (keybroker keygen makes one); run keybroker explain ERR_JWT_KEY_MALFORMED)`,
    );
    const raw = writeKey('r', 'TOPSECRET just some text');
    const f3 = await failure(publicJwks({ type: 'jwt', signingKey: { file: raw } }, deps()));
    expect(f3.line).toContain(`jwt signing key from file ${raw}: is neither a PEM private key nor a JWK`);
    for (const f of [f1, f2, f3]) expect(f.line).not.toContain('TOPSECRET');
  });

  it('a public key is refused as a signing key', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pemFile = writeKey('pub.pem', publicKey.export({ type: 'spki', format: 'pem' }).toString());
    expect(
      (await failure(publicJwks({ type: 'jwt', signingKey: { file: pemFile } }, deps()))).line,
    ).toContain('holds a public key or certificate, not a private key');
    const { d: _d, ...pubJwk } = privateKey.export({ format: 'jwk' });
    const jwkFile = writeKey('pub.json', JSON.stringify(pubJwk));
    expect(
      (await failure(publicJwks({ type: 'jwt', signingKey: { file: jwkFile } }, deps()))).line,
    ).toContain('is a public JWK; signingKey needs the private key');
  });

  it('a key whose type does not fit the algorithm is exit 2', async () => {
    const p256 = await generateSigningKey('ES256');
    const file = writeKey('k', p256.material);
    expect(
      await failure(
        createJwtSource({ type: 'jwt', algorithm: 'ES384', signingKey: { file } }, deps()).getToken(
          request(),
        ),
      ),
    ).toEqual({
      exit: 2,
      line: `keybroker: jwt signing key from file ${file}: is an EC P-256 key, which does not fit algorithm ES384 (set "algorithm" to ES256, or make a ES384 key with keybroker keygen --algorithm ES384; run keybroker explain ERR_JWT_KEY_MISMATCH)`,
    });
    const rsa = await generateSigningKey('RS256');
    const rsaFile = writeKey('r', rsa.material);
    expect(
      (await failure(publicJwks({ type: 'jwt', algorithm: 'EdDSA', signingKey: { file: rsaFile } }, deps())))
        .line,
    ).toContain(
      'is an RSA 2048-bit key, which does not fit algorithm EdDSA (set "algorithm" to RS256 or PS256',
    );
    // a PEM for HS256, and a secret for ES256
    expect(
      (
        await failure(
          createJwtSource({ type: 'jwt', algorithm: 'HS256', signingKey: { file } }, deps()).getToken(
            request(),
          ),
        )
      ).exit,
    ).toBe(2);
    const oct = writeKey('o', (await generateSigningKey('HS256')).material);
    expect((await failure(publicJwks({ type: 'jwt', signingKey: { file: oct } }, deps()))).line).toContain(
      'is a JWK for HS256, which does not fit algorithm ES256',
    );
  });

  it('RSA under 2048 bits and an HS256 secret under 32 bytes are refused', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const file = writeKey('k', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const weak = await failure(publicJwks({ type: 'jwt', algorithm: 'RS256', signingKey: { file } }, deps()));
    expect(weak).toEqual({
      exit: 2,
      line: `keybroker: jwt signing key from file ${file}: is an RSA 1024-bit key, shorter than 2048 bits (make a new key with keybroker keygen --algorithm RS256; run keybroker explain ERR_JWT_KEY_TOO_WEAK)`,
    });
    const short = await failure(
      createJwtSource(
        { type: 'jwt', algorithm: 'HS256', signingKey: { env: 'S' } },
        deps({ env: { S: 'short' } }),
      ).getToken(request()),
    );
    expect(short.line).toBe(
      'keybroker: jwt signing key from environment variable S: the HS256 secret is 5 bytes, fewer than 32 (use a random secret of at least 32 bytes (keybroker keygen --algorithm HS256); run keybroker explain ERR_JWT_KEY_TOO_WEAK)',
    );
    expect(short.line).not.toContain('short (');
  });

  it('an unset or empty key variable is exit 2 naming it', async () => {
    const source = (env: Record<string, string>) =>
      createJwtSource({ type: 'jwt', signingKey: { env: 'KB_SIGNING_KEY' } }, deps({ env })).getToken(
        request(),
      );
    expect(await failure(source({}))).toEqual({
      exit: 2,
      line: 'keybroker: jwt signing key: environment variable KB_SIGNING_KEY is not set (set KB_SIGNING_KEY to the key (a PKCS#8 PEM, a JWK JSON, or for HS256 the secret), or point signingKey elsewhere; run keybroker explain ERR_JWT_KEY_ENV_UNSET)',
    });
    expect((await failure(source({ KB_SIGNING_KEY: '' }))).line).toContain(
      'environment variable KB_SIGNING_KEY is empty',
    );
  });

  it('no signingKey is exit 2 with a hint to run keygen', async () => {
    expect(await failure(createJwtSource({ type: 'jwt' }, deps()).getToken(request()))).toEqual({
      exit: 2,
      line: 'keybroker: jwt source: no signingKey is configured (create one with keybroker keygen and set "signingKey": {"file": PATH} in the profile\'s source; run keybroker explain ERR_JWT_NO_SIGNING_KEY)',
    });
  });

  it('PKCS#1 and SEC1 PEMs are read as well as PKCS#8', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const sec1 = privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    const file = writeKey('k', sec1);
    const jwks = await publicJwks({ type: 'jwt', algorithm: 'ES384', signingKey: { file } }, deps());
    expect(jwks.keys[0]!.crv).toBe('P-384');
    expect(createPrivateKey(sec1).asymmetricKeyType).toBe('ec');
  });

  it('describe() names the algorithm and where the key is, never the key', () => {
    expect(
      createJwtSource(
        {
          type: 'jwt',
          algorithm: 'RS256',
          signingKey: { env: 'K' },
          issuer: 'https://i',
          audience: ['a', 'b'],
        },
        deps({ env: { K: 'secret-material' } }),
      ).describe(),
    ).toBe('jwt RS256 (key from environment variable K) iss=https://i aud=a,b');
  });
});
