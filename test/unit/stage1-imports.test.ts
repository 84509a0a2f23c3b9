/**
 * The first stage (src/entry.ts) answers every cache hit, so what it loads is what a hit costs.
 * This walks its static imports (type-only and dynamic imports cost nothing at start) and fails
 * when a module joins them that is not on the list below: add to the list only what is as
 * small as these, and measure (`npm run bench -- --only hit`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../../src');

/** Every module stage 1 may load, relative to src/, and the node: builtins among them. */
const ALLOWED = [
  'broker/hit.ts',
  'cache/entry.ts',
  'cache/file-store.ts',
  'cache/policy.ts',
  'cli/token-args.ts',
  'config/config-digest.ts',
  'config/credential-identity.ts',
  'config/inputs.ts',
  'config/json-position.ts',
  'config/load.ts',
  'config/templates.ts',
  'config/types.ts',
  'entry.ts',
  'errors.ts',
  'output/audit-record.ts',
  'output/audit.ts',
  'output/redact.ts',
  'output/token-output.ts',
  'platform/paths.ts',
  'platform/node-debug.ts',
  'platform/process-info.ts',
  'platform/safe-fs.ts',
  'platform/sea.ts',
  'platform/sha256.ts',
  'platform/text.ts',
  'sources/oidc-login.ts',
  'platform/win-acl.ts',
  'node:crypto',
  'node:fs',
  'node:os',
  'node:path',
  'node:url',
];

/** `import … from 'x'` and `export … from 'x'`, but not `import type` / `export type`. */
const STATIC_IMPORT = /^(?:import|export)\s+(?!type[\s{])(?:[^;'"]*?\sfrom\s+)?'([^']+)';/gm;

function staticImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(STATIC_IMPORT)].map((m) => m[1]!);
}

/** Every module reached from `entry` (relative to src/, or a package name) → the modules it imports. */
function closure(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string): string => {
    const rel = path.relative(SRC, file);
    if (seen.has(rel)) return rel;
    const deps: string[] = [];
    seen.set(rel, deps);
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.'))
        deps.push(visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'))));
      else {
        deps.push(spec);
        if (!seen.has(spec)) seen.set(spec, []);
      }
    }
    return rel;
  };
  visit(entry);
  return seen;
}

describe('stage 1 imports', () => {
  it('loads only the allowed modules', () => {
    const loaded = closure(path.join(SRC, 'entry.ts'));
    const extra = [...loaded.keys()].filter((m) => !ALLOWED.includes(m));
    const importers = extra.map(
      (m) =>
        `${m} (imported by ${[...loaded]
          .filter(([, deps]) => deps.some((d) => d.endsWith(path.basename(m, '.ts') + '.js') || d === m))
          .map(([f]) => f)
          .join(', ')})`,
    );
    expect(importers).toEqual([]);
  });

  it('the walk sees what it must: a module that imports yargs would be caught', () => {
    const loaded = closure(path.join(SRC, 'main.ts'));
    expect([...loaded.keys()].filter((m) => !ALLOWED.includes(m)).length).toBeGreaterThan(0);
    expect(staticImports(path.join(SRC, 'entry.ts'))).toContain('./broker/hit.js');
  });
});
