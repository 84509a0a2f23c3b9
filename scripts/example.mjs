#!/usr/bin/env node
// `npm start`: prints a token minted from the bundled example profile (examples/dev-jwt.json).
// Creating the development signing key (0600, in the user's config dir) is this example's
// explicit opt-in; no other path ever creates a key on its own.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'dist', 'keybroker');
const config = path.join(root, 'examples', 'dev-jwt.json');
const configHome = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
const key = path.join(configHome, 'keybroker', 'example-dev-key.pem');

if (!fs.existsSync(key)) {
  const made = spawnSync(process.execPath, [bin, 'keygen', '--algorithm', 'ES256', '--out', key], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (made.status !== 0) process.exit(made.status ?? 1);
}
const run = spawnSync(process.execPath, [bin, '--config', config], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
process.exit(run.status ?? 1);
