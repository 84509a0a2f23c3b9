/** Every error hint says `run keybroker explain ERR_X` (docs/troubleshooting.md#err_x): each entry must exist. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('docs/troubleshooting.md', () => {
  it('has an entry for every ERR_* code used in src/', () => {
    const codes = new Set<string>();
    for (const f of sources(path.join(root, 'src'))) {
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/'(ERR_[A-Z0-9_]+)'/g)) codes.add(m[1]!);
    }
    const doc = fs.readFileSync(path.join(root, 'docs', 'troubleshooting.md'), 'utf8');
    const anchors = new Set<string>();
    for (const m of doc.matchAll(/^#{2,4} .*?`?(ERR_[A-Z0-9_]+)`?/gm)) anchors.add(m[1]!.toLowerCase());
    for (const m of doc.matchAll(/<a (?:id|name)="(err_[a-z0-9_]+)"/g)) anchors.add(m[1]!);
    expect(codes.size).toBeGreaterThan(40);
    expect([...codes].filter((c) => !anchors.has(c.toLowerCase())).sort()).toEqual([]);
  });
});
