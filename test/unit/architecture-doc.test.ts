/**
 * docs/architecture.md names files a newcomer will open: each must exist, and the doc links
 * nothing outside the repository.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const doc = fs.readFileSync(path.join(root, 'docs', 'architecture.md'), 'utf8');

/** `src/…`, `test/…`, `scripts/…`, `docs/…` paths in backticks; <placeholders> are patterns. */
function namedPaths(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/`((?:src|test|scripts|docs)\/[^`\s]*)`/g)) out.add(m[1]!);
  return [...out];
}

describe('docs/architecture.md', () => {
  it('names only paths that exist', () => {
    const paths = namedPaths(doc);
    expect(paths.length).toBeGreaterThan(20);
    const missing = paths.filter((p) => {
      if (p.includes('<')) {
        // A pattern such as src/sources/<type>.ts: its directory must exist.
        return !fs.existsSync(path.join(root, p.slice(0, p.indexOf('<'))));
      }
      return !fs.existsSync(path.join(root, p));
    });
    expect(missing).toEqual([]);
  });

  it('names each file of the layout block that exists under its directory', () => {
    const block = doc.slice(
      doc.indexOf('```\nsrc/main.ts'),
      doc.indexOf('```', doc.indexOf('```\nsrc/main.ts') + 3),
    );
    let dir = 'src';
    const missing: string[] = [];
    for (const line of block.split('\n')) {
      const head = /^(src\/[^\s]*)/.exec(line)?.[1];
      if (head) dir = head.endsWith('/') ? head.slice(0, -1) : path.dirname(head);
      for (const m of line.matchAll(/(?<![-<>\w])([a-z0-9-]+\.ts)\b/g)) {
        const name = m[1]!;
        if (!fs.existsSync(path.join(root, dir, name)) && !fs.existsSync(path.join(root, 'src', name)))
          missing.push(`${dir}/${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('links nothing outside the repository', () => {
    expect(doc).not.toMatch(/\]\(\.\.\//);
    expect(doc).not.toMatch(/`\.\.\//);
  });
});
