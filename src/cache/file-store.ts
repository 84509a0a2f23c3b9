/**
 * The file cache (contract §2): directory 0700, files 0600 owned by the user, written whole.
 * A directory others can write, or a symlinked entry, is refused (exit 6); a corrupt entry is
 * discarded. Synchronous fs underneath: the first stage reads through this on every hit.
 */

import { closeSync, lstatSync, openSync, readdirSync, readFileSync, type Stats, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { seeDocs, unsafeError } from '../errors.js';
import {
  assertNotWritableByOthers,
  assertPrivateFile,
  ensurePrivateDir,
  writeFileAtomic,
} from '../platform/safe-fs.js';
import { sha256Hex } from '../platform/sha256.js';
import { parseEntry } from './entry.js';
import type { ServedRecord } from './policy.js';
import type { CacheEntry, CacheStore } from './types.js';

export interface FileStoreOptions {
  dir: string;
  /** Called when a corrupt entry is discarded. */
  onDiscard?: (file: string) => void;
  /** false: leave a corrupt entry in place and report it as absent (the first stage defers to the second). */
  discardCorrupt?: boolean;
}

export interface FileStore extends CacheStore {
  readonly dir: string;
  entryPath(key: string): string;
  /** Checks (and creates) the directory; throws exit 6 when unsafe. */
  ensureDir(): void;
  readSync(key: string): CacheEntry | undefined;
  readServed(key: string, callerId: string): ServedRecord | undefined;
  writeServed(key: string, callerId: string, record: ServedRecord): void;
  /** An empty marker file (e.g. that a config was validated). */
  hasMarker(name: string): boolean;
  /** Creates marker `name`, removing older markers that share its prefix up to the last '-'. */
  setMarker(name: string): void;
  /** Removes served records (one per Claude Code process ever served) last written before `beforeMs`. */
  pruneServed(key: string, beforeMs: number): number;
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$/;

function blobFile(name: string): string {
  return SAFE_NAME.test(name) ? `${name}.blob` : `${sha256Hex(name).slice(0, 32)}.blob`;
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}

const isPosix = process.platform !== 'win32';
const myUid = () => (typeof process.getuid === 'function' ? process.getuid() : -1);

/**
 * The fix for a cache someone else owns. Usually a `sudo -E keybroker` run made it (HOME kept,
 * so root wrote into the user's cache): giving it back is one command.
 */
function chownHint(path: string): string {
  return `run sudo chown -R ${myUid()} '${path}' (a sudo -E run leaves it owned by root); ${seeDocs('ERR_UNSAFE_OWNER')}`;
}

function ownerError(what: string, path: string, uid: number, fixPath: string) {
  return unsafeError(
    'ERR_UNSAFE_OWNER',
    `${what} ${path}: owned by uid ${uid}, not by you (uid ${myUid()})`,
    {
      hint: chownHint(fixPath),
    },
  );
}

/**
 * The cache directory: a plain directory the user owns (root is no exception here: a
 * root-owned cache is one the user cannot write), not writable by others. Exit 6 otherwise.
 */
export function checkCacheDir(dir: string): void {
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw unsafeError('ERR_UNSAFE_CACHE_DIR', `cache directory ${dir}: not a plain directory`, {
      hint: `remove it or set KEYBROKER_CACHE_DIR to a private directory; ${seeDocs('ERR_UNSAFE_CACHE_DIR')}`,
    });
  }
  if (isPosix && st.uid !== myUid()) throw ownerError('cache directory', dir, st.uid, dir);
  assertNotWritableByOthers(dir, st, 'cache directory');
}

/** Creating the directory failed: when a parent belongs to someone else, say which and how to fix it. */
function creationError(dir: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (!isPosix || (code !== 'EACCES' && code !== 'EPERM')) return e;
  let up = dirname(dir);
  for (;;) {
    try {
      const st = lstatSync(up);
      if (st.uid === myUid()) return e;
      return unsafeError(
        'ERR_UNSAFE_OWNER',
        `cache directory ${dir}: cannot be created: ${up} is owned by uid ${st.uid}, not by you (uid ${myUid()})`,
        { hint: chownHint(up) },
      );
    } catch (err) {
      if (!isMissing(err) || up === dirname(up)) return e;
      up = dirname(up);
    }
  }
}

/** Reads a private file (entry, blob) after the ssh-like checks; undefined when absent. */
function readChecked(file: string, what: string): string | undefined {
  let st: Stats;
  try {
    st = lstatSync(file);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  if (st.isSymbolicLink()) {
    throw unsafeError('ERR_UNSAFE_SYMLINK', `${what} ${file}: is a symbolic link`, {
      hint: `remove it (keybroker cache clear); ${seeDocs('ERR_UNSAFE_SYMLINK')}`,
    });
  }
  // An entry a sudo -E run wrote: give the whole directory back.
  if (isPosix && st.uid !== myUid()) throw ownerError(what, file, st.uid, dirname(file));
  assertPrivateFile(file, st, what);
  return readFileSync(file, 'utf8');
}

export function createFileStore(options: FileStoreOptions): FileStore {
  const { dir } = options;
  let checked = false;
  const ensureDir = () => {
    if (checked) return;
    try {
      checkCacheDir(dir);
    } catch (e) {
      if (!isMissing(e)) throw e;
      try {
        ensurePrivateDir(dir);
      } catch (err) {
        throw creationError(dir, err);
      }
      checkCacheDir(dir);
    }
    checked = true;
  };
  const entryPath = (key: string) => join(dir, `${key}.json`);
  const servedPath = (key: string, callerId: string) => join(dir, `${key}.served-${callerId}`);

  const store: FileStore = {
    kind: 'file',
    dir,
    entryPath,
    ensureDir,
    async read(key) {
      return store.readSync(key);
    },
    readSync(key) {
      ensureDir();
      const file = entryPath(key);
      const text = readChecked(file, 'cache entry');
      if (text === undefined) return undefined;
      const entry = parseEntry(text, key);
      if (!entry && options.discardCorrupt !== false) {
        try {
          unlinkSync(file);
        } catch {
          // someone else discarded it first
        }
        options.onDiscard?.(file);
      }
      return entry;
    },
    async write(key, entry) {
      ensureDir();
      writeFileAtomic(entryPath(key), JSON.stringify(entry));
    },
    async delete(key) {
      for (const f of [entryPath(key)]) {
        try {
          unlinkSync(f);
        } catch (e) {
          if (!isMissing(e)) throw e;
        }
      }
    },
    async readBlob(name) {
      ensureDir();
      return readChecked(join(dir, blobFile(name)), 'cache file');
    },
    async writeBlob(name, data) {
      ensureDir();
      writeFileAtomic(join(dir, blobFile(name)), data);
    },
    async deleteBlob(name) {
      try {
        unlinkSync(join(dir, blobFile(name)));
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    },
    async listKeys() {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch (e) {
        if (isMissing(e)) return [];
        throw e;
      }
      return names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).map((n) => n.slice(0, -5));
    },
    readServed(key, callerId) {
      try {
        const text = readChecked(servedPath(key, callerId), 'cache file');
        if (text === undefined) return undefined;
        const o = JSON.parse(text) as ServedRecord;
        if (
          typeof o.fingerprint !== 'string' ||
          typeof o.servedAtMs !== 'number' ||
          typeof o.ttlMs !== 'number'
        ) {
          return undefined;
        }
        return o;
      } catch (e) {
        if ((e as { exitCode?: number }).exitCode === 6) throw e;
        return undefined;
      }
    },
    hasMarker(name) {
      try {
        return lstatSync(join(dir, name)).isFile();
      } catch {
        return false;
      }
    },
    setMarker(name) {
      ensureDir();
      const prefix = name.slice(0, name.lastIndexOf('-') + 1);
      for (const other of readdirSync(dir)) {
        if (other !== name && prefix && other.startsWith(prefix)) {
          try {
            unlinkSync(join(dir, other));
          } catch {
            // removed by another run
          }
        }
      }
      closeSync(openSync(join(dir, name), 'a', 0o600));
    },
    pruneServed(key, beforeMs) {
      let removed = 0;
      const prefix = `${key}.served-`;
      for (const name of readdirSync(dir)) {
        if (!name.startsWith(prefix)) continue;
        try {
          const file = join(dir, name);
          if (lstatSync(file).mtimeMs < beforeMs) {
            unlinkSync(file);
            removed++;
          }
        } catch {
          // raced with another run's prune
        }
      }
      return removed;
    },
    writeServed(key, callerId, record) {
      ensureDir();
      writeFileAtomic(servedPath(key, callerId), JSON.stringify(record), 0o600, false);
    },
  };
  return store;
}
