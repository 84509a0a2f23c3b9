// Loads the cache policy that ships (src/cache/policy.ts) by bundling it with esbuild on the fly,
// so the fleet simulation decides exactly as keybroker does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Proposals, as edits of the shipped source ([from, to] string pairs), so the simulation can
 * compare them with it. `jittered-refresh` (each entry's own refresh point inside the last
 * quarter) was measured here first and has since shipped in src/cache/policy.ts.
 */
export const VARIANTS = {};

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
