/**
 * The lower layers import nothing from the layers above them: the cache (entries, stores, the
 * policy) knows nothing of the engine or the commands (it implements the sources' memo type,
 * src/sources/types.ts, and no more), the platform helpers nothing of either.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../../src');

/** Relative imports (static and dynamic, type-only included) of every module under `dir`. */
function importsUnder(dir: string): { from: string; to: string }[] {
  const out: { from: string; to: string }[] = [];
  for (const name of fs.readdirSync(path.join(SRC, dir), { recursive: true }) as string[]) {
    if (!name.endsWith('.ts')) continue;
    const file = path.join(SRC, dir, name);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\()\s*'(\.[^']+)'/g)) {
      const to = path.relative(SRC, path.resolve(path.dirname(file), m[1]!));
      out.push({ from: path.relative(SRC, file), to });
    }
  }
  return out;
}

describe('layering', () => {
  it.each([
    ['cache', ['broker/', 'cli/', 'doctor/']],
    ['platform', ['broker/', 'cache/', 'cli/', 'sources/', 'doctor/']],
  ])('src/%s imports nothing from %j', (dir, above) => {
    const found = importsUnder(dir as string);
    expect(found.length).toBeGreaterThan(0);
    expect(found.filter((i) => (above as string[]).some((a) => i.to.startsWith(a)))).toEqual([]);
  });
});
