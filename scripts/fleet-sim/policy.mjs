// Loads the cache policy that ships (src/cache/policy.ts) by bundling it with esbuild on the fly,
// so the fleet simulation decides exactly as keybroker does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Proposals, as edits of the shipped source, so the simulation can compare them with it.
 * `jittered-refresh`: each entry starts its refresh ahead at its own point inside the last
 * quarter (a fraction taken from the sub-second digits of fetchedAtMs) instead of at the
 * quarter's start: the fleet's early refreshes spread out and, with many sessions per laptop, a
 * stored secret is fetched close to once per TTL instead of at three quarters of it.
 */
export const VARIANTS = {
  'jittered-refresh': [
    [
      `    const life = Math.max(0, until - entry.fetchedAtMs);
    return { state: 'fresh', refreshAhead: nowMs >= until - life / 4, usableUntilMs: until };`,
      `    return { state: 'fresh', refreshAhead: nowMs >= nextRefreshMs(entry, p), usableUntilMs: until };`,
    ],
    [
      'return until - Math.max(0, until - entry.fetchedAtMs) / 4;',
      'return until - (Math.max(0, until - entry.fetchedAtMs) / 4) * ((entry.fetchedAtMs % 997) / 997);',
    ],
  ],
};

/** `file`: another policy module to try; `variant`: a proposal from VARIANTS; default what ships. */
export async function loadPolicy(file = path.join(root, 'src', 'cache', 'policy.ts'), variant = undefined) {
  let contents = fs.readFileSync(file, 'utf8');
  for (const [from, to] of variant ? (VARIANTS[variant] ?? []) : []) {
    if (!contents.includes(from)) throw new Error(`variant ${variant} no longer applies to ${file}`);
    contents = contents.replace(from, to);
  }
  if (variant && !VARIANTS[variant]) throw new Error(`unknown variant ${variant}`);
  const out = await esbuild.build({
    stdin: { contents, resolveDir: path.dirname(path.resolve(file)), sourcefile: file, loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    write: false,
    logLevel: 'silent',
  });
  const code = out.outputFiles[0].text;
  return import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
}
