/** Hints name `keybroker explain ERR_X`; a managed docsUrl adds the company's page. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closest, editDistance, orList } from '../../src/cli/suggest.js';
import { managedDocsUrl } from '../../src/config/docs-url.js';
import { configError, formatErrorLine, seeDocs, withDocsUrl } from '../../src/errors.js';
import { parseTroubleshooting, renderEntry } from '../../src/explain/entries.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function managedFile(content: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-docsurl-'));
  fs.chmodSync(dir, 0o700);
  dirs.push(dir);
  const file = path.join(dir, 'managed.json');
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
  return file;
}

function inputs(file: string) {
  return {
    env: { KEYBROKER_MANAGED_CONFIG: file },
    platform: process.platform,
    homeDir: os.homedir(),
    userName: 'u',
    hostName: 'h',
  };
}

describe('error hints', () => {
  it('name the explain command', () => {
    expect(seeDocs('ERR_VAULT_DENIED')).toBe('run keybroker explain ERR_VAULT_DENIED');
    const e = configError('ERR_CONFIG_JSON', 'config /x: invalid JSON', {
      hint: `fix it; ${seeDocs('ERR_CONFIG_JSON')}`,
    });
    expect(formatErrorLine(e)).toBe(
      'keybroker: config /x: invalid JSON (fix it; run keybroker explain ERR_CONFIG_JSON)',
    );
  });

  it('also point at <docsUrl>#err_x when the managed config sets docsUrl', () => {
    const e = configError('ERR_CONFIG_JSON', 'config /x: invalid JSON', {
      hint: `fix it; ${seeDocs('ERR_CONFIG_JSON')}`,
    });
    expect(formatErrorLine(e, 'https://wiki.corp.example/keybroker')).toBe(
      'keybroker: config /x: invalid JSON (fix it; run keybroker explain ERR_CONFIG_JSON or see https://wiki.corp.example/keybroker#err_config_json)',
    );
    // applying it twice (a hint printed through two layers) adds nothing more
    const once = withDocsUrl('run keybroker explain ERR_X', 'https://d.example/p#old');
    expect(once).toBe('run keybroker explain ERR_X or see https://d.example/p#err_x');
    expect(withDocsUrl(once, 'https://d.example/p')).toBe(once);
  });

  it('docsUrl is read from the managed layer only, as an http(s) URL', () => {
    expect(managedDocsUrl(inputs(managedFile({ docsUrl: 'https://wiki.corp.example/kb' })))).toBe(
      'https://wiki.corp.example/kb',
    );
    expect(managedDocsUrl(inputs(managedFile({ docsUrl: 'javascript:alert(1)' })))).toBeUndefined();
    expect(managedDocsUrl(inputs(managedFile({ docsUrl: 42 })))).toBeUndefined();
    expect(managedDocsUrl(inputs(managedFile('{ "docsUrl": "https://x.example", }')))).toBeUndefined();
    expect(managedDocsUrl(inputs('/nonexistent/managed.json'))).toBeUndefined();
  });
});

describe('troubleshooting entries', () => {
  it('parses entries per heading code, inside their section, ignoring fenced blocks', () => {
    const md = [
      '# T',
      '## Vault',
      '### ERR_A',
      'Text of A.',
      '```',
      '### ERR_NOT_A_HEADING',
      '```',
      '### `ERR_B` and ERR_C',
      'Shared.',
      '## Other',
      'intro',
    ].join('\n');
    const entries = parseTroubleshooting(md);
    expect([...entries.keys()]).toEqual(['ERR_A', 'ERR_B', 'ERR_C']);
    expect(entries.get('ERR_A')).toEqual({
      code: 'ERR_A',
      section: 'Vault',
      body: 'Text of A.\n```\n### ERR_NOT_A_HEADING\n```',
    });
    expect(renderEntry(entries.get('ERR_C')!, 'https://d.example/kb')).toBe(
      'ERR_C (Vault)\n\nShared.\n\nMore: https://d.example/kb#err_c\n',
    );
  });
});

describe('suggestions', () => {
  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('stauts', 'status')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });
  it('suggests only the nearest candidates', () => {
    expect(closest('stauts', ['status', 'doctor', 'token', 'cache'])).toEqual(['status']);
    expect(closest('xyz', ['status', 'doctor'])).toEqual([]);
    expect(orList(['a', 'b', 'c'])).toBe('a, b or c');
  });
});
