/**
 * The `vault-identity` source: Vault mints the JWT for the logged-in entity; the gateway
 * verifies it against Vault's `.well-known/keys` with the role's client id as audience.
 * Runs against a real Vault too when VAULT_ADDR and VAULT_TOKEN are set.
 */
import * as fs from 'node:fs';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultIdentitySourceConfig } from '../../src/config/types.js';
import { createVaultIdentitySource, decodeJwtPayload } from '../../src/sources/vault-identity.js';
import { startVaultBackend, type VaultBackend } from '../servers/vault-server.js';
import { failure, request, suffix, tempDir, testDeps } from './vault-helpers.js';

let vault: VaultBackend;
const s = suffix();
const approle = `approle-id-${s}`;
const keyName = `kb-key-${s}`;
const role = `kb-llm-${s}`;
let roleId: string;
let secretId: string;
let clientId: string;
let entityId: string;
let noReadRole: { roleId: string; secretId: string };
const dir = tempDir();

beforeAll(async () => {
  vault = await startVaultBackend();
  const a = vault.admin;
  await a.putPolicy(`kb-id-${s}`, `path "identity/oidc/token/${role}" { capabilities = ["read"] }`);
  await a.enableAuth(approle, 'approle');
  ({ roleId, secretId } = await a.approleRole(approle, 'laptop', [`kb-id-${s}`], '1h'));
  noReadRole = await a.approleRole(approle, 'noread', ['default'], '1h');
  entityId = await a.entityWithAlias(`alice-${s}`, { team: 'platform', user: 'alice' }, approle, roleId);
  await a.oidcKey(keyName, '2h');
  clientId = await a.oidcRole(
    role,
    keyName,
    '{"team": {{identity.entity.metadata.team}}, "user": {{identity.entity.metadata.user}}}',
    '1h',
  );
});

afterAll(async () => {
  await vault?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const source = (over: Partial<VaultIdentitySourceConfig> = {}): VaultIdentitySourceConfig => ({
  type: 'vault-identity',
  address: vault.address,
  auth: { method: 'approle', mount: approle, roleId, secretIdEnv: 'KB_SECRET_ID' },
  role,
  ...over,
});

describe('vault-identity', () => {
  it('returns the JWT Vault minted, with its exp as the expiry, verifiable against .well-known/keys', async () => {
    const deps = testDeps({ KB_SECRET_ID: secretId });
    const before = Math.floor(Date.now() / 1000);
    const got = await createVaultIdentitySource(source(), deps).getToken(request());
    const payload = decodeJwtPayload(got.value)!;
    expect(got.expiresAtMs).toBe((payload.exp as number) * 1000);
    expect(payload.exp as number).toBeGreaterThanOrEqual(before + 3600);
    expect(payload.exp as number).toBeLessThanOrEqual(before + 3600 + 5);
    expect(got.meta).toEqual({ aud: clientId, sub: entityId });

    // What the gateway does (LiteLLM's JWT_PUBLIC_KEY_URL): fetch the keys, verify, check aud.
    const keys = await vault.admin.must('GET', 'identity/oidc/.well-known/keys');
    const { payload: verified } = await jwtVerify(got.value, createLocalJWKSet(keys), { audience: clientId });
    expect(verified).toMatchObject({ sub: entityId, aud: clientId, team: 'platform', user: 'alice' });
    expect(verified.iss).toMatch(/\/v1\/identity\/oidc$/);
  });

  it('a role whose ttl exceeds the key verification_ttl is refused by Vault (the documented pitfall)', async () => {
    const r = await vault.admin.call('POST', `identity/oidc/role/too-long-${s}`, { key: keyName, ttl: '3h' });
    expect(r.status).toBe(400);
  });

  it('a token without an identity entity (the root token) is exit 4', async () => {
    const f = await failure(
      createVaultIdentitySource(
        source({ auth: { method: 'token' } }),
        testDeps({ VAULT_TOKEN: vault.rootToken }),
      ).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 4,
      code: 'ERR_VAULT_IDENTITY_REFUSED',
      line: `keybroker: vault identity token for role ${role}: Vault refused to mint the token (HTTP 400) (log in with an auth method that has an identity entity (a root token has none), and allow the role's client_id on its key; run keybroker explain ERR_VAULT_IDENTITY_REFUSED)`,
    });
  });

  it('an unknown role is exit 5', async () => {
    const deps = testDeps({ KB_SECRET_ID: secretId });
    await vault.admin.putPolicy(`kb-id-any-${s}`, 'path "identity/oidc/token/*" { capabilities = ["read"] }');
    const any = await vault.admin.approleRole(approle, 'any', [`kb-id-any-${s}`], '1h');
    deps.env = { KB_SECRET_ID: any.secretId };
    const f = await failure(
      createVaultIdentitySource(
        source({
          role: `missing-${s}`,
          auth: { method: 'approle', mount: approle, roleId: any.roleId, secretIdEnv: 'KB_SECRET_ID' },
        }),
        deps,
      ).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 5,
      code: 'ERR_VAULT_NOT_FOUND',
      line: `keybroker: vault identity token for role missing-${s}: no such role (HTTP 400) (create it with vault write identity/oidc/role/<role> key=<key>; run keybroker explain ERR_VAULT_NOT_FOUND)`,
    });
  });

  it('a policy without read on identity/oidc/token/<role> is exit 4', async () => {
    const f = await failure(
      createVaultIdentitySource(
        source({
          auth: { method: 'approle', mount: approle, roleId: noReadRole.roleId, secretIdEnv: 'KB_SECRET_ID' },
        }),
        testDeps({ KB_SECRET_ID: noReadRole.secretId }),
      ).getToken(request()),
    );
    expect([f.exitCode, f.code]).toEqual([4, 'ERR_VAULT_DENIED']);
    expect(f.line).toContain(`lacks read on identity/oidc/token/${role};`);
  });

  it('keeps the login token between calls: one login for several mints', async () => {
    const deps = testDeps({ KB_SECRET_ID: secretId });
    const src = createVaultIdentitySource(source(), deps);
    vault.local?.resetCounts();
    await src.getToken(request());
    await src.getToken(request());
    if (vault.local) {
      expect(vault.local.count('POST', `auth/${approle}/login`)).toBe(1);
      expect(vault.local.count('GET', `identity/oidc/token/${role}`)).toBe(2);
    }
  });
});

describe('vault-identity malformed answers (local server only)', () => {
  const mint = (body: unknown) => async () => {
    vault.local!.faults = [{ kind: 'wrong-shape', body, match: 'identity/oidc/token/' }];
    try {
      return await failure(
        createVaultIdentitySource(source(), testDeps({ KB_SECRET_ID: secretId })).getToken(request()),
      );
    } finally {
      vault.local!.faults = [];
    }
  };
  const hint = `check the role's key and template in Vault (vault read identity/oidc/role/${role}); run keybroker explain ERR_VAULT_IDENTITY_TOKEN_MALFORMED`;

  it('a token that is not a JWT is exit 5', async (ctx) => {
    if (!vault.local) return ctx.skip();
    expect(await mint({ data: { token: 'not-a-jwt', client_id: 'x', ttl: 60 } })()).toEqual({
      exitCode: 5,
      code: 'ERR_VAULT_IDENTITY_TOKEN_MALFORMED',
      line: `keybroker: vault identity token for role ${role}: the token is not a JWT (${hint})`,
    });
  });

  it('a JWT without a numeric exp is exit 5', async (ctx) => {
    if (!vault.local) return ctx.skip();
    const noExp = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"sub":"x","exp":"soon"}').toString('base64url')}.c2ln`;
    expect(await mint({ data: { token: noExp } })()).toEqual({
      exitCode: 5,
      code: 'ERR_VAULT_IDENTITY_TOKEN_MALFORMED',
      line: `keybroker: vault identity token for role ${role}: the token has no numeric exp (${hint})`,
    });
  });

  it('an answer without data.token is exit 3 (bad response)', async (ctx) => {
    if (!vault.local) return ctx.skip();
    expect(await mint({ data: { client_id: 'x' } })()).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_BAD_RESPONSE',
      line: `keybroker: vault identity token for role ${role}: the answer holds no token (check that VAULT_ADDR points at Vault itself and not at a proxy or login page; run keybroker explain ERR_VAULT_BAD_RESPONSE)`,
    });
  });
});

describe('decodeJwtPayload', () => {
  it('refuses what is not a three-part base64url JWS with a JSON object payload', () => {
    expect(decodeJwtPayload('a.b')).toBeUndefined();
    expect(decodeJwtPayload('a.!!!.c')).toBeUndefined();
    expect(decodeJwtPayload(`a.${Buffer.from('[1]').toString('base64url')}.c`)).toBeUndefined();
    expect(decodeJwtPayload(`a.${Buffer.from('{"exp":1}').toString('base64url')}.c`)).toEqual({ exp: 1 });
  });
});
