/**
 * Inside a release executable (a Node single executable application, built by
 * scripts/package.mjs with `__KEYBROKER_SEA__` defined as true), nothing exists on disk
 * beside the executable: the second stage and the native keyring addon travel as SEA
 * assets. This module loads them. Ordinary builds never reference it (the callers test
 * `__KEYBROKER_SEA__` first, so esbuild drops it).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertNotWritableByOthers, ensurePrivateDir, writeFileAtomic } from './safe-fs.js';

/** Asset names; scripts/package.mjs writes the same names into the SEA config. */
export const SEA_MAIN_ASSET = 'keybroker-main.cjs';
export const SEA_MAIN_CACHE_ASSET = 'keybroker-main.cache';

// node:sea, node:vm and node:module are required only when called: node:sea does not exist
// before Node 20.12, and a build that does not define __KEYBROKER_SEA__ may keep this module.
type Sea = typeof import('node:sea');
type Vm = typeof import('node:vm');
type ModuleApi = typeof import('node:module');

function rawAsset(sea: Sea, name: string): ArrayBuffer | undefined {
  try {
    return sea.getRawAsset(name) as ArrayBuffer;
  } catch {
    return undefined; // not embedded for this target
  }
}

/**
 * Compiles and runs the second stage (one CommonJS bundle) from the executable's assets,
 * with the V8 code cache made for this target when there is one. A rejected cache is
 * silent here (V8 just compiles), unlike SEA's own useCodeCache.
 */
export function loadSeaMain<T>(): T {
  const sea = require('node:sea') as Sea;
  const vm = require('node:vm') as Vm;
  const { wrap } = require('node:module') as ModuleApi;
  const source = sea.getAsset(SEA_MAIN_ASSET, 'utf8');
  const cache = rawAsset(sea, SEA_MAIN_CACHE_ASSET);
  const script = new vm.Script(wrap(source), {
    filename: SEA_MAIN_ASSET,
    ...(cache ? { cachedData: Buffer.from(cache) } : {}),
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const fn = script.runInThisContext() as (
    exports: unknown,
    req: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string,
  ) => void;
  // A SEA's argv[1] is its argv[0] as typed ("keybroker" from PATH); the second stage reads
  // argv[1] as "this executable" (e.g. for `init`), as it would be in the npm build.
  process.argv[1] = process.execPath;
  const mod = { exports: {} as unknown };
  // The executable's own require: built-in modules only, which is all the bundle needs.
  fn.call(mod.exports, mod.exports, require, mod, process.execPath, path.dirname(process.execPath));
  return mod.exports as T;
}

/** Where extracted native addons live: private to the user, outside the token cache directory. */
export function addonDir(env: NodeJS.ProcessEnv, platform: NodeJS.Platform, homeDir: string): string {
  switch (platform) {
    case 'win32':
      return path.win32.join(
        env.LOCALAPPDATA || path.win32.join(homeDir, 'AppData', 'Local'),
        'keybroker',
        'native',
      );
    case 'darwin':
      return path.posix.join(homeDir, 'Library', 'Application Support', 'keybroker', 'native');
    default:
      return path.posix.join(
        env.XDG_DATA_HOME || path.posix.join(homeDir, '.local', 'share'),
        'keybroker',
        'native',
      );
  }
}

function isIntact(file: string, digest: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return false;
  }
  if (!st.isFile()) return false;
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) return false;
  if (process.platform !== 'win32' && (st.mode & 0o022) !== 0) return false;
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex') === digest;
}

/**
 * Writes `bytes` once to `<dir>/<stem>-<sha256>.node` (a temporary file, then rename) and
 * returns that path. An existing file is reused only when it is a regular file of ours
 * with exactly these bytes; anything else is replaced. The directory must be private.
 */
export function materializeAddon(bytes: Uint8Array, dir: string, stem: string): string {
  const digest = createHash('sha256').update(bytes).digest('hex');
  const file = path.join(dir, `${stem}-${digest.slice(0, 32)}.node`);
  // Checked every time: a directory others can write would let them swap the file before dlopen.
  ensurePrivateDir(dir);
  assertNotWritableByOthers(dir, fs.lstatSync(dir), 'native addon directory');
  if (isIntact(file, digest)) return file;
  try {
    writeFileAtomic(file, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0o700);
  } catch (e) {
    // Another process may have won the race (on Windows a loaded DLL cannot be replaced).
    if (!isIntact(file, digest)) throw e;
  }
  return file;
}

/** Loads a native addon embedded as a SEA asset (a `.node` cannot be required from a SEA). */
export function loadSeaAddon<T>(asset: string): T {
  const bytes = rawAsset(require('node:sea') as Sea, asset);
  if (!bytes) throw new Error(`native addon ${asset} is not embedded in this executable`);
  const dir = addonDir(process.env, process.platform, os.homedir());
  const file = materializeAddon(new Uint8Array(bytes), dir, path.basename(asset, '.node'));
  const mod = { exports: {} as unknown };
  process.dlopen(mod, file);
  return mod.exports as T;
}
