/**
 * Vault auth methods (approle, kubernetes, jwt) through the `vault` source and the real
 * node-vault client: logins, the login token kept in the memo and reused, one fresh login
 * after a 403, and failed logins. Kubernetes runs against the local server only (a real Vault
 * would need a Kubernetes API to review the service-account token).
 */
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultAuthConfig, VaultSourceConfig } from '../../src/config/types.js';
import { createVaultSource } from '../../src/sources/vault.js';
import { makeJwtSigner, startVaultBackend, type VaultBackend } from '../servers/vault-server.js';
import { failure, request, suffix, tempDir, testDeps, writeSecretFile } from './vault-helpers.js';

let vault: VaultBackend;
const s = suffix();
const kv = `kb-auth-${s}`;
const approle = `approle-${s}`;
const k8s = `k8s-${s}`;
const jwtMount = `jwt-${s}`;
let roleId: string;
let secretId: string;
let deniedRole: { roleId: string; secretId: string };
const dir = tempDir();
const signer = makeJwtSigner('RS256');
const k8sSigner = makeJwtSigner('ES256');

beforeAll(async () => {
  vault = await startVaultBackend();
  const a = vault.admin;
  await a.mountKv(kv, 2);
  await a.putKv(kv, 2, 'llm', { token: 'auth-token-value' });
  await a.putPolicy(`kb-auth-${s}`, `path "${kv}/data/llm" { capabilities = ["read"] }`);
  await a.enableAuth(approle, 'approle');
  ({ roleId, secretId } = await a.approleRole(approle, 'laptop', [`kb-auth-${s}`], '1h'));
  deniedRole = await a.approleRole(approle, 'nopolicy', ['default'], '1h');
  await a.enableAuth(jwtMount, 'jwt');
  await a.must('POST', `auth/${jwtMount}/config`, { jwt_validation_pubkeys: [signer.publicPem] });
  await a.must('POST', `auth/${jwtMount}/role/ci`, {
    role_type: 'jwt',
    bound_audiences: ['vault'],
    user_claim: 'sub',
    token_policies: [`kb-auth-${s}`],
    token_ttl: '1h',
  });
  if (vault.local) {
    await a.enableAuth(k8s, 'kubernetes');
    await a.enableAuth('kubernetes', 'kubernetes');
    for (const m of [k8s, 'kubernetes']) {
      await a.must('POST', `auth/${m}/config`, {
        kubernetes_host: 'https://127.0.0.1:6443',
        pem_keys: [k8sSigner.publicPem],
      });
      await a.must('POST', `auth/${m}/role/app`, {
        bound_service_account_names: ['keybroker'],
        bound_service_account_namespaces: ['dev'],
        token_policies: [`kb-auth-${s}`],
        token_ttl: '1h',
      });
    }
  }
});

afterAll(async () => {
  await vault?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const source = (auth: VaultAuthConfig): VaultSourceConfig => ({
  type: 'vault',
  address: vault.address,
  auth,
  path: `${kv}/llm`,
  field: 'token',
});

const loginMemo = (deps: ReturnType<typeof testDeps>) =>
  [...deps.memo.entries.entries()].filter(([k]) => k.startsWith('vault-login:'));

describe('approle', () => {
  it('logs in with a secret id from a file (trimmed) and reads the secret', async () => {
    const secretIdFile = writeSecretFile(dir, 'secret-id', `${secretId}\n`);
    const deps = testDeps({ VAULT_TOKEN: 'hvs.ignored-for-approle' });
    vault.local?.resetCounts();
    const got = await createVaultSource(
      source({ method: 'approle', mount: approle, roleId, secretIdFile }),
      deps,
    ).getToken(request());
    expect(got.value).toBe('auth-token-value');
    const kept = loginMemo(deps);
    expect(kept).toHaveLength(1);
    const [, entry] = kept[0]!;
    expect(JSON.parse(entry.value)).toMatchObject({ leaseMs: 3_600_000 });
    expect(entry.expiresAtMs).toBeGreaterThan(Date.now() + 3_500_000);
    if (vault.local) {
      expect(vault.local.count('POST', `auth/${approle}/login`)).toBe(1);
      // The login request carries no token (VAULT_TOKEN is not used for approle).
      expect(vault.local.requests.find((r) => r.path === `auth/${approle}/login`)?.hadToken).toBe(false);
    }
  });

  it('logs in with a secret id from an environment variable', async () => {
    const deps = testDeps({ KB_SECRET_ID: secretId });
    const got = await createVaultSource(
      source({ method: 'approle', mount: approle, roleId, secretIdEnv: 'KB_SECRET_ID' }),
      deps,
    ).getToken(request());
    expect(got.value).toBe('auth-token-value');
  });

  it('reuses the kept login token instead of logging in again', async () => {
    const deps = testDeps({ KB_SECRET_ID: secretId });
    const src = createVaultSource(
      source({ method: 'approle', mount: approle, roleId, secretIdEnv: 'KB_SECRET_ID' }),
      deps,
    );
    await src.getToken(request());
    const first = JSON.stringify(loginMemo(deps));
    vault.local?.resetCounts();
    for (let i = 0; i < 3; i++) expect((await src.getToken(request())).value).toBe('auth-token-value');
    expect(JSON.stringify(loginMemo(deps))).toBe(first);
    if (vault.local) {
      expect(vault.local.count('POST', `auth/${approle}/login`)).toBe(0);
      expect(vault.local.count('GET', `${kv}/data/llm`)).toBe(3);
    }
  });

  it('logs in again when the kept token nears its expiry', async () => {
    const deps = testDeps({ KB_SECRET_ID: secretId });
    const src = createVaultSource(
      source({ method: 'approle', mount: approle, roleId, secretIdEnv: 'KB_SECRET_ID' }),
      deps,
    );
    await src.getToken(request());
    const [[name, entry]] = loginMemo(deps) as [[string, { value: string; expiresAtMs?: number }]];
    await deps.memo.set(name, entry.value, Date.now() + 30_000);
    vault.local?.resetCounts();
    await src.getToken(request());
    expect(loginMemo(deps)[0]![1].value).not.toBe(entry.value);
    if (vault.local) expect(vault.local.count('POST', `auth/${approle}/login`)).toBe(1);
  });

  it('after a 403 with a kept login token, logs in once more and succeeds', async () => {
    const deps = testDeps({ KB_SECRET_ID: secretId });
    const src = createVaultSource(
      source({ method: 'approle', mount: approle, roleId, secretIdEnv: 'KB_SECRET_ID' }),
      deps,
    );
    await src.getToken(request());
    const kept = JSON.parse(loginMemo(deps)[0]![1].value).token as string;
    await vault.admin.must('POST', 'auth/token/revoke', { token: kept });
    vault.local?.resetCounts();
    expect((await src.getToken(request())).value).toBe('auth-token-value');
    expect(JSON.parse(loginMemo(deps)[0]![1].value).token).not.toBe(kept);
    if (vault.local) expect(vault.local.count('POST', `auth/${approle}/login`)).toBe(1);
  });

  it('after a 403 that persists with a fresh login, fails with exit 4 after exactly one more login', async () => {
    const deps = testDeps({ KB_SECRET_ID: deniedRole.secretId });
    const src = createVaultSource(
      source({ method: 'approle', mount: approle, roleId: deniedRole.roleId, secretIdEnv: 'KB_SECRET_ID' }),
      deps,
    );
    // A first run logs in and is denied: the login is kept (it was a good login).
    const first = await failure(src.getToken(request()));
    expect([first.exitCode, first.code]).toEqual([4, 'ERR_VAULT_DENIED']);
    vault.local?.resetCounts();
    const f = await failure(src.getToken(request()));
    expect(f).toEqual({
      exitCode: 4,
      code: 'ERR_VAULT_DENIED',
      line: `keybroker: vault kv ${kv}/llm field token: permission denied (HTTP 403) (the token (approle login at auth/${approle}, secret id from KB_SECRET_ID) may have expired, or its policy lacks read on ${kv}/data/llm (KV v2) or ${kv}/llm (KV v1); run keybroker explain ERR_VAULT_DENIED)`,
    });
    if (vault.local) expect(vault.local.count('POST', `auth/${approle}/login`)).toBe(1);
  });

  it('a wrong secret id is a failed login, exit 4, and the secret id never shows', async () => {
    const deps = testDeps({ KB_SECRET_ID: 'wrong-secret-id-value' });
    const f = await failure(
      createVaultSource(
        source({ method: 'approle', mount: approle, roleId, secretIdEnv: 'KB_SECRET_ID' }),
        deps,
      ).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 4,
      code: 'ERR_VAULT_LOGIN_FAILED',
      line: `keybroker: vault approle login: login refused (HTTP 400) (check the role and the credential (approle login at auth/${approle}, secret id from KB_SECRET_ID); run keybroker explain ERR_VAULT_LOGIN_FAILED)`,
    });
    expect(loginMemo(deps)).toHaveLength(0);
  });

  it('an unset secret id variable is a configuration error (exit 2)', async () => {
    const f = await failure(
      createVaultSource(
        source({ method: 'approle', mount: approle, roleId, secretIdEnv: 'KB_UNSET' }),
        testDeps({}),
      ).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 2,
      code: 'ERR_VAULT_CREDENTIAL_ENV',
      line: 'keybroker: vault: KB_UNSET is not set (export KB_UNSET with the approle secret id, or use secretIdFile; run keybroker explain ERR_VAULT_CREDENTIAL_ENV)',
    });
  });

  it('a missing secret id file is a configuration error (exit 2) naming the file', async () => {
    const missing = `${dir}/no-such-file`;
    const f = await failure(
      createVaultSource(
        source({ method: 'approle', mount: approle, roleId, secretIdFile: missing }),
        testDeps({}),
      ).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 2,
      code: 'ERR_VAULT_CREDENTIAL_FILE',
      line: `keybroker: vault: cannot read secret id file ${missing} (ENOENT) (check the path and its permissions; run keybroker explain ERR_VAULT_CREDENTIAL_FILE)`,
    });
  });

  it('registers the secret id and the login token as secrets for --debug redaction', async () => {
    const deps = testDeps({ KB_SECRET_ID: secretId });
    await createVaultSource(
      source({ method: 'approle', mount: approle, roleId, secretIdEnv: 'KB_SECRET_ID' }),
      deps,
    ).getToken(request());
    const loginToken = JSON.parse(loginMemo(deps)[0]![1].value).token as string;
    deps.logger.warn(`${secretId} ${loginToken}`);
    expect(deps.lines.at(-1)).toBe('keybroker: [redacted] [redacted]');
  });
});

describe('jwt', () => {
  it('logs in with a JWT from a file', async () => {
    const now = Math.floor(Date.now() / 1000);
    const jwtFile = writeSecretFile(
      dir,
      'ci.jwt',
      `${signer.sign({ sub: 'ci-runner', aud: 'vault', iat: now, exp: now + 600 })}\n`,
    );
    const deps = testDeps({});
    vault.local?.resetCounts();
    const got = await createVaultSource(
      source({ method: 'jwt', mount: jwtMount, role: 'ci', jwtFile }),
      deps,
    ).getToken(request());
    expect(got.value).toBe('auth-token-value');
    if (vault.local) expect(vault.local.count('POST', `auth/${jwtMount}/login`)).toBe(1);
  });

  it('a JWT for another audience is a failed login, exit 4', async () => {
    const now = Math.floor(Date.now() / 1000);
    const jwtFile = writeSecretFile(
      dir,
      'other.jwt',
      signer.sign({ sub: 'ci-runner', aud: 'other', iat: now, exp: now + 600 }),
    );
    const f = await failure(
      createVaultSource(
        source({ method: 'jwt', mount: jwtMount, role: 'ci', jwtFile }),
        testDeps({}),
      ).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 4,
      code: 'ERR_VAULT_LOGIN_FAILED',
      line: `keybroker: vault jwt login: login refused (HTTP 400) (check the role and the credential (jwt login at auth/${jwtMount} as role ci, jwt from ${jwtFile}); run keybroker explain ERR_VAULT_LOGIN_FAILED)`,
    });
  });
});

describe('kubernetes (local server only)', () => {
  const saToken = () => {
    const now = Math.floor(Date.now() / 1000);
    return k8sSigner.sign({
      iss: 'https://kubernetes.default.svc',
      sub: 'system:serviceaccount:dev:keybroker',
      aud: ['https://kubernetes.default.svc'],
      iat: now,
      exp: now + 3600,
      'kubernetes.io': { namespace: 'dev', serviceaccount: { name: 'keybroker', uid: 'u-1' } },
    });
  };

  it('logs in at the configured mount', async (ctx) => {
    if (!vault.local) return ctx.skip();
    const jwtFile = writeSecretFile(dir, 'sa-token', saToken());
    vault.local.resetCounts();
    const got = await createVaultSource(
      source({ method: 'kubernetes', mount: k8s, role: 'app', jwtFile }),
      testDeps({}),
    ).getToken(request());
    expect(got.value).toBe('auth-token-value');
    expect(vault.local.count('POST', `auth/${k8s}/login`)).toBe(1);
  });

  it('posts to auth/kubernetes/login when no mount is configured, never auth//login', async (ctx) => {
    if (!vault.local) return ctx.skip();
    const jwtFile = writeSecretFile(dir, 'sa-token', saToken());
    vault.local.resetCounts();
    const got = await createVaultSource(
      source({ method: 'kubernetes', role: 'app', jwtFile }),
      testDeps({}),
    ).getToken(request());
    expect(got.value).toBe('auth-token-value');
    expect(vault.local.count('POST', 'auth/kubernetes/login')).toBe(1);
    expect(vault.local.countMatching(/^auth\/\/login/)).toBe(0);
  });

  it('a service account the role does not bind is a failed login, exit 4', async (ctx) => {
    if (!vault.local) return ctx.skip();
    const now = Math.floor(Date.now() / 1000);
    const jwtFile = writeSecretFile(
      dir,
      'sa-other',
      k8sSigner.sign({
        iat: now,
        exp: now + 60,
        'kubernetes.io': { namespace: 'prod', serviceaccount: { name: 'x' } },
      }),
    );
    const f = await failure(
      createVaultSource(
        source({ method: 'kubernetes', mount: k8s, role: 'app', jwtFile }),
        testDeps({}),
      ).getToken(request()),
    );
    expect([f.exitCode, f.code]).toEqual([4, 'ERR_VAULT_LOGIN_FAILED']);
    expect(f.line).toBe(
      `keybroker: vault kubernetes login: login refused (HTTP 403) (check the role and the credential (kubernetes login at auth/${k8s} as role app, jwt from ${jwtFile}); run keybroker explain ERR_VAULT_LOGIN_FAILED)`,
    );
  });

  it('without jwtFile reads the pod service-account token path', async (ctx) => {
    if (!vault.local || fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token'))
      return ctx.skip();
    const f = await failure(
      createVaultSource(source({ method: 'kubernetes', mount: k8s, role: 'app' }), testDeps({})).getToken(
        request(),
      ),
    );
    // Outside a pod that file does not exist: a configuration error naming it.
    expect(f.exitCode).toBe(2);
    expect(f.line).toContain('/var/run/secrets/kubernetes.io/serviceaccount/token');
  });
});
