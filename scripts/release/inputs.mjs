/**
 * Release inputs from npm, fetched with `npm pack NAME@VERSION` into an ignored cache folder
 * and checked against pinned integrity (pkg.config.json for the Node runtimes,
 * package-lock.json for the keyring addons). Nothing is installed into the project: each Node
 * package has a `node` bin that would shadow node in npm scripts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function integrityOf(file) {
  return `sha512-${createHash('sha512').update(fs.readFileSync(file)).digest('base64')}`;
}

function tarballName(name, version) {
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
}

/** Returns the path of NAME@VERSION's tarball in `dir`, packing it from npm when absent. */
export function npmPack({ name, version, integrity, dir, log }) {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, tarballName(name, version));
  if (!fs.existsSync(file) || integrityOf(file) !== integrity) {
    log(`npm pack ${name}@${version}`);
    execFileSync(
      'npm',
      ['pack', `${name}@${version}`, '--prefer-offline', '--silent', '--pack-destination', dir],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
  }
  const got = integrityOf(file);
  if (got !== integrity)
    throw new Error(`${name}@${version}: integrity ${got} does not match the pinned ${integrity}`);
  return file;
}

/** Extracts one member of a tarball to `out` (once; keyed by the tarball's integrity). */
export function extractMember(tgz, member, out) {
  const stamp = `${out}.from`;
  const want = `${path.basename(tgz)} ${integrityOf(tgz)}`;
  if (fs.existsSync(out) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) return out;
  const tmp = fs.mkdtempSync(path.join(path.dirname(out), '.x-'));
  try {
    execFileSync('tar', ['-xzf', tgz, '-C', tmp, member]);
    fs.renameSync(path.join(tmp, member), out);
    fs.writeFileSync(stamp, want);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}

/** Version and integrity of a package as package-lock.json pins it. */
export function lockedPackage(root, name) {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
  const entry = lock.packages?.[`node_modules/${name}`];
  if (!entry?.version || !entry.integrity) throw new Error(`${name} is not pinned in package-lock.json`);
  return { name, version: entry.version, integrity: entry.integrity };
}
