/**
 * The `vault` source (KV v1 and v2, token auth) with the real node-vault client, against the
 * local Vault server, or a real Vault when VAULT_ADDR and VAULT_TOKEN are set (tests that need
 * request counts, fault injection or namespaces run only against the local server).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultSourceConfig } from '../../src/config/types.js';
import { createVaultSource } from '../../src/sources/vault.js';
import { startVaultBackend, type VaultBackend, vaultAdmin } from '../servers/vault-server.js';
import { failure, request, suffix, tempDir, testDeps, writeSecretFile } from './vault-helpers.js';

let vault: VaultBackend;
const s = suffix();
const kv1 = `kb-kv1-${s}`;
const kv2 = `kb-kv2-${s}`;
let readerToken: string;
let narrowToken: string;

beforeAll(async () => {
  vault = await startVaultBackend();
  await vault.admin.mountKv(kv1, 1);
  await vault.admin.mountKv(kv2, 2);
  await vault.admin.putKv(kv1, 1, 'llm', { token: 'kv1-token-value', other: 'x' });
  await vault.admin.putKv(kv2, 2, 'team/llm', { token: 'kv2-old-value' });
  await vault.admin.putKv(kv2, 2, 'team/llm', {
    token: '  kv2-token-value\n',
    num: 42,
    empty: '',
    nul: null,
  });
  await vault.admin.putKv(kv2, 2, 'team/gone', { token: 'deleted-value' });
  await vault.admin.deleteKvLatest(kv2, 'team/gone');
  await vault.admin.putPolicy(
    `kb-reader-${s}`,
    `path "${kv1}/*" { capabilities = ["read"] }\npath "${kv2}/data/*" { capabilities = ["read"] }\n`,
  );
  await vault.admin.putPolicy(
    `kb-narrow-${s}`,
    `path "${kv2}/data/team/other" { capabilities = ["read"] }\n`,
  );
  readerToken = await vault.admin.createToken([`kb-reader-${s}`]);
  narrowToken = await vault.admin.createToken([`kb-narrow-${s}`]);
});

afterAll(async () => {
  await vault?.close();
});

const source = (over: Partial<VaultSourceConfig> = {}): VaultSourceConfig => ({
  type: 'vault',
  address: vault.address,
  auth: { method: 'token' },
  path: `${kv2}/team/llm`,
  field: 'token',
  ...over,
});

describe('vault KV with token auth', () => {
  it('reads a KV v2 field, finding version and mount from sys/internal/ui/mounts', async () => {
    const deps = testDeps({ VAULT_TOKEN: readerToken });
    vault.local?.resetCounts();
    const got = await createVaultSource(source(), deps).getToken(request());
    expect(got).toEqual({ value: '  kv2-token-value\n', meta: { kvVersion: 2, kvMount: `${kv2}/` } });
    expect(JSON.parse(deps.memo.entries.get(`kv-mount:${kv2}/team/llm`)!.value)).toEqual({
      mount: `${kv2}/`,
      version: 2,
    });
    if (vault.local) {
      expect(vault.local.count('GET', `sys/internal/ui/mounts/${kv2}/team/llm`)).toBe(1);
      expect(vault.local.count('GET', `${kv2}/data/team/llm`)).toBe(1);
      expect(vault.local.requests.every((r) => r.hadToken)).toBe(true);
    }
  });

  it('reads a KV v1 field', async () => {
    const deps = testDeps({ VAULT_TOKEN: readerToken });
    const got = await createVaultSource(source({ path: `${kv1}/llm` }), deps).getToken(request());
    expect(got).toEqual({ value: 'kv1-token-value', meta: { kvVersion: 1, kvMount: `${kv1}/` } });
  });

  it('remembers the mount in the memo and does not look it up again', async () => {
    const deps = testDeps({ VAULT_TOKEN: readerToken });
    const src = createVaultSource(source(), deps);
    await src.getToken(request());
    vault.local?.resetCounts();
    const again = await src.getToken(request());
    expect(again.value).toBe('  kv2-token-value\n');
    if (vault.local) {
      expect(vault.local.countMatching(/^sys\/internal\/ui\/mounts\//)).toBe(0);
      expect(vault.local.count('GET', `${kv2}/data/team/llm`)).toBe(1);
    }
  });

  it('looks the mount up again when forceFresh is set', async () => {
    const deps = testDeps({ VAULT_TOKEN: readerToken });
    const src = createVaultSource(source(), deps);
    await src.getToken(request());
    vault.local?.resetCounts();
    await src.getToken(request({ forceFresh: true }));
    if (vault.local) expect(vault.local.countMatching(/^sys\/internal\/ui\/mounts\//)).toBe(1);
  });

  it('takes the token from ~/.vault-token when VAULT_TOKEN is unset, trimmed', async () => {
    const home = tempDir();
    writeSecretFile(home, '.vault-token', `${readerToken}\n`);
    const got = await createVaultSource(source(), testDeps({}, home)).getToken(request());
    expect(got.value).toBe('  kv2-token-value\n');
  });

  it('takes the token from auth.tokenFile when neither VAULT_TOKEN nor ~/.vault-token exist', async () => {
    const dir = tempDir();
    const tokenFile = writeSecretFile(dir, 'token', `  ${readerToken}  \n`);
    const got = await createVaultSource(
      source({ auth: { method: 'token', tokenFile } }),
      testDeps({}),
    ).getToken(request());
    expect(got.value).toBe('  kv2-token-value\n');
  });

  it('prefers VAULT_TOKEN over ~/.vault-token', async () => {
    const home = tempDir();
    writeSecretFile(home, '.vault-token', 'hvs.not-a-valid-token');
    const got = await createVaultSource(source(), testDeps({ VAULT_TOKEN: readerToken }, home)).getToken(
      request(),
    );
    expect(got.value).toBe('  kv2-token-value\n');
  });

  it('fails with exit 4 when no token is found anywhere', async () => {
    const f = await failure(createVaultSource(source(), testDeps({})).getToken(request()));
    expect(f).toEqual({
      exitCode: 4,
      code: 'ERR_VAULT_NO_TOKEN',
      line: 'keybroker: vault: no Vault token found (run vault login, set VAULT_TOKEN, or set source.auth.tokenFile; run keybroker explain ERR_VAULT_NO_TOKEN)',
    });
  });

  it('fails with exit 2 naming VAULT_ADDR when no address is configured', async () => {
    const f = await failure(
      createVaultSource(source({ address: undefined }), testDeps({ VAULT_TOKEN: 'x' })).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 2,
      code: 'ERR_VAULT_NO_ADDRESS',
      line: "keybroker: vault: no Vault address configured (set VAULT_ADDR or the profile's source.address, e.g. https://vault.example.com:8200; run keybroker explain ERR_VAULT_NO_ADDRESS)",
    });
  });

  it('a missing path is exit 5 naming path and field', async () => {
    const f = await failure(
      createVaultSource(
        source({ path: `${kv2}/team/nope` }),
        testDeps({ VAULT_TOKEN: readerToken }),
      ).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 5,
      code: 'ERR_VAULT_NOT_FOUND',
      line: `keybroker: vault kv ${kv2}/team/nope field token: not found at ${kv2}/data/team/nope (HTTP 404) (check the path (and namespace); run keybroker explain ERR_VAULT_NOT_FOUND)`,
    });
  });

  it('a missing KV v1 path is exit 5', async () => {
    const f = await failure(
      createVaultSource(source({ path: `${kv1}/nope` }), testDeps({ VAULT_TOKEN: readerToken })).getToken(
        request(),
      ),
    );
    expect(f.exitCode).toBe(5);
    expect(f.line).toBe(
      `keybroker: vault kv ${kv1}/nope field token: not found at ${kv1}/nope (HTTP 404) (check the path (and namespace); run keybroker explain ERR_VAULT_NOT_FOUND)`,
    );
  });

  it('a deleted latest version is exit 5', async () => {
    const f = await failure(
      createVaultSource(
        source({ path: `${kv2}/team/gone` }),
        testDeps({ VAULT_TOKEN: readerToken }),
      ).getToken(request()),
    );
    expect(f.exitCode).toBe(5);
    expect(f.code).toBe('ERR_VAULT_NOT_FOUND');
    expect(f.line).not.toContain('deleted-value');
  });

  it('a missing field is exit 5 naming path and field, never the values', async () => {
    const f = await failure(
      createVaultSource(source({ field: 'tokn' }), testDeps({ VAULT_TOKEN: readerToken })).getToken(
        request(),
      ),
    );
    expect(f).toEqual({
      exitCode: 5,
      code: 'ERR_VAULT_FIELD_MISSING',
      line: `keybroker: vault kv ${kv2}/team/llm field tokn: the secret has no field tokn (check the field name (vault kv get ${kv2}/team/llm lists them); run keybroker explain ERR_VAULT_FIELD_MISSING)`,
    });
  });

  it('an empty, null or non-string value is exit 5', async () => {
    const deps = testDeps({ VAULT_TOKEN: readerToken });
    expect(await failure(createVaultSource(source({ field: 'empty' }), deps).getToken(request()))).toEqual({
      exitCode: 5,
      code: 'ERR_VAULT_FIELD_EMPTY',
      line: `keybroker: vault kv ${kv2}/team/llm field empty: the value is empty (write the token into the field; run keybroker explain ERR_VAULT_FIELD_EMPTY)`,
    });
    expect(await failure(createVaultSource(source({ field: 'num' }), deps).getToken(request()))).toEqual({
      exitCode: 5,
      code: 'ERR_VAULT_FIELD_NOT_STRING',
      line: `keybroker: vault kv ${kv2}/team/llm field num: the value is a number, not a string (store the token as a string; run keybroker explain ERR_VAULT_FIELD_NOT_STRING)`,
    });
    const nul = await failure(createVaultSource(source({ field: 'nul' }), deps).getToken(request()));
    expect([nul.exitCode, nul.code]).toEqual([5, 'ERR_VAULT_FIELD_NOT_STRING']);
    expect(nul.line).toContain('the value is null, not a string');
  });

  it('a token without read on the path is exit 4', async () => {
    const f = await failure(
      createVaultSource(source(), testDeps({ VAULT_TOKEN: narrowToken })).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 4,
      code: 'ERR_VAULT_DENIED',
      line: `keybroker: vault kv ${kv2}/team/llm field token: permission denied (HTTP 403) (the token (token from VAULT_TOKEN) may have expired, or its policy lacks read on ${kv2}/data/team/llm; run keybroker explain ERR_VAULT_DENIED)`,
    });
  });

  it('an invalid token is exit 4, and the token never shows', async () => {
    const f = await failure(
      createVaultSource(source(), testDeps({ VAULT_TOKEN: 'hvs.invalidTOKENvalue' })).getToken(request()),
    );
    expect([f.exitCode, f.code]).toEqual([4, 'ERR_VAULT_DENIED']);
    expect(f.line).not.toContain('invalidTOKENvalue');
  });

  it('registers the value and the token as secrets for --debug redaction', async () => {
    const deps = testDeps({ VAULT_TOKEN: readerToken });
    await createVaultSource(source(), deps).getToken(request());
    deps.logger.debug(`x ${readerToken} ${'  kv2-token-value\n'.trim()}`);
    expect(deps.lines.at(-1)).toMatch(/x \[redacted\]/);
    expect(deps.lines.join('\n')).not.toContain(readerToken);
    expect(deps.lines.join('\n')).not.toContain('kv2-token-value');
  });

  it('describes itself without secrets', () => {
    expect(createVaultSource(source(), testDeps({ VAULT_TOKEN: readerToken })).describe()).toBe(
      `vault kv ${kv2}/team/llm field=token at ${vault.address} (auth token)`,
    );
  });
});

describe('vault KV mount discovery fallbacks (local server only)', () => {
  it('reads the KV v2 layout when the mount lookup is denied', async (ctx) => {
    if (!vault.local) return ctx.skip();
    vault.local.faults = [{ kind: 'status', status: 403, match: 'sys/internal/ui/mounts/' }];
    try {
      const deps = testDeps({ VAULT_TOKEN: readerToken });
      const got = await createVaultSource(source(), deps).getToken(request());
      expect(got).toEqual({ value: '  kv2-token-value\n', meta: { kvVersion: 2, kvMount: `${kv2}/` } });
      const v1 = await createVaultSource(source({ path: `${kv1}/llm` }), deps).getToken(request());
      expect(v1).toEqual({ value: 'kv1-token-value', meta: { kvVersion: 1, kvMount: '' } });
    } finally {
      vault.local.faults = [];
    }
  });

  it('names both layouts when the lookup is denied and neither read is allowed', async (ctx) => {
    if (!vault.local) return ctx.skip();
    vault.local.faults = [{ kind: 'status', status: 403, match: 'sys/internal/ui/mounts/' }];
    try {
      const f = await failure(
        createVaultSource(source(), testDeps({ VAULT_TOKEN: narrowToken })).getToken(request()),
      );
      expect(f).toEqual({
        exitCode: 4,
        code: 'ERR_VAULT_DENIED',
        line: `keybroker: vault kv ${kv2}/team/llm field token: permission denied (HTTP 403) (the token (token from VAULT_TOKEN) may have expired, or its policy lacks read on ${kv2}/data/team/llm (KV v2) or ${kv2}/team/llm (KV v1); run keybroker explain ERR_VAULT_DENIED)`,
      });
    } finally {
      vault.local.faults = [];
    }
  });

  it('reads the path as KV v1 when the lookup endpoint does not exist (old Vault, as the CLI does)', async (ctx) => {
    if (!vault.local) return ctx.skip();
    vault.local.faults = [{ kind: 'status', status: 404, match: 'sys/internal/ui/mounts/' }];
    try {
      const got = await createVaultSource(
        source({ path: `${kv1}/llm` }),
        testDeps({ VAULT_TOKEN: readerToken }),
      ).getToken(request());
      expect(got).toEqual({ value: 'kv1-token-value', meta: { kvVersion: 1, kvMount: '' } });
    } finally {
      vault.local.faults = [];
    }
  });

  it('forgets a remembered mount that now answers 404 or 403 and looks it up again', async (ctx) => {
    if (!vault.local) return ctx.skip();
    const deps = testDeps({ VAULT_TOKEN: readerToken });
    await deps.memo.set(`kv-mount:${kv2}/team/llm`, JSON.stringify({ mount: '', version: 1 }));
    const got = await createVaultSource(source(), deps).getToken(request());
    expect(got.meta).toEqual({ kvVersion: 2, kvMount: `${kv2}/` });
  });
});

describe('vault namespaces (local server only: namespaces are a Vault Enterprise feature)', () => {
  it('sends X-Vault-Namespace and reads the mount inside the namespace', async (ctx) => {
    if (!vault.local) return ctx.skip();
    await vault.admin.must('POST', `sys/namespaces/team-${s}`, {});
    const nsAdmin = vaultAdmin(vault.address, vault.rootToken, { namespace: `team-${s}` });
    await nsAdmin.mountKv('kv', 2);
    await nsAdmin.putKv('kv', 2, 'llm', { token: 'namespaced-value' });
    await nsAdmin.putPolicy('reader', 'path "kv/data/llm" { capabilities = ["read"] }');
    const nsToken = await nsAdmin.createToken(['reader']);
    vault.local.resetCounts();
    const got = await createVaultSource(
      source({ namespace: `team-${s}`, path: 'kv/llm' }),
      testDeps({ VAULT_TOKEN: nsToken }),
    ).getToken(request());
    expect(got).toEqual({ value: 'namespaced-value', meta: { kvVersion: 2, kvMount: 'kv/' } });
    expect(vault.local.requests.map((r) => r.namespace)).toEqual([`team-${s}`, `team-${s}`]);

    // The same path and token outside the namespace: the token is not valid there.
    const f = await failure(
      createVaultSource(source({ path: 'kv/llm' }), testDeps({ VAULT_TOKEN: nsToken })).getToken(request()),
    );
    expect([f.exitCode, f.code]).toEqual([4, 'ERR_VAULT_DENIED']);
  });

  it('names the namespace in errors', async (ctx) => {
    if (!vault.local) return ctx.skip();
    vault.local.sealed = true;
    try {
      const f = await failure(
        createVaultSource(source({ namespace: 'team-x' }), testDeps({ VAULT_TOKEN: readerToken })).getToken(
          request(),
        ),
      );
      expect(f.line).toBe(
        `keybroker: vault at ${vault.address} (namespace team-x): Vault is sealed (ask the Vault operators to unseal it, or point VAULT_ADDR at an unsealed node; run keybroker explain ERR_VAULT_SEALED)`,
      );
    } finally {
      vault.local.sealed = false;
    }
  });
});
