import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
