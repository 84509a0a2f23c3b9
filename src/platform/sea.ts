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

/**
 * Asset names; scripts/release/sea.mjs writes the same names into the SEA config. The second
 * stage is split as dist/lib is (an entry and chunks), each file CommonJS, under this prefix;
 * a file's V8 code cache, when the target has one, is the asset of its name plus the suffix.
 */
export const SEA_MAIN_PREFIX = 'keybroker-main/';
export const SEA_MAIN_ENTRY = 'main.cjs';
export const SEA_CACHE_SUFFIX = '.cache';

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

type ModuleFunction = (
  exports: unknown,
  req: (id: string) => unknown,
  module: { exports: unknown },
  filename: string,
  dirname: string,
) => void;

/**
 * Loads the second stage from the executable's assets: its entry, and each chunk the first
 * time a file requires it ("./chunks/..." relative to the requiring file; anything else is a
 * built-in module, all the bundle needs). Each file is compiled with `vm.Script`, with the V8
 * code cache made for this target when there is one. A rejected cache is silent here (V8 just
 * compiles), unlike SEA's own useCodeCache.
 */
export function loadSeaMain<T>(): T {
  const sea = require('node:sea') as Sea;
  const vm = require('node:vm') as Vm;
  const { wrap } = require('node:module') as ModuleApi;
  // A SEA's argv[1] is its argv[0] as typed ("keybroker" from PATH); the second stage reads
  // argv[1] as "this executable" (e.g. for `init`), as it would be in the npm build.
  process.argv[1] = process.execPath;
  const dirname = path.dirname(process.execPath);
  const loaded = new Map<string, { exports: unknown }>();
  const load = (name: string): unknown => {
    const known = loaded.get(name);
    if (known) return known.exports;
    const asset = SEA_MAIN_PREFIX + name;
    const cache = rawAsset(sea, asset + SEA_CACHE_SUFFIX);
    const script = new vm.Script(wrap(sea.getAsset(asset, 'utf8')), {
      filename: asset,
      ...(cache ? { cachedData: Buffer.from(cache) } : {}),
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
    const fn = script.runInThisContext() as ModuleFunction;
    const mod = { exports: {} as unknown };
    // Registered before it runs: chunks that require each other get the exports object.
    loaded.set(name, mod);
    const dir = path.posix.dirname(name);
    const req = (id: string): unknown =>
      id.startsWith('./') || id.startsWith('../') ? load(path.posix.join(dir, id)) : require(id);
    fn.call(mod.exports, mod.exports, req, mod, process.execPath, dirname);
    return mod.exports;
  };
  return load(SEA_MAIN_ENTRY) as T;
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
