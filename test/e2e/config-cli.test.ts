// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config strings hold ${...} templates
/**
 * `keybroker config validate|schema|path|show` and config errors on the token path, through
 * the built executable run by /bin/sh -c with a stdin that never closes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/config/validate.js';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';

let sb: Sandbox;
let managedPath: string;
beforeEach(() => {
  sb = makeSandbox();
  managedPath = sb.env.KEYBROKER_MANAGED_CONFIG!;
});
afterEach(() => sb.cleanup());

const writeManaged = (config: unknown) =>
  fs.writeFileSync(managedPath, JSON.stringify(config), { mode: 0o644 });
const vaultProfile = {
  source: {
    type: 'vault',
    path: 'kv/llm',
    field: 'token',
    auth: { method: 'approle', roleId: 'role-literal-1234', secretIdEnv: 'KB_SECRET_ID' },
  },
};

describe('config schema', () => {
  it('prints the JSON Schema that the validator uses', async () => {
    const r = await runKeybroker(['config', 'schema'], sb);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    expect(JSON.parse(r.stdout).$schema).toBe('https://json-schema.org/draft/2020-12/schema');
  });
});

describe('config validate', () => {
  it('names the files read and the profiles', async () => {
    writeManaged({ defaultProfile: 'corp', profiles: { corp: vaultProfile } });
    sb.writeConfig({ profiles: { mine: { source: { type: 'keychain', service: 's' } } } });
    const r = await runKeybroker(['config', 'validate'], sb);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(
      `config ok: ${managedPath} (managed), ${sb.configPath} (user); profiles: corp, mine\n`,
    );
  });

  it('says so when no file exists', async () => {
    const r = await runKeybroker(['config', 'validate'], sb);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(
      `config ok: no config file (looked for ${managedPath} and ${sb.configPath}); profiles: none\n`,
    );
  });

  it('reports an ignored user layer', async () => {
    writeManaged({ allowUserConfig: false, profiles: { default: vaultProfile } });
    sb.writeConfig({ whatever: 1 });
    const r = await runKeybroker(['config', 'validate'], sb);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(
      `config ok: ${managedPath} (managed); profiles: default; ${sb.configPath} ignored (the managed config sets allowUserConfig to false)\n`,
    );
  });

  it('exits 2 naming the file and JSON path of an unknown key', async () => {
    sb.writeConfig({ profiles: { default: { source: { type: 'keychain', service: 's', acount: 'x' } } } });
    const r = await runKeybroker(['config', 'validate'], sb);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe(
      `keybroker: config ${sb.configPath}: /profiles/default/source/acount: unknown key (allowed here: type, service, account; run keybroker explain ERR_CONFIG_INVALID)\n`,
    );
  });

  it('exits 2 on invalid JSON with line and column, without quoting the file', async () => {
    fs.mkdirSync(path.dirname(sb.configPath), { recursive: true, mode: 0o700 });
    fs.writeFileSync(sb.configPath, '{\n  "profiles": {\n    "x": s3cr3t-value\n  }\n}\n', { mode: 0o600 });
    const r = await runKeybroker(['config', 'validate'], sb);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe(
      `keybroker: config ${sb.configPath}: invalid JSON at line 3, column 10: expected a value (fix the syntax there; run keybroker explain ERR_CONFIG_JSON)\n`,
    );
  });

  it('exits 6 for a config file that others may write', async () => {
    sb.writeConfig({});
    fs.chmodSync(sb.configPath, 0o666);
    const r = await runKeybroker(['config', 'validate'], sb);
    expect([r.code, r.stdout]).toEqual([6, '']);
    expect(r.stderr).toBe(
      `keybroker: config file ${sb.configPath}: writable by others (mode 0666) (run chmod go-w '${sb.configPath}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
    );
  });

  it('takes the user file from --config', async () => {
    const other = path.join(sb.dir, 'other.json');
    fs.writeFileSync(other, '{"profiles": {"o": {"source": {"type": "jwt"}}}}', { mode: 0o600 });
    const r = await runKeybroker(['config', 'validate', '--config', other], sb);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(`config ok: ${other} (user); profiles: o\n`);
  });

  it('asks for a subcommand', async () => {
    const r = await runKeybroker(['config'], sb);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe(
      'keybroker: usage: keybroker config needs a subcommand: validate, schema, path or show (run keybroker config --help)\n',
    );
  });
});

describe('config path', () => {
  it('lists the managed and user files, how each was chosen and whether it exists', async () => {
    sb.writeConfig({});
    const r = await runKeybroker(['config', 'path'], sb);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(
      `managed ${managedPath}  (from KEYBROKER_MANAGED_CONFIG; missing)\n` +
        `user    ${sb.configPath}  (default location; exists)\n`,
    );
  });

  it('--json, with KEYBROKER_CONFIG and an ignored user layer', async () => {
    writeManaged({ allowUserConfig: false });
    const user = path.join(sb.dir, 'u.json');
    const r = await runKeybroker(['config', 'path', '--json'], sb, { env: { KEYBROKER_CONFIG: user } });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(JSON.parse(r.stdout)).toEqual([
      {
        layer: 'managed',
        path: managedPath,
        origin: 'KEYBROKER_MANAGED_CONFIG',
        exists: true,
        ignored: false,
      },
      { layer: 'user', path: user, origin: 'KEYBROKER_CONFIG', exists: false, ignored: true },
    ]);
  });

  it('still lists the files when one of them is unusable, then fails', async () => {
    sb.writeConfig({});
    fs.chmodSync(path.dirname(sb.configPath), 0o777);
    const dir = path.dirname(sb.configPath);
    const r = await runKeybroker(['config', 'path'], sb);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe(
      `managed ${managedPath}  (from KEYBROKER_MANAGED_CONFIG; missing)\n` +
        `user    ${sb.configPath}  (default location; exists)\n`,
    );
    expect(r.stderr).toBe(
      `keybroker: config directory ${dir}: writable by others (mode 0777) (run chmod go-w '${dir}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
    );
  });
});

describe('config show', () => {
  beforeEach(() => {
    writeManaged({ cache: { storage: 'file' }, profiles: { default: { ttlMs: 600000, ...vaultProfile } } });
    sb.writeConfig({
      profiles: {
        default: { source: { type: 'vault', field: 'other' } },
        j: {
          source: {
            type: 'jwt',
            issuer: 'kb-${hostname}',
            audience: ['gw', '${env:KB_TEAM}'],
            claims: { team: '${env:KB_TEAM}' },
          },
        },
      },
    });
  });

  it('prints every value with its layer, then the selected profile resolved, secrets redacted', async () => {
    const env = { VAULT_ADDR: 'https://ops:hunter2@127.0.0.1:8200' };
    const r = await runKeybroker(['config', 'show'], sb, { env });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).not.toContain('role-literal-1234');
    expect(r.stdout).not.toContain('hunter2');
    const audit = path.join(sb.home, '.local', 'state', 'keybroker', 'audit.log');
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 31)).toEqual([
      `# managed ${managedPath}  (from KEYBROKER_MANAGED_CONFIG; exists)`,
      `# user    ${sb.configPath}  (default location; exists)`,
      '/cache/storage = "file"  (managed)',
      '/profiles/default/ttlMs = 600000  (managed)',
      '/profiles/default/source/type = "vault"  (user)',
      '/profiles/default/source/path = "kv/llm"  (managed)',
      '/profiles/default/source/field = "other"  (user)',
      '/profiles/default/source/auth/method = "approle"  (managed)',
      '/profiles/default/source/auth/roleId = [redacted]  (managed)',
      '/profiles/default/source/auth/secretIdEnv = "KB_SECRET_ID"  (managed)',
      '/profiles/j/source/type = "jwt"  (user)',
      '/profiles/j/source/issuer = "kb-${hostname}"  (user)',
      '/profiles/j/source/audience = ["gw","${env:KB_TEAM}"]  (user)',
      '/profiles/j/source/claims/team = "${env:KB_TEAM}"  (user)',
      '',
      '# profile "default", resolved (templates, ~ and environment defaults applied)',
      '/source/type = "vault"  (user)',
      '/source/path = "kv/llm"  (managed)',
      '/source/field = "other"  (user)',
      '/source/auth/method = "approle"  (managed)',
      '/source/auth/roleId = [redacted]  (managed)',
      '/source/auth/secretIdEnv = "KB_SECRET_ID"  (managed)',
      '/source/address = "https://ops:***@127.0.0.1:8200"  (env VAULT_ADDR)',
      '/ttlMs = 600000  (managed)',
      '/timeoutMs = 8000  (default)',
      '/cache/storage = "file"  (managed)',
      '/cache/refreshMarginMs = 120000  (default)',
      '/cache/staleIfErrorMs = 3600000  (default)',
      '/cache/minRefreshIntervalMs = 10000  (default)',
      '/audit/enabled = true  (default)',
      `/audit/file = ${JSON.stringify(audit)}  (default)`,
    ]);
    expect(lines[31]).toMatch(/^\/cacheKey = "default-[0-9a-f]{16}" {2}\(derived\)$/);
    expect(lines.slice(32)).toEqual(['']);
  });

  it('--json gives {value, layer} per JSON pointer; ${env:...} values are redacted once resolved', async () => {
    const r = await runKeybroker(['config', 'show', '--json', '--profile', 'j'], sb, {
      env: { KB_TEAM: 'secret-team-name', CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '900000' },
    });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).not.toContain('secret-team-name');
    const shown = JSON.parse(r.stdout);
    expect(shown.values['/profiles/j/source/claims/team']).toEqual({
      value: '${env:KB_TEAM}',
      layer: 'user',
    });
    expect(shown.values['/profiles/default/source/auth/roleId']).toEqual({
      value: '[redacted]',
      layer: 'managed',
    });
    expect(shown.profile.name).toBe('j');
    expect(shown.profile.values['/source/claims/team']).toEqual({ value: '[redacted]', layer: 'user' });
    expect(shown.profile.values['/source/audience']).toEqual({ value: '[redacted]', layer: 'user' });
    expect(shown.profile.values['/source/issuer']).toEqual({ value: `kb-${os.hostname()}`, layer: 'user' });
    expect(shown.profile.values['/source/subject']).toEqual({
      value: os.userInfo().username,
      layer: 'default',
    });
    expect(shown.profile.values['/ttlMs']).toEqual({
      value: 900000,
      layer: 'env CLAUDE_CODE_API_KEY_HELPER_TTL_MS',
    });
  });

  it('exits 2 naming the variable when the selected profile needs an unset ${env:...}', async () => {
    const r = await runKeybroker(['config', 'show', '--profile', 'j'], sb);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe(
      `keybroker: config ${sb.configPath}: /profiles/j/source/audience/1: environment variable KB_TEAM is not set (used as \${env:KB_TEAM}) (set KB_TEAM or change that value; run keybroker explain ERR_CONFIG_ENV_UNSET)\n`,
    );
  });
});

describe('config errors on the token path', () => {
  it('exits 2 with the file and JSON path of an unknown key', async () => {
    sb.writeConfig({ profiles: { default: { ttl: 5, source: { type: 'jwt' } } } });
    const r = await runKeybroker([], sb);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe(
      `keybroker: config ${sb.configPath}: /profiles/default/ttl: unknown key (allowed here: ttlMs, timeoutMs, source, proxy; run keybroker explain ERR_CONFIG_INVALID)\n`,
    );
  });

  it('exits 6 for a world-writable config file', async () => {
    sb.writeConfig({ profiles: { default: { source: { type: 'jwt' } } } });
    fs.chmodSync(sb.configPath, 0o646);
    const r = await runKeybroker(['--profile', 'default'], sb);
    expect([r.code, r.stdout]).toEqual([6, '']);
    expect(r.stderr).toBe(
      `keybroker: config file ${sb.configPath}: writable by others (mode 0646) (run chmod go-w '${sb.configPath}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
    );
  });

  it('exits 2 naming an unknown profile and the available ones', async () => {
    sb.writeConfig({ profiles: { a: { source: { type: 'jwt' } }, b: { source: { type: 'jwt' } } } });
    const r = await runKeybroker([], sb, { env: { KEYBROKER_PROFILE: 'c' } });
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe(
      `keybroker: profile "c" (from KEYBROKER_PROFILE): not defined in ${sb.configPath} (available: a, b; run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE)\n`,
    );
  });
});
