/**
 * The second stage's one way to get a configuration: load the layers, validate them with their
 * templates expanded, and keep the last managed config that validated (contract §3, "a bad
 * managed push does not take laptops down").
 *
 * The copy lives in the default cache directory, under the cache's file rules (0600, owned by
 * the user, no symlink, written whole), named after the managed file's path. Not in
 * KEYBROKER_CACHE_DIR: whether that variable may be used is decided by the managed file, which
 * is the very file that is broken when the copy is needed.
 */
import { join } from 'node:path';
import { checkCacheDir, createFileStore, type FileStore } from '../cache/file-store.js';
import { cacheDir } from '../platform/paths.js';
import { readPrivateFile, writeFileAtomic } from '../platform/safe-fs.js';
import { sha256Hex } from '../platform/sha256.js';
import {
  type ConfigInputs,
  isObject,
  type LoadedConfig,
  loadConfig,
  type ManagedFallback,
  stableStringify,
} from './load.js';
import type { ConfigLayer } from './types.js';
import { validateConfig, validateLayer } from './validate.js';

export interface CheckedOptions {
  /** `config validate`: an unset `${env:NAME}` anywhere is an error (see ValidateConfigOptions). */
  requireEnv?: boolean;
  /** Read and write the last-good managed copy (false under --no-cache, which creates no file). */
  lastGood?: boolean;
  /** Called with the warning line when the last-good copy stands in for the managed file. */
  warn?: (message: string) => void;
}

export function loadChecked(inputs: ConfigInputs, options: CheckedOptions = {}): LoadedConfig {
  const useCopy = options.lastGood !== false;
  const store = useCopy ? lastGoodStore(inputs) : undefined;
  const loaded = loadConfig(inputs, store ? { managedFallback: fallbackFrom(store) } : {});
  validateConfig(loaded, inputs, { requireEnv: options.requireEnv === true });
  const managed = loaded.layers.find((l) => l.kind === 'managed');
  if (managed?.fallback) {
    options.warn?.(fallbackWarning(managed));
  } else if (store && managed?.exists) {
    saveLastGood(store, managed);
  }
  return loaded;
}

/** The last-good copy as loadConfig's fallback; `doctor` uses it to say what the token path does. */
export function managedFallback(inputs: ConfigInputs): ManagedFallback {
  return fallbackFrom(lastGoodStore(inputs));
}

function fallbackFrom(store: FileStore): ManagedFallback {
  return {
    validate: (layer: ConfigLayer) => validateLayer(layer),
    lastGood: (path: string) => readLastGood(store, path),
  };
}

/** The one warning line while the last good copy stands in for a broken managed file. */
function fallbackWarning(layer: ConfigLayer): string {
  const f = layer.fallback!;
  return `warning: ${f.error.message}; going on with the last managed config that validated (saved ${new Date(f.savedAtMs).toISOString()}) (fix ${layer.path}; keybroker doctor shows the problem)`;
}

function lastGoodStore(inputs: ConfigInputs): FileStore {
  const dir = cacheDir(
    { env: inputs.env, platform: inputs.platform, homeDir: inputs.homeDir },
    { ignoreEnv: true },
  );
  return createFileStore({ dir });
}

function copyFile(store: FileStore, path: string): string {
  return join(store.dir, `managed-last-good-${sha256Hex(path).slice(0, 16)}.json`);
}

interface LastGood {
  v: 1;
  path: string;
  savedAtMs: number;
  raw: unknown;
}

function readLastGood(store: FileStore, path: string): { raw: unknown; savedAtMs: number } | undefined {
  let text: string;
  try {
    checkCacheDir(store.dir);
    text = readPrivateFile(copyFile(store, path), 'last good managed config').toString('utf8');
  } catch {
    return undefined; // absent, unsafe or unreadable: no copy, and the managed file's error stands
  }
  try {
    const o = JSON.parse(text) as Partial<LastGood>;
    if (o.v !== 1 || o.path !== path || typeof o.savedAtMs !== 'number' || !isObject(o.raw)) return undefined;
    return { raw: o.raw, savedAtMs: o.savedAtMs };
  } catch {
    return undefined;
  }
}

function saveLastGood(store: FileStore, layer: ConfigLayer): void {
  try {
    const before = readLastGood(store, layer.path);
    if (before && stableStringify(before.raw) === stableStringify(layer.raw)) return;
    store.ensureDir();
    const record: LastGood = { v: 1, path: layer.path, savedAtMs: Date.now(), raw: layer.raw };
    writeFileAtomic(copyFile(store, layer.path), JSON.stringify(record));
  } catch {
    // Only the safety net is lost, never the token; an unsafe cache directory is reported by
    // the token path itself.
  }
}
