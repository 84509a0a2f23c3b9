/** `keybroker init`: Claude Code's settings get apiKeyHelper and the TTL, everything else is kept. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';

let sb: Sandbox;
afterEach(() => sb?.cleanup());

const userSettings = () => path.join(sb.home, '.claude', 'settings.json');

function backups(file: string): string[] {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => n.startsWith(`${path.basename(file)}.bak-`))
    .map((n) => path.join(dir, n));
}

describe('keybroker init', () => {
  it('writes apiKeyHelper and the TTL into ~/.claude/settings.json, keeping every other key and a backup', async () => {
    sb = makeSandbox();
    fs.mkdirSync(path.dirname(userSettings()), { recursive: true });
    const before = `${JSON.stringify(
      {
        model: 'opus',
        permissions: { allow: ['Bash(ls:*)'] },
        env: { FOO: 'bar' },
        apiKeyHelper: 'old-helper',
      },
      null,
      2,
    )}\n`;
    fs.writeFileSync(userSettings(), before, { mode: 0o600 });
    const r = await runKeybroker(['init', '--ttl', '3600000'], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [backup, ...more] = backups(userSettings());
    expect(more).toEqual([]);
    expect(backup).toMatch(/settings\.json\.bak-\d{8}T\d{6}Z$/);
    expect(r.stdout).toBe(`wrote apiKeyHelper to ${userSettings()} (previous version kept as ${backup})\n`);
    expect(fs.readFileSync(backup!, 'utf8')).toBe(before);
    expect(JSON.parse(fs.readFileSync(userSettings(), 'utf8'))).toEqual({
      model: 'opus',
      permissions: { allow: ['Bash(ls:*)'] },
      env: { FOO: 'bar', CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '3600000' },
      apiKeyHelper: BIN,
    });
    expect(fs.statSync(userSettings()).mode & 0o777).toBe(0o600);
  });

  it('warns when the profile is not configured yet, and still writes the wiring', async () => {
    sb = makeSandbox();
    const r = await runKeybroker(['init', '--profile', 'later'], sb);
    expect(r.stderr).toBe(
      'keybroker: warning: profile "later" is not defined in the keybroker config yet; run keybroker doctor once it is\n',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(userSettings(), 'utf8')).env.CLAUDE_CODE_API_KEY_HELPER_TTL_MS).toBe(
      '300000',
    );
  });

  it('creates the file when there is none, with --profile in the helper and the profile ttlMs as TTL', async () => {
    sb = makeSandbox();
    sb.writeConfig({ profiles: { work: { ttlMs: 900000, source: { type: 'keychain', service: 'llm' } } } });
    const r = await runKeybroker(['init', '--profile', 'work'], sb);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`wrote apiKeyHelper to ${userSettings()}\n`);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(userSettings(), 'utf8')).toBe(
      `${JSON.stringify({ apiKeyHelper: `${BIN} --profile work`, env: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '900000' } }, null, 2)}\n`,
    );
    expect(backups(userSettings())).toEqual([]);
  });

  it('--print shows the result without writing; --gateway also sets ANTHROPIC_BASE_URL', async () => {
    sb = makeSandbox();
    const r = await runKeybroker(
      ['init', '--print', '--ttl', '60000', '--gateway', 'https://llm.example.com'],
      sb,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `${JSON.stringify(
        {
          apiKeyHelper: BIN,
          env: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '60000', ANTHROPIC_BASE_URL: 'https://llm.example.com' },
        },
        null,
        2,
      )}\n`,
    );
    expect(fs.existsSync(userSettings())).toBe(false);
  });

  it('refuses to overwrite a settings file that is not valid JSON (exit 2)', async () => {
    sb = makeSandbox();
    fs.mkdirSync(path.dirname(userSettings()), { recursive: true });
    fs.writeFileSync(userSettings(), '{ "model": "opus", }\n');
    const r = await runKeybroker(['init'], sb);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: Claude Code settings ${userSettings()}: not valid JSON (fix or move the file first; keybroker never overwrites a file it cannot read; see docs/troubleshooting.md#err_init_settings_invalid)\n`,
    );
    expect(r.code).toBe(2);
    expect(fs.readFileSync(userSettings(), 'utf8')).toBe('{ "model": "opus", }\n');
    expect(backups(userSettings())).toEqual([]);
  });

  it('--scope project writes .claude/settings.json in the working directory', async () => {
    sb = makeSandbox();
    const project = path.join(sb.dir, 'repo');
    fs.mkdirSync(project);
    const r = await runKeybroker(['init', '--scope', 'project', '--ttl', '300000'], sb, { cwd: project });
    const file = path.join(project, '.claude', 'settings.json');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`wrote apiKeyHelper to ${file}\n`);
    expect(r.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).apiKeyHelper).toBe(BIN);
    expect(fs.existsSync(userSettings())).toBe(false);
  });

  it('--scope managed writes the managed settings file (here moved by KEYBROKER_CLAUDE_MANAGED_SETTINGS)', async () => {
    sb = makeSandbox();
    const managed = path.join(sb.dir, 'etc', 'claude-code', 'managed-settings.json');
    fs.mkdirSync(path.dirname(managed), { recursive: true });
    fs.writeFileSync(managed, '{"permissions":{"deny":["WebFetch"]}}', { mode: 0o644 });
    const r = await runKeybroker(['init', '--scope', 'managed', '--ttl', '300000', '--profile', 'corp'], sb, {
      env: { KEYBROKER_CLAUDE_MANAGED_SETTINGS: managed },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^wrote apiKeyHelper to .*managed-settings\.json \(previous version kept as .*\)\n$/,
    );
    expect(JSON.parse(fs.readFileSync(managed, 'utf8'))).toEqual({
      permissions: { deny: ['WebFetch'] },
      apiKeyHelper: `${BIN} --profile corp`,
      env: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '300000' },
    });
    // Everyone must be able to read the managed file.
    expect(fs.statSync(managed).mode & 0o777).toBe(0o644);
  });

  it('rejects a --ttl that is not a positive whole number (exit 2)', async () => {
    sb = makeSandbox();
    const r = await runKeybroker(['init', '--ttl', '5m'], sb);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'keybroker: usage: --ttl 5m: not a positive whole number of milliseconds (e.g. --ttl 3600000 for one hour; see docs/troubleshooting.md#err_usage)\n',
    );
    expect(r.code).toBe(2);
  });
  it('says what to do when the settings file cannot be written (exit 2)', async () => {
    sb = makeSandbox();
    // ~/.claude is a file, so nothing can be created under it.
    fs.writeFileSync(path.join(sb.home, '.claude'), 'not a directory');
    const r = await runKeybroker(['init', '--ttl', '300000'], sb);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: Claude Code settings ${userSettings()}: cannot write it (EEXIST) (check the permissions of the file and its directory, or use --print and write it yourself; see docs/troubleshooting.md#err_init_write)\n`,
    );
    expect(r.code).toBe(2);
  });
});
