/**
 * The jwt source end to end: keygen → config → `keybroker --no-cache` → `keybroker jwks`, and the
 * token verifies against the JWK Set (contract §3 jwt, §4 keygen/jwks).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(() => sb.cleanup());

const TOKEN_LINE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/;

async function keygen(alg: string, name: string): Promise<{ file: string; kid: string }> {
  const file = path.join(sb.home, name);
  const r = await runKeybroker(['keygen', '--algorithm', alg, '--out', file], sb);
  expect(r.code).toBe(0);
  return { file, kid: r.stdout.trim() };
}

function jwtProfile(alg: string, file: string, extra: Record<string, unknown> = {}) {
  return {
    source: {
      type: 'jwt',
      algorithm: alg,
      signingKey: { file },
      issuer: 'https://keybroker.test',
      audience: 'gateway',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: keybroker's config template syntax
      claims: { user: '${user}', team: 'engineering', profile: '${profile}' },
      ...extra,
    },
  };
}

describe('jwt source through the built executable', () => {
  it('for every asymmetric algorithm, the token printed verifies against `keybroker jwks`', async () => {
    const algs = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];
    const profiles: Record<string, unknown> = {};
    const kids: Record<string, string> = {};
    for (const alg of algs) {
      const { file, kid } = await keygen(alg, `${alg}.pem`);
      profiles[alg.toLowerCase()] = jwtProfile(alg, file);
      kids[alg] = kid;
    }
    sb.writeConfig({ profiles });
    for (const alg of algs) {
      const profile = alg.toLowerCase();
      const tok = await runKeybroker(['--no-cache', '--profile', profile], sb);
      expect(tok.stderr).toBe('');
      expect(tok.code).toBe(0);
      expect(tok.stdout).toMatch(TOKEN_LINE);
      const jw = await runKeybroker(['jwks', '--profile', profile], sb);
      expect(jw.stderr).toBe('');
      expect(jw.code).toBe(0);
      const jwks = JSON.parse(jw.stdout);
      expect(jwks.keys).toHaveLength(1);
      expect(jwks.keys[0]).toMatchObject({ kid: kids[alg], alg, use: 'sig' });
      expect(jwks.keys[0]).not.toHaveProperty('d');
      expect(decodeProtectedHeader(tok.stdout.trim())).toEqual({ alg, kid: kids[alg], typ: 'JWT' });
      const { payload } = await jwtVerify(tok.stdout.trim(), createLocalJWKSet(jwks), {
        issuer: 'https://keybroker.test',
        audience: 'gateway',
        algorithms: [alg],
      });
      expect(payload).toMatchObject({ sub: sb.env.USER, user: sb.env.USER, team: 'engineering', profile });
      expect(payload.nbf).toBe(payload.iat);
      expect(payload.exp! - payload.iat! - 30).toBe(720);
      expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("the default lifetime follows Claude Code's TTL: 2 x TTL + margin", async () => {
    const { file } = await keygen('ES256', 'k.pem');
    sb.writeConfig({ profiles: { default: jwtProfile('ES256', file) } });
    const r = await runKeybroker(['--no-cache'], sb, {
      env: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '3600000' },
    });
    expect(r.code).toBe(0);
    const payload = JSON.parse(Buffer.from(r.stdout.split('.')[1]!, 'base64url').toString('utf8'));
    expect(payload.exp - payload.iat - 30).toBe(7320);
  });

  it('a lifetimeSec under TTL + margin is exit 2 with the numbers, nothing on stdout', async () => {
    const { file } = await keygen('ES256', 'k.pem');
    sb.writeConfig({ profiles: { default: jwtProfile('ES256', file, { lifetimeSec: 600 }) } });
    const r = await runKeybroker(['--no-cache'], sb, {
      env: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '600000' },
    });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'keybroker: jwt source: lifetimeSec 600 is shorter than the TTL plus the refresh margin (600 s + 120 s = 720 s) (set lifetimeSec to at least 720 or remove it for the default 2 x TTL + margin = 1320; run keybroker explain ERR_JWT_LIFETIME_TOO_SHORT)\n',
    );
  });

  it('a 0644 key file: exit 6, the exact stderr line, empty stdout (cached path and --no-cache)', async () => {
    const { file } = await keygen('ES256', 'k.pem');
    fs.chmodSync(file, 0o644);
    sb.writeConfig({ profiles: { default: jwtProfile('ES256', file) } });
    for (const args of [['--no-cache'], []]) {
      const r = await runKeybroker(args, sb);
      expect(r.code).toBe(6);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `keybroker: signing key file ${file}: permissions 0644 are too open (run chmod 600 '${file}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
      );
    }
    const j = await runKeybroker(['jwks'], sb);
    expect(j.code).toBe(6);
    expect(j.stdout).toBe('');
  });

  it('a signing key from an unset environment variable is exit 2 naming it', async () => {
    sb.writeConfig({
      profiles: { default: { source: { type: 'jwt', signingKey: { env: 'KB_TEST_KEY' } } } },
    });
    const r = await runKeybroker(['--no-cache'], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'keybroker: jwt signing key: environment variable KB_TEST_KEY is not set (set KB_TEST_KEY to the key (a PKCS#8 PEM, a JWK JSON, or for HS256 the secret), or point signingKey elsewhere; run keybroker explain ERR_JWT_KEY_ENV_UNSET)\n',
    );
  });

  it('a key from an environment variable signs tokens that verify against jwks run with the same variable', async () => {
    const { file } = await keygen('ES256', 'k.pem');
    const pem = fs.readFileSync(file, 'utf8');
    fs.rmSync(file);
    sb.writeConfig({
      profiles: { default: { source: { type: 'jwt', signingKey: { env: 'KB_TEST_KEY' } } } },
    });
    const env = { KB_TEST_KEY: pem };
    const tok = await runKeybroker(['--no-cache'], sb, { env });
    const jw = await runKeybroker(['jwks'], sb, { env });
    expect([tok.code, tok.stderr, jw.code, jw.stderr]).toEqual([0, '', 0, '']);
    await jwtVerify(tok.stdout.trim(), createLocalJWKSet(JSON.parse(jw.stdout)));
  });

  it('jwks refuses a profile that is not jwt, and an HS256 profile (exit 2)', async () => {
    const hs = await runKeybroker(['keygen', '--algorithm', 'HS256', '--out', 'hs.json'], sb);
    expect(hs.code).toBe(0);
    sb.writeConfig({
      profiles: {
        default: { source: { type: 'keychain', service: 'llm-gateway' } },
        hs: jwtProfile('HS256', path.join(sb.home, 'hs.json')),
      },
    });
    const r = await runKeybroker(['jwks'], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'keybroker: jwks: profile default uses a keychain source, not jwt (only a jwt profile has a signing key to publish; pass --profile with a jwt profile; run keybroker explain ERR_JWKS_NOT_JWT)\n',
    );
    const h = await runKeybroker(['jwks', '--profile', 'hs'], sb);
    expect(h.code).toBe(2);
    expect(h.stdout).toBe('');
    expect(h.stderr).toBe(
      'keybroker: jwks: the profile signs with HS256, a shared secret with no public key (give the gateway the secret itself, or switch to an asymmetric algorithm such as ES256; run keybroker explain ERR_JWKS_SHARED_SECRET)\n',
    );
    // ...but the HS256 profile itself mints tokens that verify with the secret.
    const tok = await runKeybroker(['--no-cache', '--profile', 'hs'], sb);
    expect(tok.code).toBe(0);
    const { k } = JSON.parse(fs.readFileSync(path.join(sb.home, 'hs.json'), 'utf8'));
    await jwtVerify(tok.stdout.trim(), Buffer.from(k, 'base64url'), { algorithms: ['HS256'] });
  });

  it('no signingKey configured is exit 2 with a hint to run keygen', async () => {
    sb.writeConfig({ profiles: { default: { source: { type: 'jwt' } } } });
    const r = await runKeybroker(['--no-cache'], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'keybroker: jwt source: no signingKey is configured (create one with keybroker keygen and set "signingKey": {"file": PATH} in the profile\'s source; run keybroker explain ERR_JWT_NO_SIGNING_KEY)\n',
    );
  });
});

describe('jwks --merge: rotating a signing key (issue 16)', () => {
  it('prints the new key and the old ones by kid, once each; tokens of both keys verify against it', async () => {
    const old = await keygen('ES256', 'old.pem');
    const neu = await keygen('ES256', 'new.pem');
    sb.writeConfig({ profiles: { old: jwtProfile('ES256', old.file), new: jwtProfile('ES256', neu.file) } });
    const oldToken = (await runKeybroker(['--profile', 'old', '--no-cache'], sb)).stdout.trim();
    const published = path.join(sb.home, 'old-jwks.json');
    fs.writeFileSync(published, (await runKeybroker(['jwks', '--profile', 'old'], sb)).stdout);
    const r = await runKeybroker(['jwks', '--profile', 'new', '--merge', published], sb);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const merged = JSON.parse(r.stdout);
    expect(merged.keys.map((k: { kid: string }) => k.kid)).toEqual([neu.kid, old.kid]);
    const newToken = (await runKeybroker(['--profile', 'new', '--no-cache'], sb)).stdout.trim();
    for (const t of [oldToken, newToken]) {
      await jwtVerify(t, createLocalJWKSet(merged), {
        issuer: 'https://keybroker.test',
        audience: 'gateway',
      });
    }
    // Merging again (the old set now holds the new kid too) changes nothing.
    fs.writeFileSync(published, r.stdout);
    const again = await runKeybroker(['jwks', '--profile', 'new', '--merge', published], sb);
    expect(again.stdout).toBe(r.stdout);
  });

  it('a malformed file, or one holding a private key, is exit 2 naming it', async () => {
    const { file } = await keygen('ES256', 'k.pem');
    sb.writeConfig({ profiles: { default: jwtProfile('ES256', file) } });
    const bad = path.join(sb.home, 'bad.json');
    const hint =
      'give the JWK Set the gateway publishes now (keybroker jwks output); run keybroker explain ERR_JWKS_MERGE_FILE';
    const cases: [string, string][] = [
      ['{"keys": [', 'not valid JSON'],
      ['{"kty": "EC"}', 'not a JWK Set (no "keys" array)'],
      ['{"keys": [{"kid": "x"}]}', '/keys/0: not a JWK (no "kty")'],
      [
        '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}',
        '/keys/0: holds private key material, which is never published',
      ],
    ];
    for (const [text, why] of cases) {
      fs.writeFileSync(bad, text);
      const r = await runKeybroker(['jwks', '--merge', bad], sb);
      expect(r).toMatchObject({
        code: 2,
        stdout: '',
        stderr: `keybroker: jwks --merge ${bad}: ${why} (${hint})\n`,
      });
    }
    const missing = await runKeybroker(['jwks', '--merge', path.join(sb.home, 'nope.json')], sb);
    expect(missing).toMatchObject({
      code: 2,
      stdout: '',
      stderr: `keybroker: jwks --merge ${path.join(sb.home, 'nope.json')}: cannot read it (ENOENT) (${hint})\n`,
    });
  });
});
