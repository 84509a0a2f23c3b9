/** The end-to-end tests need dist/keybroker: build it once if it is missing or older than src/. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  if (process.env.KEYBROKER_BIN) return;
  const root = path.resolve(import.meta.dirname, '..', '..');
  const bin = path.join(root, 'dist', 'keybroker');
  const built = fs.existsSync(bin) ? fs.statSync(bin).mtimeMs : 0;
  if (built < newestMtime(path.join(root, 'src'))) {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], {
      cwd: root,
      stdio: 'inherit',
    });
  }
}
