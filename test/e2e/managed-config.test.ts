/**
 * What the managed layer protects (contract §3), through dist/keybroker as Claude Code runs it:
 * the system managed file wins over KEYBROKER_MANAGED_CONFIG (issue 11 finding 1), a lockdown
 * takes no connection setting from the environment, the lifetime cap (finding 4), templates
 * expanded before formats are checked, the last managed config that validated (issue 16),
 * candidate validation, and the identity template.
 *
 * The system path (/etc/keybroker/config.json) is tested without touching the real /etc: the
 * keybroker process runs in a private mount namespace (unshare -m) where /etc is an overlay
 * whose writes land on a tmpfs, so other tests running on the machine never see the file.
 * This needs root, as CI and this machine have.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jwtConfig, writeJwtKey } from '../helpers/jwt-profile.js';
import { BIN, makeSandbox, runKeybroker, runShell, type Sandbox, shq } from '../helpers/run.js';
import {
  DEFAULT_CREDENTIALS,
  type SecretsManagerServer,
  startSecretsManagerServer,
} from '../servers/secrets-manager-server.js';
import { startVaultServer, type VaultServer, vaultAdmin } from '../servers/vault-server.js';

let sb: Sandbox;
let keyFile: string;

beforeEach(() => {
  sb = makeSandbox();
  keyFile = writeJwtKey(sb);
});
afterEach(() => sb.cleanup());

const managedPath = () => sb.env.KEYBROKER_MANAGED_CONFIG!;

function writeManaged(config: unknown, file = managedPath()): void {
  fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2), {
    mode: 0o644,
  });
  fs.chmodSync(file, 0o644);
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.trim().split('.')[1]!, 'base64url').toString('utf8'));
}

/**
 * Runs keybroker with `systemConfig` at /etc/keybroker/config.json, visible to that process only.
 */
function runWithSystemManaged(systemConfig: unknown, args: string[], env: Record<string, string> = {}) {
  const staged = path.join(sb.dir, 'system-managed.json');
  fs.writeFileSync(staged, JSON.stringify(systemConfig), { mode: 0o644 });
  const ov = fs.mkdtempSync(path.join(sb.dir, 'ov-'));
  const inner = [
    `mount -t tmpfs tmpfs ${shq(ov)}`,
    `mkdir ${shq(`${ov}/up`)} ${shq(`${ov}/work`)}`,
    `mount -t overlay overlay -o ${shq(`lowerdir=/etc,upperdir=${ov}/up,workdir=${ov}/work`)} /etc`,
    'mkdir -p /etc/keybroker',
    `cp ${shq(staged)} /etc/keybroker/config.json`,
    'chmod 644 /etc/keybroker/config.json',
    `exec ${[BIN, ...args].map(shq).join(' ')}`,
  ].join(' && ');
  return runShell(`unshare -m --propagation private sh -c ${shq(inner)}`, sb, { env });
}

describe('finding 1: KEYBROKER_MANAGED_CONFIG cannot replace the system managed file', () => {
  it('with /etc/keybroker/config.json locking the claims, an evil KEYBROKER_MANAGED_CONFIG changes nothing', async () => {
    const system = {
      allowUserConfig: false,
      ...jwtConfig(keyFile, { claims: { user: '${user}', team: 'engineering' } }),
    };
    const evil = path.join(sb.home, 'evil.json');
    writeManaged(
      {
        allowUserConfig: true,
        ...jwtConfig(keyFile, { claims: { user: 'alice-the-cfo', team: 'admins' } }),
      },
      evil,
    );
    const r = await runWithSystemManaged(system, [], { KEYBROKER_MANAGED_CONFIG: evil });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(claimsOf(r.stdout)).toMatchObject({ user: sb.env.USER, team: 'engineering' });
    const paths = await runWithSystemManaged(system, ['config', 'path'], { KEYBROKER_MANAGED_CONFIG: evil });
    expect(paths.stdout.split('\n')[0]).toBe(
      'managed /etc/keybroker/config.json  (default location; exists)',
    );
  });

  it('where no system file exists, KEYBROKER_MANAGED_CONFIG still names the managed file', async () => {
    writeManaged(jwtConfig(keyFile, { claims: { team: 'from-variable' } }));
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(0);
    expect(claimsOf(r.stdout).team).toBe('from-variable');
  });
});

describe('finding 4: under a lockdown, no connection setting from the environment', () => {
  let vault: VaultServer;
  let token: string;
  beforeAll(async () => {
    vault = await startVaultServer();
    const admin = vaultAdmin(vault.url, vault.rootToken);
    await admin.putKv('secret', 2, 'llm', { token: 'sk-from-vault' });
    token = vault.rootToken;
  });
  afterAll(async () => {
    await vault.close();
  });

  const managedVault = (top: Record<string, unknown>) =>
    writeManaged({
      allowUserConfig: false,
      ...top,
      profiles: { default: { source: { type: 'vault', path: 'secret/llm', field: 'token' } } },
    });

  it('VAULT_ADDR and KEYBROKER_CACHE_DIR are not read for a locked-down managed profile', async () => {
    managedVault({});
    const evilCache = path.join(sb.dir, 'evil-cache');
    const r = await runKeybroker([], sb, {
      env: { VAULT_ADDR: vault.url, VAULT_TOKEN: token, KEYBROKER_CACHE_DIR: evilCache },
    });
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr:
        "keybroker: vault: no Vault address configured (set VAULT_ADDR or the profile's source.address, e.g. https://vault.example.com:8200; run keybroker explain ERR_VAULT_NO_ADDRESS)\n",
    });
    expect(vault.count('GET', 'secret/data/llm')).toBe(0);
    expect(fs.existsSync(evilCache)).toBe(false);
  });

  it('cache clear --all under a lockdown clears the configured cache directory, not KEYBROKER_CACHE_DIR', async () => {
    managedVault({});
    const elsewhere = path.join(sb.dir, 'elsewhere');
    fs.mkdirSync(elsewhere, { mode: 0o700 });
    const planted = path.join(elsewhere, 'default-0123456789abcdef.json');
    fs.writeFileSync(planted, '{}', { mode: 0o600 });
    const r = await runKeybroker(['cache', 'clear', '--all'], sb, {
      env: { KEYBROKER_CACHE_DIR: elsewhere },
    });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(fs.existsSync(planted)).toBe(true);
  });

  it('"environmentDefaults": true in the managed file takes them again', async () => {
    managedVault({ environmentDefaults: true });
    const cache = path.join(sb.dir, 'own-cache');
    const r = await runKeybroker([], sb, {
      env: { VAULT_ADDR: vault.url, VAULT_TOKEN: token, KEYBROKER_CACHE_DIR: cache },
    });
    expect(r).toMatchObject({ code: 0, stdout: 'sk-from-vault\n', stderr: '' });
    expect(fs.readdirSync(cache).some((f) => f.startsWith('default-') && f.endsWith('.json'))).toBe(true);
  });

  it('without a lockdown the environment defaults apply as before', async () => {
    sb.writeConfig({
      profiles: { default: { source: { type: 'vault', path: 'secret/llm', field: 'token' } } },
    });
    const r = await runKeybroker([], sb, { env: { VAULT_ADDR: vault.url, VAULT_TOKEN: token } });
    expect(r).toMatchObject({ code: 0, stdout: 'sk-from-vault\n', stderr: '' });
  });
});

describe('finding 4: under a lockdown, the AWS SDK takes no endpoint from the environment either', () => {
  let sm: SecretsManagerServer;
  beforeAll(async () => {
    sm = await startSecretsManagerServer({ region: 'us-east-1' });
    sm.putSecret('llm', 'sk-from-secrets-manager');
  });
  afterAll(async () => {
    await sm.close();
  });

  const awsEnv = () => ({
    AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: sm.url,
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  const managedAws = (top: Record<string, unknown>) =>
    writeManaged({
      allowUserConfig: false,
      ...top,
      profiles: {
        default: { timeoutMs: 4000, source: { type: 'aws-secrets-manager', secretId: 'llm' } },
      },
    });

  it('AWS_ENDPOINT_URL does not redirect a locked-down profile, not even through the SDK', async () => {
    managedAws({});
    const r = await runKeybroker([], sb, { env: awsEnv() });
    // Not the local endpoint the variable names: the SDK goes for the region's own host,
    // which this machine cannot resolve.
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 3, stdout: '' });
    expect(r.stderr).toMatch(
      /^keybroker: AWS Secrets Manager secret "llm" in us-east-1: cannot reach Secrets Manager \((ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT)\) \(.*ERR_AWS_UNREACHABLE\)\n$/,
    );
    expect(sm.requests.length).toBe(0);
  });

  it('"environmentDefaults": true takes AWS_ENDPOINT_URL again', async () => {
    managedAws({ environmentDefaults: true });
    const r = await runKeybroker([], sb, { env: awsEnv() });
    expect(r).toMatchObject({ code: 0, stdout: 'sk-from-secrets-manager\n', stderr: '' });
    expect(sm.getSecretValueCount()).toBe(1);
  });
});

describe('finding 4: maxLifetimeSec caps every derived lifetime', () => {
  /** Exit 0, exactly one warning line, and a JWT living `seconds` (exp − iat, iat being nbf − skew). */
  function expectLifetime(
    r: { code: number | null; stdout: string; stderr: string },
    warning: string,
    seconds: number,
  ) {
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`keybroker: warning: ${warning}\n`);
    const c = claimsOf(r.stdout) as { exp: number; nbf: number };
    expect(c.exp - (c.nbf + 30)).toBe(seconds);
  }

  it('CLAUDE_CODE_API_KEY_HELPER_TTL_MS=999999999999999 mints a JWT living at most a day, with a warning', async () => {
    sb.writeConfig(jwtConfig(keyFile));
    const r = await runKeybroker([], sb, { env: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '999999999999999' } });
    const warning =
      'CLAUDE_CODE_API_KEY_HELPER_TTL_MS 999999999999999 ms is above what the lifetime cap allows (maxLifetimeSec 86400); using 43140000 ms';
    expectLifetime(r, warning, 86400);
  });

  it('a managed maxLifetimeSec lowers the cap, and a jwt lifetimeSec above it is cut to it', async () => {
    writeManaged({ maxLifetimeSec: 3600 });
    sb.writeConfig(jwtConfig(keyFile, { lifetimeSec: 7200 }));
    const r = await runKeybroker([], sb);
    const warning =
      '/profiles/default/source/lifetimeSec 7200 is above the lifetime cap (maxLifetimeSec 3600); using 3600';
    expectLifetime(r, warning, 3600);
  });

  it('a user config cannot set maxLifetimeSec: it is read from the managed layer only', async () => {
    sb.writeConfig({ maxLifetimeSec: 999999, ...jwtConfig(keyFile) });
    const r = await runKeybroker([], sb);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: `keybroker: config ${sb.configPath}: /maxLifetimeSec: only the managed config may set this (move it to the managed config, or remove it; run keybroker explain ERR_CONFIG_INVALID)\n`,
    });
  });
});

describe('templates are expanded before formats are checked', () => {
  it('"address": "${env:MY_VAULT}" works when MY_VAULT is set, and an unset MY_VAULT is named', async () => {
    const vault = await startVaultServer();
    try {
      await vaultAdmin(vault.url, vault.rootToken).putKv('secret', 2, 'llm', { token: 'sk-templated' });
      sb.writeConfig({
        profiles: {
          default: {
            source: { type: 'vault', address: '${env:MY_VAULT}', path: 'secret/llm', field: 'token' },
          },
        },
      });
      const ok = await runKeybroker([], sb, { env: { MY_VAULT: vault.url, VAULT_TOKEN: vault.rootToken } });
      expect(ok).toMatchObject({ code: 0, stdout: 'sk-templated\n', stderr: '' });
      const line = `keybroker: config ${sb.configPath}: /profiles/default/source/address: environment variable MY_VAULT is not set (used as \${env:MY_VAULT}) (set MY_VAULT or change that value; run keybroker explain ERR_CONFIG_ENV_UNSET)\n`;
      const unset = await runKeybroker([], sb, { env: { VAULT_TOKEN: vault.rootToken } });
      expect(unset).toMatchObject({ code: 2, stdout: '', stderr: line });
      const validate = await runKeybroker(['config', 'validate'], sb);
      expect(validate).toMatchObject({ code: 2, stdout: '', stderr: line });
      const bad = await runKeybroker([], sb, { env: { MY_VAULT: 'vault.example.com' } });
      expect(bad).toMatchObject({
        code: 2,
        stdout: '',
        stderr: `keybroker: config ${sb.configPath}: /profiles/default/source/address: must match ^https?:// (Vault address (default VAULT_ADDR); run keybroker explain ERR_CONFIG_INVALID)\n`,
      });
    } finally {
      await vault.close();
    }
  });
});

describe('a bad managed push does not take laptops down (issue 16)', () => {
  const managed = () => ({ ...jwtConfig(keyFile), defaultProfile: 'default' });

  it('valid managed file: token; then a trailing comma: still a token, one warning, exit 0', async () => {
    writeManaged(managed());
    const first = await runKeybroker(['--refresh'], sb);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
    const copies = fs.readdirSync(sb.cacheDir).filter((f) => f.startsWith('managed-last-good-'));
    expect(copies).toHaveLength(1);
    expect(fs.statSync(path.join(sb.cacheDir, copies[0]!)).mode & 0o777).toBe(0o600);

    const text = JSON.stringify(managed(), null, 2);
    writeManaged(text.replace(/\n}$/, ',\n}'));
    const lines = text.split('\n').length;
    const r = await runKeybroker(['--refresh'], sb);
    expect(r.code).toBe(0);
    expect(claimsOf(r.stdout).iss).toBe('keybroker-test');
    expect(r.stderr).toMatch(
      new RegExp(
        `^keybroker: warning: config ${reEscape(managedPath())}: invalid JSON at line ${lines}, column 1: expected a property name in double quotes; going on with the last managed config that validated \\(saved \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\) \\(fix ${reEscape(managedPath())}; keybroker doctor shows the problem\\)\\n$`,
      ),
    );
  });

  it('with no copy kept (never validated here), the broken managed file is exit 2 as before', async () => {
    writeManaged('{"profiles": {},}');
    const r = await runKeybroker([], sb);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: `keybroker: config ${managedPath()}: invalid JSON at line 1, column 17: expected a property name in double quotes (fix the syntax there; run keybroker explain ERR_CONFIG_JSON)\n`,
    });
  });

  it('an unsafe managed file (exit 6) is never replaced by the copy', async () => {
    writeManaged(managed());
    expect((await runKeybroker([], sb)).code).toBe(0);
    fs.chmodSync(managedPath(), 0o666);
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(6);
  });
});

describe('keybroker config validate FILE --layer managed|user', () => {
  it('a candidate managed file in a 0664 CI checkout: a warning, not a failure', async () => {
    const cand = path.join(sb.home, 'candidate.json');
    writeManaged(
      { allowUserConfig: false, docsUrl: 'https://wiki.example.com/keybroker', ...jwtConfig(keyFile) },
      cand,
    );
    fs.chmodSync(cand, 0o664);
    const r = await runKeybroker(['config', 'validate', cand, '--layer', 'managed'], sb);
    expect(r).toMatchObject({
      code: 0,
      stdout: `config ok: ${cand} (as the managed layer); profiles: default\n`,
      stderr: `keybroker: warning: ${cand}: writable by others (mode 0664); keybroker refuses such a file where it reads it (install it owned by root, mode 0644)\n`,
    });
  });

  it('a broken candidate is exit 2 naming the file and the JSON path; the installed config is not consulted', async () => {
    const cand = path.join(sb.home, 'candidate.json');
    writeManaged({ profiles: { default: { source: { type: 'jwt', algorithm: 'ES512' } } } }, cand);
    const r = await runKeybroker(['config', 'validate', cand, '--layer', 'managed'], sb);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: `keybroker: config ${cand}: /profiles/default/source/algorithm: must be one of "ES256", "ES384", "RS256", "PS256", "EdDSA", "HS256" (signing algorithm; run keybroker explain ERR_CONFIG_INVALID)\n`,
    });
  });

  it('as the user layer, a managed-only key is refused', async () => {
    const cand = path.join(sb.home, 'candidate.json');
    writeManaged({ environmentDefaults: true }, cand);
    const r = await runKeybroker(['config', 'validate', cand], sb);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: `keybroker: config ${cand}: /environmentDefaults: only the managed config may set this (move it to the managed config, or remove it; run keybroker explain ERR_CONFIG_INVALID)\n`,
    });
  });
});

describe('identity template (issue 16)', () => {
  it('"identity": "${env:CORP_USER}" becomes the default sub and user claim', async () => {
    writeManaged({ identity: '${env:CORP_USER}' });
    sb.writeConfig(jwtConfig(keyFile));
    const r = await runKeybroker([], sb, { env: { CORP_USER: 'a.lovelace' } });
    expect(r.code).toBe(0);
    expect(claimsOf(r.stdout)).toMatchObject({ sub: 'a.lovelace', user: 'a.lovelace' });
  });

  it('"identity": "${user}@example.com" and ${identity} in a claim', async () => {
    sb.writeConfig({
      identity: '${user}@example.com',
      ...jwtConfig(keyFile, { claims: { email: '${identity}', login: '${user}' } }),
    });
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(0);
    expect(claimsOf(r.stdout)).toMatchObject({
      sub: `${sb.env.USER}@example.com`,
      email: `${sb.env.USER}@example.com`,
      login: sb.env.USER,
    });
  });
});

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('--config under a lockdown (issue 16)', () => {
  it('is said to be ignored, once, on every command; the token path still succeeds from the cache too', async () => {
    writeManaged({ allowUserConfig: false, ...jwtConfig(keyFile, { claims: { team: 'managed' } }) });
    const own = path.join(sb.home, 'mine.json');
    fs.writeFileSync(own, JSON.stringify(jwtConfig(keyFile, { claims: { team: 'mine' } })), { mode: 0o600 });
    const line = `keybroker: warning: --config ${own} is ignored: the managed config ${managedPath()} sets "allowUserConfig": false, so only its profiles apply\n`;
    for (let i = 0; i < 2; i++) {
      // the second call is a cache hit
      const r = await runKeybroker(['--config', own], sb);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: line });
      expect(claimsOf(r.stdout).team).toBe('managed');
    }
    const st = await runKeybroker(['status', '--config', own], sb);
    expect({ code: st.code, stderr: st.stderr }).toEqual({ code: 0, stderr: line });
    expect(st.stdout.split('\n')[0]).toBe('profile default (selected)');
    // Without --config, or without a lockdown, nothing is said.
    expect((await runKeybroker([], sb)).stderr).toBe('');
    writeManaged(jwtConfig(keyFile, { claims: { team: 'managed' } }));
    const open = await runKeybroker(['--config', own], sb);
    expect({ code: open.code, stderr: open.stderr }).toEqual({ code: 0, stderr: '' });
    expect(claimsOf(open.stdout).team).toBe('mine');
  });
});
