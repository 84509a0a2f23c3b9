/** `keybroker completion`: the bash script really completes in bash; the zsh script's protocol works. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, makeSandbox, runKeybroker, runShell, type Sandbox } from '../helpers/run.js';

let sb: Sandbox;
afterEach(() => sb?.cleanup());

/** A sandbox whose PATH has `keybroker` (the scripts call it by name). */
function sandboxWithKeybrokerOnPath(extra: Record<string, string> = {}): Sandbox {
  sb = makeSandbox(extra);
  const bin = path.join(sb.dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(BIN, path.join(bin, 'keybroker'));
  sb.env.PATH = `${bin}:${sb.env.PATH}`;
  return sb;
}

async function bashComplete(words: string[]): Promise<string[]> {
  const script = [
    'source <(keybroker completion)',
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${words.length - 1}`,
    '_keybroker_yargs_completions',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash array expansion
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('; ');
  const r = await runShell(`bash -c '${script.replace(/'/g, `'\\''`)}'`, sb);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('keybroker completion', () => {
  it('bash: completes commands and each command’s flags', async () => {
    sandboxWithKeybrokerOnPath({ SHELL: '/bin/bash' });
    expect(await bashComplete(['keybroker', 'd'])).toEqual(['doctor']);
    expect(await bashComplete(['keybroker', 'doctor', '--p'])).toEqual(['--profile', '--probe']);
    expect(await bashComplete(['keybroker', 'init', '--sc'])).toEqual(['--scope']);
    const all = await bashComplete(['keybroker', '']);
    expect(all).toEqual(
      expect.arrayContaining([
        'token',
        'status',
        'doctor',
        'cache',
        'jwks',
        'keygen',
        'keychain',
        'init',
        'config',
      ]),
    );
    expect(all).not.toContain('$0');
  });

  it('zsh: prints a compdef script, and completions with descriptions', async () => {
    sandboxWithKeybrokerOnPath({ SHELL: '/bin/zsh' });
    const script = await runKeybroker(['completion'], sb);
    expect(script.code).toBe(0);
    expect(script.stdout.split('\n')[0]).toBe('#compdef keybroker');
    expect(script.stdout).toContain('compdef _keybroker_yargs_completions keybroker');
    const r = await runKeybroker(['--get-yargs-completions', 'keybroker', ''], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines).toContain('doctor:check the config, the source, the cache and the Claude Code wiring');
    expect(lines).toContain("init:write keybroker into Claude Code's settings as apiKeyHelper");
    expect(lines.some((l) => l.startsWith('$0'))).toBe(false);
  });
});
