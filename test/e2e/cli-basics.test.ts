import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeJwtKey } from '../helpers/jwt-profile.js';
import { BIN, makeSandbox, ROOT, runKeybroker, runShell, type Sandbox, shq } from '../helpers/run.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(() => sb.cleanup());

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

describe('the command line', () => {
  it('--version names the version and the commit it was built from', async () => {
    const r = await runKeybroker(['--version'], sb);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      new RegExp(`^${pkg.version.replace(/\./g, '\\.')} \\(([0-9a-f]{12}(-dirty)?|unknown)\\)\\n$`),
    );
    if (!process.env.KEYBROKER_BIN) {
      const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
        cwd: ROOT,
        encoding: 'utf8',
      }).trim();
      expect(r.stdout).toContain(head);
    }
  });

  it.each([
    ['token'],
    ['status'],
    ['doctor'],
    ['cache', 'clear'],
    ['jwks'],
    ['keygen'],
    ['keychain', 'set'],
    ['init'],
    ['config', 'show'],
  ])('%s --help prints usage and exits 0', async (...cmd) => {
    const r = await runKeybroker([...cmd, '--help'], sb);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`keybroker ${cmd[0]}`);
    expect(r.stdout).toContain('--profile');
  });

  it('an unknown command or flag is a usage error (exit 2) with one line and nothing on stdout', async () => {
    const a = await runKeybroker(['frobnicate'], sb);
    expect(a.code).toBe(2);
    expect(a.stdout).toBe('');
    expect(a.stderr).toBe(
      'keybroker: usage: unknown command frobnicate (run keybroker --help for the commands)\n',
    );
    const b = await runKeybroker(['--bogus'], sb);
    expect(b.code).toBe(2);
    expect(b.stderr).toBe('keybroker: usage: Unknown argument: bogus (run keybroker --help)\n');
  });

  it('a mistyped command gets a suggestion (exit 2)', async () => {
    const r = await runKeybroker(['stauts'], sb);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'keybroker: usage: unknown command stauts (did you mean status?)\n',
    });
  });

  it('a command without its subcommand gets a one-line usage error (exit 2)', async () => {
    const r = await runKeybroker(['cache'], sb);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'keybroker: usage: keybroker cache needs a subcommand (run keybroker cache --help)\n',
    });
  });

  it('completion prints a bash completion script', async () => {
    const r = await runKeybroker(['completion'], sb);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('_keybroker_yargs_completions');
  });

  it("completion bash|zsh prints that shell's script whatever $SHELL says; --help exits 0; another shell is a usage error", async () => {
    const zsh = await runKeybroker(['completion', 'zsh'], sb, { env: { SHELL: '/bin/bash' } });
    expect({ code: zsh.code, stderr: zsh.stderr }).toEqual({ code: 0, stderr: '' });
    expect(zsh.stdout.split('\n')[0]).toBe('#compdef keybroker');
    expect(zsh.stdout).toContain('compdef _keybroker_yargs_completions keybroker');
    expect(zsh.stdout).not.toContain('COMPREPLY');
    const bash = await runKeybroker(['completion', 'bash'], sb, { env: { SHELL: '/bin/zsh' } });
    expect({ code: bash.code, stderr: bash.stderr }).toEqual({ code: 0, stderr: '' });
    expect(bash.stdout.split('\n')[0]).toBe('###-begin-keybroker-completions-###');
    expect(bash.stdout).toContain(
      'complete -o bashdefault -o default -F _keybroker_yargs_completions keybroker',
    );
    const help = await runKeybroker(['completion', '--help'], sb);
    expect({ code: help.code, stderr: help.stderr }).toEqual({ code: 0, stderr: '' });
    expect(help.stdout.split('\n')[0]).toBe('keybroker completion [bash|zsh]');
    const fish = await runKeybroker(['completion', 'fish'], sb);
    expect(fish).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'keybroker: usage: keybroker completion [bash|zsh] (run keybroker completion --help)\n',
    });
  });

  it('--refresh, --no-cache and --json are shown on the token path only, never as --cache [default: true]', async () => {
    const top = await runKeybroker(['--help'], sb);
    expect(top.code).toBe(0);
    const options = top.stdout.slice(
      top.stdout.indexOf('Options:'),
      top.stdout.indexOf('keybroker [token] also'),
    );
    expect(options).toContain('--profile');
    expect(options).not.toMatch(/--refresh|--cache|--no-cache|--json/);
    expect(top.stdout).toContain(
      'keybroker [token] also takes --refresh, --no-cache and --json (see keybroker token --help)',
    );
    const token = await runKeybroker(['token', '--help'], sb);
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/^ +--refresh +skip the cached entry and replace it +\[boolean\]$/m);
    expect(token.stdout).toMatch(/^ +--no-cache +neither read nor write the cache +\[boolean\]$/m);
    expect(token.stdout).toMatch(/^ +--json +print one JSON object/m);
    expect(token.stdout).not.toContain('--cache ');
    expect(token.stdout).not.toContain('[default: true]');
  });

  it('a flag another command does not take is named as typed: doctor --no-cache', async () => {
    const r = await runKeybroker(['doctor', '--no-cache'], sb);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'keybroker: usage: Unknown argument: no-cache (run keybroker --help)\n',
    });
  });

  it('status --debug prints a timed trace on stderr, as the token path does', async () => {
    const key = writeJwtKey(sb);
    sb.writeConfig({ profiles: { default: { source: { type: 'jwt', signingKey: { file: key } } } } });
    const r = await runKeybroker(['status', '--debug'], sb);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('profile default (selected)');
    expect(r.stderr.split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(`^keybroker: debug \\+ *\\d+\\.\\dms config loaded: user ${sb.configPath}$`),
      ),
      expect.stringMatching(
        /^keybroker: debug \+ *\d+\.\dms profile default: jwt source, ttl 300000 ms, cache file: no entry$/,
      ),
      '',
    ]);
    expect((await runKeybroker(['status'], sb)).stderr).toBe('');
  });

  it.skipIf(Boolean(process.env.KEYBROKER_BIN))(
    'exit 1: an install missing its second stage says it is broken, in one line',
    async () => {
      const lone = path.join(sb.dir, 'lone');
      fs.mkdirSync(lone);
      fs.copyFileSync(BIN, path.join(lone, 'keybroker'));
      fs.copyFileSync(path.join(path.dirname(BIN), 'package.json'), path.join(lone, 'package.json'));
      fs.chmodSync(path.join(lone, 'keybroker'), 0o755);
      const r = await runShell(`${shq(path.join(lone, 'keybroker'))} --profile nosuch`, sb);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `keybroker: internal error: cannot load the second stage next to ${path.join(lone, 'keybroker')}: ERR_MODULE_NOT_FOUND (reinstall keybroker; if it persists, report it with the output of keybroker --version)\n`,
      );
    },
  );
});
