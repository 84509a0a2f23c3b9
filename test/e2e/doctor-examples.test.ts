/**
 * The configs in examples/ are valid, and work: the jwt one mints a token, the vault one
 * (as the managed layer, with only the address moved to a local Vault by the user layer)
 * reads a per-user virtual key, and doctor passes on them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSandbox, ROOT, runKeybroker, type Sandbox } from '../helpers/run.js';
import { startVaultServer, vaultAdmin } from '../servers/vault-server.js';

const EXAMPLES = path.join(ROOT, 'examples');
const example = (name: string) => path.join(EXAMPLES, name);

let sb: Sandbox;
afterEach(() => sb?.cleanup());

describe('examples/', () => {
  it.each([
    'jwt.json',
    'vault.json',
    'vault-identity.json',
    'aws-secrets-manager.json',
    'keychain.json',
    'oidc-okta.json',
    'oidc-entra.json',
    'oidc-keycloak.json',
  ])('%s is a valid config', async (name) => {
    sb = makeSandbox({ VAULT_ROLE_ID: 'role-id-for-the-example' });
    const r = await runKeybroker(['config', 'validate', '--config', example(name)], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('jwt.json mints a token with the user and team claims once its key exists, and doctor passes', async () => {
    sb = makeSandbox();
    const keyFile = path.join(sb.home, '.config', 'keybroker', 'signing.pem');
    fs.mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
    expect((await runKeybroker(['keygen', '--out', keyFile], sb)).code).toBe(0);
    const r = await runKeybroker(['--config', example('jwt.json')], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const claims = JSON.parse(Buffer.from(r.stdout.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({
      iss: 'keybroker',
      aud: 'litellm',
      user: sb.env.USER,
      team: 'engineering',
    });
    expect(claims.exp - claims.nbf).toBe(2 * 3600 + 120 + 30);

    const init = await runKeybroker(['init', '--ttl', '3600000'], sb);
    expect(init.code).toBe(0);
    const doctor = await runKeybroker(['doctor', '--config', example('jwt.json')], sb);
    expect(doctor.stdout.trimEnd().split('\n').at(-1)).toBe('all checks passed');
    expect(doctor.code).toBe(0);
  });

  it("vault.json as the managed config reads the user's virtual key (user layer moves only the address)", async () => {
    const vault = await startVaultServer();
    try {
      const admin = vaultAdmin(vault.url, vault.rootToken);
      sb = makeSandbox({ KEYBROKER_MANAGED_CONFIG: example('vault.json'), VAULT_TOKEN: vault.rootToken });
      await admin.putKv('secret', 2, `llm-gateway/${sb.env.USER}`, {
        api_key: 'sk-litellm-virtual-key-for-test',
      });
      sb.writeConfig({ profiles: { default: { source: { type: 'vault', address: vault.url } } } });
      const r = await runKeybroker([], sb);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('sk-litellm-virtual-key-for-test\n');
      expect(r.code).toBe(0);

      const init = await runKeybroker(['init', '--ttl', '3600000'], sb);
      expect(init.code).toBe(0);
      const doctor = await runKeybroker(['doctor', '--probe'], sb);
      expect(doctor.stdout).toContain(`[ok  ] probe.vault: Vault at ${vault.url} answers (HTTP 200`);
      expect(doctor.stdout).toContain('[ok  ] probe: fetched a token from vault in ');
      expect(doctor.stdout).not.toContain('sk-litellm-virtual-key-for-test');
      // At most a quarter of the value: 3 + 3 of 31 characters (issue 11, finding 9).
      expect(doctor.stdout).toContain('sk-…est (31 chars)');
      expect(doctor.code).toBe(0);
    } finally {
      await vault.close();
    }
  });
});
