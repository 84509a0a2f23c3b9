/**
 * Every `keybroker <command>` the docs show (fenced code blocks, inline code) names a command that exists
 * (issue 16: docs that match the product). The commands come from src/main.ts, the list the
 * "did you mean" suggestion uses.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMAND_NAMES } from '../../src/main.js';

const ROOT = path.resolve(__dirname, '../..');
const DOCS = [
  'README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The lines inside fenced code blocks (``` or ~~~) and inline code spans, with their line numbers. */
function codeLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((l, i) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(l);
    if (m) {
      if (fence === undefined) fence = m[1]![0]!;
      else if (m[1]![0] === fence) fence = undefined;
      return;
    }
    if (fence !== undefined) out.push({ line: i + 1, text: l });
    // Inline code spans in prose too: `keybroker init --scope managed`.
    else for (const span of l.matchAll(/`(keybroker [^`]*)`/g)) out.push({ line: i + 1, text: span[1]! });
  });
  return out;
}

/**
 * The word after each `keybroker` run as a command: at the start of the line or after a shell
 * separator, a prompt, sudo, env assignments or a quote (settings' "apiKeyHelper": "keybroker …").
 * Paths (/usr/bin/keybroker), file names (keybroker-linux-x64) and flags are not commands.
 */
function commandWords(line: string): string[] {
  const words: string[] = [];
  const re = /(?:^|[\s;|&($"'`])keybroker[ \t]+([A-Za-z][\w-]*)/g;
  for (const m of line.replace(/\s#\s.*$/, '').matchAll(re)) words.push(m[1]!);
  return words;
}

let shown = 0;

describe('docs show only commands that exist', () => {
  it('finds the command words it should, and not paths or flags', () => {
    expect(commandWords('$ keybroker doctor --probe')).toEqual(['doctor']);
    expect(commandWords('sudo keybroker init --scope managed && keybroker status')).toEqual([
      'init',
      'status',
    ]);
    expect(commandWords('"apiKeyHelper": "keybroker --profile work"')).toEqual([]);
    expect(commandWords('/usr/local/bin/keybroker cache clear')).toEqual([]);
    expect(commandWords('keybroker-linux-x64 jwks')).toEqual([]);
    expect(commandWords('keybroker jwks   # prints the keybroker public keys')).toEqual(['jwks']);
    expect(
      codeLines('a\n```sh\nkeybroker x\n```\nkeybroker y, `keybroker w`\n~~~\nkeybroker z\n~~~\n').map(
        (l) => l.text,
      ),
    ).toEqual(['keybroker x', 'keybroker w', 'keybroker z']);
  });

  it.each(DOCS)('%s', (file) => {
    const unknown: string[] = [];
    let seen = 0;
    for (const { line, text } of codeLines(fs.readFileSync(path.join(ROOT, file), 'utf8'))) {
      for (const word of commandWords(text)) {
        seen++;
        if (!COMMAND_NAMES.includes(word)) unknown.push(`${file}:${line}: keybroker ${word}`);
      }
    }
    expect(unknown).toEqual([]);
    shown += seen;
  });

  it('the docs do show commands (the parsing above finds them)', () => {
    expect(shown).toBeGreaterThan(30);
  });
});
