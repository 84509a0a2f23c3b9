/**
 * `keybroker explain ERR_X` (contract §4): the troubleshooting entry from inside the executable,
 * and every error hint naming it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseTroubleshooting } from '../../src/explain/entries.js';
import { makeSandbox, ROOT, runKeybroker, type Sandbox } from '../helpers/run.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(() => sb.cleanup());

const DOC = fs.readFileSync(path.join(ROOT, 'docs', 'troubleshooting.md'), 'utf8');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('keybroker explain', () => {
  it('prints the entry of a code as docs/troubleshooting.md has it, with its section', async () => {
    const r = await runKeybroker(['explain', 'ERR_VAULT_DENIED'], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const body = parseTroubleshooting(DOC).get('ERR_VAULT_DENIED')!.body;
    expect(body).toContain('Vault answered 403');
    expect(r.stdout).toBe(`ERR_VAULT_DENIED (Vault and vault-identity sources)\n\n${body}\n`);
  });

  it('takes the code in any case and without its ERR_ prefix', async () => {
    const exact = await runKeybroker(['explain', 'ERR_CONFIG_JSON'], sb);
    const loose = await runKeybroker(['explain', 'config_json'], sb);
    expect(exact.code).toBe(0);
    expect(loose.code).toBe(0);
    expect(loose.stdout).toBe(exact.stdout);
    expect(loose.stdout.startsWith('ERR_CONFIG_JSON (Configuration)\n\n')).toBe(true);
  });

  it('an unknown code is exit 2 with the close codes suggested', async () => {
    const r = await runKeybroker(['explain', 'ERR_VAULT_DENYED'], sb);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'keybroker: explain: no entry for ERR_VAULT_DENYED (did you mean ERR_VAULT_DENIED?)\n',
    );
  });

  it('an unknown code with nothing close points at the list', async () => {
    const r = await runKeybroker(['explain', 'ERR_QQQQQQQQ'], sb);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'keybroker: explain: no entry for ERR_QQQQQQQQ (keybroker explain --list prints every code)\n',
    );
  });

  it('no code is exit 2 saying how to use it', async () => {
    const r = await runKeybroker(['explain'], sb);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'keybroker: explain: no error code given (run keybroker explain ERR_X with the code an error line names; keybroker explain --list prints every code)\n',
    );
  });

  it('has an entry, built into the executable, for every ERR_ code used in src/', async () => {
    const codes = new Set<string>();
    for (const f of sourceFiles(path.join(ROOT, 'src'))) {
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/'(ERR_[A-Z0-9_]+)'/g)) codes.add(m[1]!);
    }
    expect(codes.size).toBeGreaterThan(40);
    const r = await runKeybroker(['explain', '--list'], sb);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const listed = new Set(
      r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.split('\t')[0]!),
    );
    expect([...codes].filter((c) => !listed.has(c)).sort()).toEqual([]);
    // and each listed entry has text to print
    for (const entry of parseTroubleshooting(DOC).values()) expect(entry.body.length).toBeGreaterThan(20);
  });

  it('an error line ends with the explain command for its code', async () => {
    const r = await runKeybroker(['--profile', 'nope'], sb);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `keybroker: profile "nope" (from --profile): not defined in no config file (looked for ${sb.env.KEYBROKER_MANAGED_CONFIG} and ${sb.configPath}) (no profiles are configured; run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE)\n`,
    );
    const code = /run keybroker explain (ERR_[A-Z_]+)\)$/.exec(r.stderr.trimEnd())![1]!;
    const explained = await runKeybroker(['explain', code], sb);
    expect(explained.code).toBe(0);
    expect(explained.stdout.startsWith(`${code} (Configuration)\n\n`)).toBe(true);
  });
});
