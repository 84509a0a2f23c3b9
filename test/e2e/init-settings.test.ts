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
      `keybroker: Claude Code settings ${userSettings()}: not valid JSON (fix or move the file first; keybroker never overwrites a file it cannot read; run keybroker explain ERR_INIT_SETTINGS_INVALID)\n`,
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
    // What doctor would warn about is said at once (issue 16: init must not write it silently).
    expect(r.stderr).toBe(
      `keybroker: warning: the project file ${file} now sets apiKeyHelper; it runs without a trust prompt in claude -p mode, for everyone who clones this repository (use --scope user or --scope managed unless that is what you want)\n`,
    );
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
      'keybroker: usage: --ttl 5m: not a positive whole number of milliseconds (e.g. --ttl 3600000 for one hour; run keybroker explain ERR_USAGE)\n',
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
      `keybroker: Claude Code settings ${userSettings()}: cannot write it (ENOTDIR) (check the permissions of the file and its directory, or use --print and write it yourself; run keybroker explain ERR_INIT_WRITE)\n`,
    );
    expect(r.code).toBe(2);
  });
});

const settingsJson = (o: unknown) => `${JSON.stringify(o, null, 2)}\n`;

describe('keybroker init --gateway --mode (issue 15)', () => {
  const cases: [string, string[], Record<string, string>][] = [
    ['messages', ['--gateway', 'https://llm.example.com'], { ANTHROPIC_BASE_URL: 'https://llm.example.com' }],
    [
      'messages (named)',
      ['--gateway', 'https://llm.example.com/anthropic', '--mode', 'messages'],
      { ANTHROPIC_BASE_URL: 'https://llm.example.com/anthropic' },
    ],
    [
      'bedrock',
      ['--gateway', 'https://llm.example.com/bedrock', '--mode', 'bedrock'],
      {
        ANTHROPIC_BEDROCK_BASE_URL: 'https://llm.example.com/bedrock',
        CLAUDE_CODE_USE_BEDROCK: '1',
        CLAUDE_CODE_SKIP_BEDROCK_AUTH: '1',
      },
    ],
    [
      'vertex',
      [
        '--gateway',
        'https://llm.example.com/vertex_ai/v1',
        '--mode',
        'vertex',
        '--vertex-project',
        'acme-llm',
        '--vertex-region',
        'us-east5',
      ],
      {
        ANTHROPIC_VERTEX_BASE_URL: 'https://llm.example.com/vertex_ai/v1',
        CLAUDE_CODE_USE_VERTEX: '1',
        CLAUDE_CODE_SKIP_VERTEX_AUTH: '1',
        ANTHROPIC_VERTEX_PROJECT_ID: 'acme-llm',
        CLOUD_ML_REGION: 'us-east5',
      },
    ],
  ];
  for (const [name, flags, keys] of cases) {
    it(`${name}: writes exactly the mode's env keys and keeps every other key`, async () => {
      sb = makeSandbox();
      fs.mkdirSync(path.dirname(userSettings()), { recursive: true });
      fs.writeFileSync(userSettings(), settingsJson({ model: 'opus', env: { FOO: 'bar' } }), { mode: 0o600 });
      const r = await runKeybroker(['init', '--ttl', '600000', ...flags], sb);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(fs.readFileSync(userSettings(), 'utf8')).toBe(
        settingsJson({
          model: 'opus',
          env: { FOO: 'bar', CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '600000', ...keys },
          apiKeyHelper: BIN,
        }),
      );
    });
  }

  it('switching modes removes the previous mode’s keys (Claude Code would stay in Bedrock mode)', async () => {
    sb = makeSandbox();
    const first = await runKeybroker(
      ['init', '--ttl', '600000', '--gateway', 'https://gw.example/bedrock', '--mode', 'bedrock'],
      sb,
    );
    expect(first.code).toBe(0);
    const r = await runKeybroker(['init', '--ttl', '600000', '--gateway', 'https://gw.example'], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(userSettings(), 'utf8')).env).toEqual({
      CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '600000',
      ANTHROPIC_BASE_URL: 'https://gw.example',
    });
  });

  it('warns when the file also sets ANTHROPIC_AUTH_TOKEN, which would replace the Bearer token', async () => {
    sb = makeSandbox();
    fs.mkdirSync(path.dirname(userSettings()), { recursive: true });
    fs.writeFileSync(userSettings(), settingsJson({ env: { ANTHROPIC_AUTH_TOKEN: 'sk-static' } }), {
      mode: 0o600,
    });
    const r = await runKeybroker(
      ['init', '--ttl', '600000', '--gateway', 'https://gw.example/bedrock', '--mode', 'bedrock'],
      sb,
    );
    expect(r.stderr).toBe(
      `keybroker: warning: ${userSettings()} also sets ANTHROPIC_AUTH_TOKEN; in Bedrock pass-through mode Claude Code must send keybroker's token as Authorization: Bearer: remove ANTHROPIC_AUTH_TOKEN\n`,
    );
    expect(r.code).toBe(0);
  });

  const usageCases: [string, string[], string][] = [
    [
      '--mode without --gateway',
      ['--mode', 'bedrock'],
      'keybroker: usage: --mode needs --gateway URL (e.g. --gateway https://llm.example.com --mode bedrock; run keybroker explain ERR_USAGE)\n',
    ],
    [
      '--mode vertex without --vertex-project',
      ['--gateway', 'https://gw.example/vertex_ai/v1', '--mode', 'vertex', '--vertex-region', 'us-east5'],
      'keybroker: usage: --vertex-project is missing: --mode vertex puts it in every request path (e.g. --vertex-project my-gcp-project --vertex-region us-east5; run keybroker explain ERR_USAGE)\n',
    ],
    [
      '--vertex-region with --mode bedrock',
      ['--gateway', 'https://gw.example', '--mode', 'bedrock', '--vertex-region', 'us-east5'],
      'keybroker: usage: --vertex-project and --vertex-region belong to --mode vertex, not bedrock (drop them, or use --mode vertex; run keybroker explain ERR_USAGE)\n',
    ],
  ];
  for (const [name, flags, stderr] of usageCases) {
    it(`refuses ${name} (exit 2, nothing written)`, async () => {
      sb = makeSandbox();
      const r = await runKeybroker(['init', ...flags], sb);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(stderr);
      expect(r.code).toBe(2);
      expect(fs.existsSync(userSettings())).toBe(false);
    });
  }
});

describe('keybroker init is idempotent and safe (issues 11 and 16)', () => {
  it('running the same init again changes nothing and leaves no second backup', async () => {
    sb = makeSandbox();
    fs.mkdirSync(path.dirname(userSettings()), { recursive: true });
    fs.writeFileSync(userSettings(), settingsJson({ model: 'opus' }), { mode: 0o600 });
    const args = ['init', '--ttl', '3600000', '--gateway', 'https://gw.example/bedrock', '--mode', 'bedrock'];
    const first = await runKeybroker(args, sb);
    expect(first.code).toBe(0);
    expect(backups(userSettings())).toHaveLength(1);
    const written = fs.readFileSync(userSettings(), 'utf8');
    const inode = fs.statSync(userSettings()).ino;
    const again = await runKeybroker(args, sb);
    expect(again.stderr).toBe('');
    expect(again.stdout).toBe(`${userSettings()} already has these settings; nothing written\n`);
    expect(again.code).toBe(0);
    expect(backups(userSettings())).toHaveLength(1);
    expect(fs.readFileSync(userSettings(), 'utf8')).toBe(written);
    expect(fs.statSync(userSettings()).ino).toBe(inode);
  });

  it('finding 6: --scope project refuses a symlinked settings.json (exit 6), the target untouched, no backup', async () => {
    sb = makeSandbox();
    const victim = path.join(sb.home, '.docker', 'config.json');
    fs.mkdirSync(path.dirname(victim), { recursive: true });
    const victimText = '{"auths":{"registry.example":{"auth":"c2VjcmV0"}}}';
    fs.writeFileSync(victim, victimText, { mode: 0o600 });
    const repo = path.join(sb.home, 'src', 'repo');
    fs.mkdirSync(path.join(repo, '.claude'), { recursive: true });
    const link = path.join(repo, '.claude', 'settings.json');
    fs.symlinkSync('../../../.docker/config.json', link);
    expect(fs.readFileSync(link, 'utf8')).toBe(victimText);
    const r = await runKeybroker(['init', '--scope', 'project', '--ttl', '300000'], sb, { cwd: repo });
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: settings file ${link}: is a symbolic link (a repository can plant a link there to make init rewrite another file; replace the link with a plain file, or use --scope user; run keybroker explain ERR_UNSAFE_SYMLINK)\n`,
    );
    expect(r.code).toBe(6);
    expect(fs.readFileSync(victim, 'utf8')).toBe(victimText);
    expect(fs.readdirSync(path.join(repo, '.claude'))).toEqual(['settings.json']);
    expect(fs.readdirSync(path.dirname(victim))).toEqual(['config.json']);
  });

  it('finding 6: --scope project refuses a symlinked .claude directory (exit 6)', async () => {
    sb = makeSandbox();
    const elsewhere = path.join(sb.home, '.docker');
    fs.mkdirSync(elsewhere, { recursive: true });
    fs.writeFileSync(path.join(elsewhere, 'settings.json'), '{}', { mode: 0o600 });
    const repo = path.join(sb.home, 'src', 'repo');
    fs.mkdirSync(repo, { recursive: true });
    fs.symlinkSync(elsewhere, path.join(repo, '.claude'));
    const r = await runKeybroker(['init', '--scope', 'project', '--ttl', '300000'], sb, { cwd: repo });
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: settings directory ${path.join(repo, '.claude')}: is a symbolic link (a repository can plant a link there to make init rewrite another file; replace the link with a plain directory, or use --scope user; run keybroker explain ERR_UNSAFE_SYMLINK)\n`,
    );
    expect(r.code).toBe(6);
    expect(fs.readdirSync(elsewhere)).toEqual(['settings.json']);
    expect(fs.readFileSync(path.join(elsewhere, 'settings.json'), 'utf8')).toBe('{}');
  });

  it('a user’s own symlinked ~/.claude/settings.json is followed; the backup lies beside the real file, 0600', async () => {
    sb = makeSandbox();
    const real = path.join(sb.home, 'dotfiles', 'claude-settings.json');
    fs.mkdirSync(path.dirname(real), { recursive: true });
    fs.writeFileSync(real, settingsJson({ model: 'opus' }), { mode: 0o644 });
    fs.mkdirSync(path.dirname(userSettings()), { recursive: true });
    fs.symlinkSync(real, userSettings());
    const r = await runKeybroker(['init', '--ttl', '300000'], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [backup, ...more] = backups(real);
    expect(more).toEqual([]);
    expect(r.stdout).toBe(`wrote apiKeyHelper to ${userSettings()} (previous version kept as ${backup})\n`);
    expect(fs.lstatSync(userSettings()).isSymbolicLink()).toBe(true);
    expect(JSON.parse(fs.readFileSync(real, 'utf8')).apiKeyHelper).toBe(BIN);
    expect(fs.readFileSync(backup!, 'utf8')).toBe(settingsJson({ model: 'opus' }));
    expect(fs.statSync(backup!).mode & 0o777).toBe(0o600);
    expect(fs.statSync(real).mode & 0o777).toBe(0o644);
  });

  it('refuses a settings directory others can write (exit 6)', async () => {
    sb = makeSandbox();
    const repo = path.join(sb.dir, 'repo');
    fs.mkdirSync(path.join(repo, '.claude'), { recursive: true });
    fs.chmodSync(path.join(repo, '.claude'), 0o777);
    const r = await runKeybroker(['init', '--scope', 'project', '--ttl', '300000'], sb, { cwd: repo });
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: settings directory ${path.join(repo, '.claude')}: writable by others (mode 0777) (run chmod go-w '${path.join(repo, '.claude')}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
    );
    expect(r.code).toBe(6);
    expect(fs.readdirSync(path.join(repo, '.claude'))).toEqual([]);
  });

  it('finding 12c: an invalid --profile name is an error (exit 2), nothing written', async () => {
    sb = makeSandbox();
    const r = await runKeybroker(['init', '--profile', '../etc', '--ttl', '300000'], sb);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: profile "../etc" (from --profile): not a valid profile name (use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit; run keybroker explain ERR_CONFIG_PROFILE_NAME)\n`,
    );
    expect(r.code).toBe(2);
    expect(fs.existsSync(userSettings())).toBe(false);
  });
});
