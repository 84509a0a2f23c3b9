/**
 * dist/keybroker with `vault` and `vault-identity` profiles, run through /bin/sh -c as Claude
 * Code runs it, against the local Vault server. Request counts on the server prove single
 * flight (50 concurrent cold calls → one KV read, at most one login), login-token reuse,
 * stale-if-error, rotation after the TTL, and identity tokens reused while valid for TTL + M.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readAudit } from '../helpers/jwt-profile.js';
import { CLAUDE_CODE_ENV, makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import { startVaultServer, type VaultAdmin, type VaultServer, vaultAdmin } from '../servers/vault-server.js';

const TOKEN = 'sk-ant-api03-e2e-vault-CURRENT-0001';
const ROTATED = 'sk-ant-api03-e2e-vault-ROTATED-0002';

let vault: VaultServer;
let admin: VaultAdmin;
let roleId: string;
let secretId: string;
let readerToken: string;
let sb: Sandbox;
let n = 0;
let kvKey: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeProfile(source: Record<string, unknown>, profile: Record<string, unknown> = {}, top = {}) {
  sb.writeConfig({ ...top, profiles: { default: { ...profile, source } } });
}

const kvSource = (auth: Record<string, unknown> = { method: 'token' }) => ({
  type: 'vault',
  path: `secret/${kvKey}`,
  field: 'token',
  auth,
});

const approleAuth = () => ({ method: 'approle', roleId, secretIdEnv: 'KB_SECRET_ID' });

const kvReads = () => vault.count('GET', `secret/data/${kvKey}`);
const logins = () => vault.count('POST', 'auth/approle/login');

beforeAll(async () => {
  vault = await startVaultServer();
  admin = vaultAdmin(vault.url, vault.rootToken);
  await admin.putPolicy(
    'llm',
    'path "secret/data/*" { capabilities = ["read"] }\npath "identity/oidc/token/*" { capabilities = ["read"] }',
  );
  await admin.enableAuth('approle', 'approle');
  ({ roleId, secretId } = await admin.approleRole('approle', 'laptop', ['llm'], '1h'));
  await admin.entityWithAlias('alice', { team: 'platform' }, 'approle', roleId);
  await admin.oidcKey('llm-key', '1h');
  readerToken = await admin.createToken(['llm']);
});
afterAll(async () => {
  await vault.close();
});

beforeEach(async () => {
  // A secret per test, so request counts never mix.
  vault.faults = [];
  vault.sealed = false;
  kvKey = `llm-${++n}`;
  await admin.putKv('secret', 2, kvKey, { token: TOKEN });
  vault.resetCounts();
  sb = makeSandbox({ VAULT_ADDR: vault.url, KB_SECRET_ID: secretId });
});
afterEach(() => sb.cleanup());

describe('vault through dist/keybroker', () => {
  it('prints the KV field and a newline with VAULT_TOKEN, nothing on stderr; a second call is a cache hit', async () => {
    writeProfile(kvSource());
    const env = { VAULT_TOKEN: readerToken };
    const a = await runKeybroker([], sb, { env });
    expect(a).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    const b = await runKeybroker([], sb, { env });
    expect(b).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(kvReads()).toBe(1);
    expect(readAudit(sb).map((x) => x.cache)).toEqual(['miss', 'hit']);
  });

  it('a missing field is exit 5 with one stderr line naming path and field, nothing on stdout', async () => {
    writeProfile({ ...kvSource(), field: 'nope' });
    const r = await runKeybroker([], sb, { env: { VAULT_TOKEN: readerToken } });
    expect(r).toMatchObject({
      code: 5,
      stdout: '',
      stderr: `keybroker: vault kv secret/${kvKey} field nope: the secret has no field nope (check the field name (vault kv get secret/${kvKey} lists them); run keybroker explain ERR_VAULT_FIELD_MISSING)\n`,
    });
  });

  it('no VAULT_ADDR and no address is exit 2 naming VAULT_ADDR', async () => {
    writeProfile(kvSource());
    const r = await runKeybroker([], sb, { env: { VAULT_ADDR: undefined, VAULT_TOKEN: readerToken } });
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr:
        "keybroker: vault: no Vault address configured (set VAULT_ADDR or the profile's source.address, e.g. https://vault.example.com:8200; run keybroker explain ERR_VAULT_NO_ADDRESS)\n",
    });
  });

  // 50 processes at once on a shared 2-core machine can take long: a generous timeoutMs keeps
  // this about single flight, not speed; the kill timer is a safety net only.
  it('50 concurrent cold calls with approle: exactly one KV read, at most one login, one token for all', {
    timeout: 300_000,
  }, async () => {
    writeProfile(kvSource(approleAuth()), { timeoutMs: 150_000 });
    const runs = await Promise.all(
      Array.from({ length: 50 }, () => runKeybroker([], sb, { killAfterMs: 250_000 })),
    );
    expect(runs.map((r) => r.code)).toEqual(Array(50).fill(0));
    expect(runs.filter((r) => r.stderr !== '')).toEqual([]);
    expect(new Set(runs.map((r) => r.stdout))).toEqual(new Set([`${TOKEN}\n`]));
    expect(kvReads()).toBe(1);
    expect(logins()).toBeLessThanOrEqual(1);
    expect(vault.countMatching(/^sys\/internal\/ui\/mounts\//)).toBeLessThanOrEqual(1);
    // The figures for the closing note.
    console.error(
      `vault e2e: 50 concurrent cold calls → ${kvReads()} KV read, ${logins()} login, ${vault.requests.length} requests in all`,
    );
  });

  it('keeps the approle login token: a fetch after the TTL reads again without logging in again', async () => {
    writeProfile(kvSource(approleAuth()));
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1500' };
    expect((await runKeybroker([], sb, { env })).stdout).toBe(`${TOKEN}\n`);
    await sleep(1_700);
    const b = await runKeybroker([], sb, { env });
    expect(b).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(kvReads()).toBe(2);
    expect(logins()).toBe(1);
  });

  it('a rejected token is read again with the remembered login and mount; --refresh redoes both', async () => {
    writeProfile(kvSource(approleAuth()));
    const mountLookups = () => vault.count('GET', `sys/internal/ui/mounts/secret/${kvKey}`);
    // The same Claude Code process asks twice within its TTL: the first token was refused.
    const first = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    expect(first).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    await admin.putKv('secret', 2, kvKey, { token: ROTATED });
    const again = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    expect(again).toMatchObject({ code: 0, stdout: `${ROTATED}\n`, stderr: '' });
    expect(readAudit(sb).map((a) => a.cache)).toEqual(['miss', 'rejected']);
    expect([kvReads(), logins(), mountLookups()]).toEqual([2, 1, 1]);
    // A person asking for everything anew gets a new login and mount lookup too.
    const refreshed = await runKeybroker(['--refresh'], sb);
    expect(refreshed).toMatchObject({ code: 0, stdout: `${ROTATED}\n`, stderr: '' });
    expect([kvReads(), logins(), mountLookups()]).toEqual([3, 2, 2]);
  });

  it('picks up a rotated secret once the cached one is older than the TTL', async () => {
    writeProfile(kvSource(approleAuth()));
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1500' };
    expect((await runKeybroker([], sb, { env })).stdout).toBe(`${TOKEN}\n`);
    await admin.putKv('secret', 2, kvKey, { token: ROTATED });
    await sleep(1_700);
    const b = await runKeybroker([], sb, { env });
    expect(b).toMatchObject({ code: 0, stdout: `${ROTATED}\n`, stderr: '' });
    expect(kvReads()).toBe(2);
  });

  it('stale if error: Vault down after the TTL → the cached token with one warning line', async () => {
    const down = await startVaultServer({ rootToken: vault.rootToken });
    const downAdmin = vaultAdmin(down.url, down.rootToken);
    await downAdmin.putKv('secret', 2, kvKey, { token: TOKEN });
    writeProfile({ ...kvSource(), address: down.url });
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1500', VAULT_TOKEN: down.rootToken };
    expect((await runKeybroker([], sb, { env })).stdout).toBe(`${TOKEN}\n`);
    await down.close();
    await sleep(1_700);
    const r = await runKeybroker([], sb, { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${TOKEN}\n`);
    expect(r.stderr).toMatch(
      new RegExp(
        `^keybroker: warning: vault at ${down.url.replace(/[.]/g, '\\.')}: connection refused; printing the cached token fetched \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\n$`,
      ),
    );
    expect(readAudit(sb).map((x) => x.cache)).toEqual(['miss', 'stale']);
  });

  it('a sealed Vault with nothing cached is exit 3 with one line and nothing on stdout', async () => {
    writeProfile(kvSource());
    vault.sealed = true;
    const r = await runKeybroker([], sb, { env: { VAULT_TOKEN: readerToken } });
    expect(r).toMatchObject({
      code: 3,
      stdout: '',
      stderr: `keybroker: vault at ${vault.url}: Vault is sealed (ask the Vault operators to unseal it, or point VAULT_ADDR at an unsealed node; run keybroker explain ERR_VAULT_SEALED)\n`,
    });
  });

  it('a denial after the TTL is believed: exit 4, nothing printed', async () => {
    writeProfile(kvSource());
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1500', VAULT_TOKEN: readerToken };
    expect((await runKeybroker([], sb, { env })).stdout).toBe(`${TOKEN}\n`);
    await sleep(1_700);
    const r = await runKeybroker([], sb, { env: { ...env, VAULT_TOKEN: 'hvs.revoked-or-wrong' } });
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: vault kv secret/${kvKey} field token: permission denied (HTTP 403) (the token (token from VAULT_TOKEN) may have expired, or its policy lacks read on secret/data/${kvKey} (KV v2) or secret/${kvKey} (KV v1); run keybroker explain ERR_VAULT_DENIED)\n`,
    );
    expect(r.stderr).not.toContain('revoked-or-wrong');
  });
});

describe('vault-identity through dist/keybroker', () => {
  it('reuses the identity token while it stays valid for TTL + margin, and mints again after', {
    timeout: 60_000,
  }, async () => {
    // Role ttl 20 s; TTL 5 s + margin 5 s = 10 s: the token serves for its first 10 s.
    const role = `llm-${n}`;
    await admin.oidcRole(role, 'llm-key', '{"team": {{identity.entity.metadata.team}}}', '20s');
    writeProfile(
      { type: 'vault-identity', role, auth: approleAuth() },
      {},
      { cache: { refreshMarginMs: 5_000 } },
    );
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '5000' };
    const mints = () => vault.count('GET', `identity/oidc/token/${role}`);

    const a = await runKeybroker([], sb, { env });
    expect(a.code).toBe(0);
    expect(a.stderr).toBe('');
    const jwt = a.stdout.trim();
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims.team).toBe('platform');
    expect(claims.exp - claims.iat).toBe(20);

    const b = await runKeybroker([], sb, { env });
    expect(b).toMatchObject({ code: 0, stdout: `${jwt}\n`, stderr: '' });
    expect(mints()).toBe(1);

    // Past exp - (TTL + M): the cached token would not last as long as Claude Code holds it.
    const waitMs = claims.exp * 1000 - 10_000 - Date.now() + 500;
    await sleep(Math.max(0, waitMs));
    const c = await runKeybroker([], sb, { env });
    expect(c.code).toBe(0);
    expect(c.stderr).toBe('');
    expect(c.stdout).not.toBe(`${jwt}\n`);
    expect(mints()).toBe(2);
    expect(logins()).toBe(1);
  });

  it('a role whose tokens live shorter than TTL + margin cannot serve: exit 2, and Vault is not asked again before the token expires', async () => {
    const role = `short-${n}`;
    await admin.oidcRole(role, 'llm-key', '', '60s');
    writeProfile({ type: 'vault-identity', role, auth: approleAuth() });
    const mints = () => vault.count('GET', `identity/oidc/token/${role}`);
    // Default TTL 300 s + margin 120 s > 60 s.
    const r = await runKeybroker([], sb);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^keybroker: vault-identity source of profile default: the token is valid for (59|60) s, less than TTL \+ margin \(420 s\) \(issue longer-lived tokens at the source or lower CLAUDE_CODE_API_KEY_HELPER_TTL_MS; run keybroker explain ERR_TOKEN_LIFETIME_TOO_SHORT\)\n$/,
    );
    expect(mints()).toBe(1);
    // The next call fails the same way at once: the kept token still has most of its minute.
    const again = await runKeybroker([], sb);
    expect(again).toMatchObject({ code: 2, stdout: '', stderr: r.stderr });
    expect(mints()).toBe(1);
    // A person asking with --refresh always reaches Vault.
    const refreshed = await runKeybroker(['--refresh'], sb);
    expect(refreshed.code).toBe(2);
    expect(refreshed.stdout).toBe('');
    expect(mints()).toBe(2);
  });

  it('doctor --probe warns when the minted identity names no one (a shared AppRole), not when it does', async () => {
    const doctor = async (template: string) => {
      const role = `who-${++n}`;
      await admin.oidcRole(role, 'llm-key', template, '1h');
      writeProfile({ type: 'vault-identity', role, auth: approleAuth() });
      const r = await runKeybroker(['doctor', '--probe'], sb);
      expect(r.stdout).toContain('[ok  ] probe: fetched a token from vault-identity');
      return r.stdout
        .split('\n')
        .filter((l) => l.includes('probe.identity') || l.includes('ERR_VAULT_IDENTITY_SHARED'));
    };
    expect(await doctor('{"user": {{identity.entity.id}}, "team": ""}')).toEqual([
      '[warn] probe.identity: the identity token carries no claim naming a person (user, team: empty or the entity id): every laptop behind this Vault login looks the same to the gateway',
      '       fix: log in per person (oidc, userpass, a per-device cert) and put a per-user value in the role template, e.g. {"user": {{identity.entity.name}}}; run keybroker explain ERR_VAULT_IDENTITY_SHARED',
    ]);
    expect(await doctor('{"user": {{identity.entity.name}}, "team": ""}')).toEqual([]);
  });
});

describe('vault secrets stay off stderr', () => {
  it('regression: a stray DEBUG=* made follow-redirects print X-Vault-Token; --debug traces without secret id, login token or value', async () => {
    writeProfile(kvSource(approleAuth()));
    const r = await runKeybroker(['--debug'], sb, { env: { DEBUG: '*' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${TOKEN}\n`);
    expect(r.stderr).toContain('keybroker: debug');
    expect(r.stderr).not.toContain(secretId);
    expect(r.stderr).not.toContain(TOKEN);
    expect(r.stderr).not.toMatch(/hvs\.[A-Za-z0-9_-]{8,}/);
  });
});
