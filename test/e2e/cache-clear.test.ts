import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeJwtKey } from '../helpers/jwt-profile.js';
import { CLAUDE_CODE_ENV, makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import { startVaultServer, vaultAdmin } from '../servers/vault-server.js';

let sb: Sandbox;
beforeEach(() => {
  // every run here is Claude Code's, which keeps served records
  sb = makeSandbox(CLAUDE_CODE_ENV);
  const key = writeJwtKey(sb);
  const source = { type: 'jwt', signingKey: { file: key } };
  sb.writeConfig({ profiles: { default: { source }, 'default-b': { source } } });
});
afterEach(() => sb.cleanup());

const files = () => fs.readdirSync(sb.cacheDir).sort();

describe('cache clear', () => {
  it('removes one profile’s entry, lock and served records, and leaves other profiles alone', async () => {
    // served records are kept for Claude Code's calls only
    await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    await runKeybroker(['--profile', 'default-b'], sb, { env: CLAUDE_CODE_ENV });
    const entry = files().find((f) => /^default-[0-9a-f]{16}\.json$/.test(f))!;
    fs.writeFileSync(`${sb.cacheDir}/${entry.replace(/\.json$/, '')}.lock`, '{}');
    const before = files();
    expect(before.filter((f) => f.startsWith('default-b-'))).toHaveLength(2);
    const r = await runKeybroker(['cache', 'clear'], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const gone = before.length - files().length;
    expect(gone).toBe(3);
    expect(files().filter((f) => f.startsWith('config-ok-'))).toHaveLength(1);
    expect(r.stdout).toBe(`removed 3 cache files for profile default in ${sb.cacheDir}\n`);
    expect(files().every((f) => f.startsWith('default-b-') || f.startsWith('config-ok-'))).toBe(true);
  });

  it('takes a profile’s source memos too (a Vault login token, its KV mount), not another’s', async () => {
    const vault = await startVaultServer();
    try {
      const admin = vaultAdmin(vault.url, vault.rootToken);
      await admin.putKv('secret', 2, 'llm', { token: 'tok-vault-memo' });
      await admin.putPolicy(
        'llm',
        'path "secret/*" { capabilities = ["read"] }\npath "sys/internal/ui/mounts/*" { capabilities = ["read"] }',
      );
      await admin.enableAuth('approle', 'approle');
      const { roleId, secretId } = await admin.approleRole('approle', 'laptop', ['llm']);
      const source = {
        type: 'vault',
        address: vault.url,
        path: 'secret/llm',
        field: 'token',
        auth: { method: 'approle', roleId, secretIdEnv: 'KB_SECRET_ID' },
      };
      sb.writeConfig({ profiles: { 'vault-a': { source }, 'vault-a.eu': { source } } });
      const env = { KB_SECRET_ID: secretId };
      for (const profile of ['vault-a', 'vault-a.eu']) {
        const r = await runKeybroker(['--profile', profile], sb, { env });
        expect(r).toMatchObject({ code: 0, stdout: 'tok-vault-memo\n', stderr: '' });
      }
      const shapes = () =>
        files()
          .filter((f) => !f.startsWith('config-ok-'))
          .map((f) => f.replace(/[0-9a-f]{16}/g, 'H').replace(/\.served-\d+-\d+$/, '.served'));
      // Each profile: its entry, served record, the login token and the KV mount it remembered.
      const one = (p: string) => [`${p}-H.json`, `${p}-H.memo-H.blob`, `${p}-H.memo-H.blob`, `${p}-H.served`];
      expect(shapes()).toEqual([...one('vault-a'), ...one('vault-a.eu')]);
      const r = await runKeybroker(['cache', 'clear', '--profile', 'vault-a'], sb, { env });
      expect(r).toMatchObject({
        code: 0,
        stdout: `removed 4 cache files for profile vault-a in ${sb.cacheDir}\n`,
        stderr: '',
      });
      expect(shapes()).toEqual(one('vault-a.eu'));
    } finally {
      await vault.close();
    }
  });

  it('--all removes everything keybroker wrote and works with a broken config', async () => {
    await runKeybroker([], sb);
    await runKeybroker(['--profile', 'default-b'], sb);
    fs.writeFileSync(sb.configPath, '{ not json');
    const r = await runKeybroker(['cache', 'clear', '--all'], sb);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`removed 4 cache files for all profiles in ${sb.cacheDir}\n`);
    expect(files()).toEqual([]);
  });

  it('finding 11: --all removes only files keybroker wrote, not a main-3f2a9c0d1e4b5a67.js beside them', async () => {
    const dir = path.join(sb.dir, 'build');
    fs.mkdirSync(dir, { mode: 0o700 });
    const env = { KEYBROKER_CACHE_DIR: dir };
    await runKeybroker([], sb, { env });
    await runKeybroker(['--profile', 'default-b'], sb, { env });
    const foreign = [
      'main-3f2a9c0d1e4b5a67.js',
      'main-3f2a9c0d1e4b5a67.js.map',
      'default-0123456789abcdef.json.bak',
    ];
    for (const f of foreign) fs.writeFileSync(path.join(dir, f), 'not keybroker’s');
    const r = await runKeybroker(['cache', 'clear', '--all'], sb, { env });
    expect(r).toMatchObject({
      code: 0,
      stderr: '',
      stdout: `removed 4 cache files for all profiles in ${dir}\n`,
    });
    expect(fs.readdirSync(dir).sort()).toEqual([...foreign].sort());
  });

  it('finding 11: a directory that fails the checks is not cleared (exit 6, nothing removed)', async () => {
    const dir = path.join(sb.dir, 'shared');
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o777);
    const names = ['main-3f2a9c0d1e4b5a67.js', 'default-0123456789abcdef.json'];
    for (const f of names) fs.writeFileSync(path.join(dir, f), '{}');
    const r = await runKeybroker(['cache', 'clear', '--all'], sb, { env: { KEYBROKER_CACHE_DIR: dir } });
    expect(r).toMatchObject({
      code: 6,
      stdout: '',
      stderr: `keybroker: cache directory ${dir}: writable by others (mode 0777) (run chmod go-w '${dir}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
    });
    expect(fs.readdirSync(dir).sort()).toEqual([...names].sort());
  });

  it('--all with --profile is a usage error (exit 2)', async () => {
    const r = await runKeybroker(['cache', 'clear', '--all', '--profile', 'default'], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'keybroker: cache clear: --all and --profile exclude each other (give one of them)\n',
    );
  });

  it("--profile naming no configured profile is the token path's config error (exit 2), and clears nothing", async () => {
    await runKeybroker([], sb);
    const before = files();
    const r = await runKeybroker(['cache', 'clear', '--profile', 'nosuch'], sb);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: profile "nosuch" (from --profile): not defined in ${sb.configPath} (available: default, default-b; run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE)\n`,
    );
    expect(r.code).toBe(2);
    expect(files()).toEqual(before);
  });

  it('a profile no longer configured whose entries are still cached can be cleared', async () => {
    await runKeybroker(['--profile', 'default-b'], sb);
    const key = writeJwtKey(sb);
    sb.writeConfig({ profiles: { default: { source: { type: 'jwt', signingKey: { file: key } } } } });
    const r = await runKeybroker(['cache', 'clear', '--profile', 'default-b'], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^removed [1-9]\d* cache files? for profile default-b in /);
    expect(files().filter((f) => f.startsWith('default-b-'))).toEqual([]);
  });

  it('after clearing, the next run fetches anew', async () => {
    const a = await runKeybroker([], sb);
    await runKeybroker(['cache', 'clear'], sb);
    const b = await runKeybroker([], sb);
    expect(b.code).toBe(0);
    expect(b.stdout).not.toBe(a.stdout);
  });
});

describe('served records', () => {
  it('records idle for a day are pruned when the entry is next fetched', async () => {
    await runKeybroker([], sb);
    const served = files().filter((f) => f.includes('.served-'));
    expect(served).toHaveLength(1);
    const old = new Date(Date.now() - 25 * 3600_000);
    fs.utimesSync(`${sb.cacheDir}/${served[0]}`, old, old);
    await runKeybroker(['--refresh'], sb);
    expect(files().filter((f) => f.includes('.served-'))).not.toContain(served[0]);
  });
});
