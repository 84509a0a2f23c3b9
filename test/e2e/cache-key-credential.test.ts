/**
 * Issue 11 finding 3: `VAULT_TOKEN=hvs.ALICE keybroker` then `VAULT_TOKEN=hvs.BOB keybroker`
 * (and a run with no token) printed Alice's secret three times; the server saw one read. The
 * cache key now covers the identity of the credential (contract §2).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ConfigInputs, loadConfig, resolveProfile } from '../../src/config/load.js';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import { startVaultServer, type VaultServer, vaultAdmin } from '../servers/vault-server.js';

const SECRET = 'sk-ant-api03-alice-only-0001';
let vault: VaultServer;
let alice: string;
let bob: string;
let sb: Sandbox;

beforeAll(async () => {
  vault = await startVaultServer();
  const admin = vaultAdmin(vault.url, vault.rootToken);
  await admin.putPolicy('llm', 'path "secret/data/*" { capabilities = ["read"] }');
  await admin.putKv('secret', 2, 'llm', { token: SECRET });
  alice = await admin.createToken(['llm']);
  bob = await admin.createToken(['default']);
});
afterAll(async () => {
  await vault.close();
});
beforeEach(() => {
  vault.resetCounts();
  sb = makeSandbox({ VAULT_ADDR: vault.url });
  sb.writeConfig({
    profiles: { default: { source: { type: 'vault', path: 'secret/llm', field: 'token' } } },
  });
});
afterEach(() => sb.cleanup());

const reads = () => vault.count('GET', 'secret/data/llm');

describe('finding 3: the cache key covers the credential', () => {
  it("VAULT_TOKEN=alice, then bob, then none never serves alice's secret; alice again is a hit", async () => {
    expect(await runKeybroker([], sb, { env: { VAULT_TOKEN: alice } })).toMatchObject({
      code: 0,
      stdout: `${SECRET}\n`,
      stderr: '',
    });
    expect(reads()).toBe(1);

    const asBob = await runKeybroker([], sb, { env: { VAULT_TOKEN: bob } });
    expect({ code: asBob.code, stdout: asBob.stdout }).toEqual({ code: 4, stdout: '' });
    expect(reads()).toBe(2);

    const none = await runKeybroker([], sb);
    expect(none).toMatchObject({
      code: 4,
      stdout: '',
      stderr:
        'keybroker: vault: no Vault token found (run vault login, set VAULT_TOKEN, or set source.auth.tokenFile; run keybroker explain ERR_VAULT_NO_TOKEN)\n',
    });
    expect(reads()).toBe(2);

    expect(await runKeybroker([], sb, { env: { VAULT_TOKEN: alice } })).toMatchObject({
      code: 0,
      stdout: `${SECRET}\n`,
    });
    expect(reads()).toBe(2);
  });

  it('~/.vault-token rewritten for another user (vault login as bob) is another entry', async () => {
    const tokenFile = path.join(sb.home, '.vault-token');
    fs.writeFileSync(tokenFile, alice, { mode: 0o600 });
    expect((await runKeybroker([], sb)).stdout).toBe(`${SECRET}\n`);
    fs.writeFileSync(tokenFile, bob, { mode: 0o600 });
    const r = await runKeybroker([], sb);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 4, stdout: '' });
    expect(reads()).toBe(2);
  });
});

describe('credential identity in the key, per source', () => {
  const keyFor = (source: Record<string, unknown>, env: Record<string, string>) => {
    sb.writeConfig({ profiles: { default: { source } } });
    const inputs: ConfigInputs = {
      env: { ...sb.env, ...env },
      platform: process.platform,
      homeDir: sb.home,
      userName: 'u',
      hostName: 'h',
    };
    return resolveProfile(loadConfig(inputs), inputs).cacheKey;
  };

  it('AWS: another AWS_ACCESS_KEY_ID or AWS_PROFILE is another key; the same is the same', () => {
    const aws = { type: 'aws-secrets-manager', secretId: 's', region: 'eu-west-1' };
    const a = keyFor(aws, { AWS_ACCESS_KEY_ID: 'AKIAALICE' });
    expect(keyFor(aws, { AWS_ACCESS_KEY_ID: 'AKIAALICE' })).toBe(a);
    expect(keyFor(aws, { AWS_ACCESS_KEY_ID: 'AKIABOB' })).not.toBe(a);
    expect(keyFor(aws, { AWS_PROFILE: 'bob' })).not.toBe(keyFor(aws, { AWS_PROFILE: 'alice' }));
  });

  it('a keychain profile keeps the key it had (nothing outside the config names its credential)', () => {
    const k = keyFor({ type: 'keychain', service: 's', account: 'a' }, {});
    expect(k).toBe(keyFor({ type: 'keychain', service: 's', account: 'a' }, { VAULT_TOKEN: 'x' }));
  });
});
