/**
 * File checks "like ssh checks its keys", and whole-file writes. Synchronous on purpose:
 * these run on the cache-hit path, where a few syscalls beat the promise machinery.
 */

import {
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { seeDocs, unsafeError } from '../errors.js';

let counter = 0;
/** Unique enough for a temporary file name created with O_EXCL (no node:crypto on the hit path). */
export function uniqueSuffix(): string {
  counter++;
  return `${Date.now().toString(36)}${counter.toString(36)}${Math.floor(Math.random() * 0xffffffff).toString(36)}`;
}

const isPosix = process.platform !== 'win32';
const myUid = () => (typeof process.getuid === 'function' ? process.getuid() : -1);

/** Refuse a file or directory that someone other than us (or root) owns, or that group/others can write. */
export function assertNotWritableByOthers(p: string, st: Stats, what: string): void {
  if (!isPosix) return;
  const uid = myUid();
  if (st.uid !== uid && st.uid !== 0) {
    throw unsafeError('ERR_UNSAFE_OWNER', `${what} ${p}: owned by uid ${st.uid}, not by you (uid ${uid})`, {
      hint: `chown it to yourself or remove it; ${seeDocs('ERR_UNSAFE_OWNER')}`,
    });
  }
  if ((st.mode & 0o022) !== 0) {
    throw unsafeError(
      'ERR_UNSAFE_PERMISSIONS',
      `${what} ${p}: writable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`,
      { hint: `run chmod go-w '${p}'; ${seeDocs('ERR_UNSAFE_PERMISSIONS')}` },
    );
  }
}

export interface PrivateFileRule {
  /**
   * Also accept a file owned by root, writable by no one else and not readable by everyone
   * (0640 at most): a key that device management installs for one account through a group.
   */
  rootOwnedGroupReadable?: boolean;
}

/** A private file (key, cache entry): a regular file we own, mode 0600 or stricter. */
export function assertPrivateFile(p: string, st: Stats, what: string, rule: PrivateFileRule = {}): void {
  if (!st.isFile()) {
    throw unsafeError('ERR_UNSAFE_FILE_TYPE', `${what} ${p}: not a regular file`, {
      hint: `replace it with a regular file; ${seeDocs('ERR_UNSAFE_FILE_TYPE')}`,
    });
  }
  if (!isPosix) return;
  const uid = myUid();
  if (rule.rootOwnedGroupReadable && st.uid === 0 && (st.mode & 0o037) === 0) return;
  if (st.uid !== uid) {
    throw unsafeError('ERR_UNSAFE_OWNER', `${what} ${p}: owned by uid ${st.uid}, not by you (uid ${uid})`, {
      hint: `chown it to yourself${rule.rootOwnedGroupReadable ? ', or to root with mode 0640 or stricter' : ''}; ${seeDocs('ERR_UNSAFE_OWNER')}`,
    });
  }
  if ((st.mode & 0o077) !== 0) {
    throw unsafeError(
      'ERR_UNSAFE_PERMISSIONS',
      `${what} ${p}: permissions ${(st.mode & 0o777).toString(8).padStart(4, '0')} are too open`,
      { hint: `run chmod 600 '${p}'; ${seeDocs('ERR_UNSAFE_PERMISSIONS')}` },
    );
  }
}

/** Reads a private file after checking it with lstat (a symlink is refused). */
export function readPrivateFile(p: string, what: string, rule: PrivateFileRule = {}): Buffer {
  const st = lstatSync(p);
  if (st.isSymbolicLink()) {
    throw unsafeError('ERR_UNSAFE_SYMLINK', `${what} ${p}: is a symbolic link`, {
      hint: `replace the link with the file itself; ${seeDocs('ERR_UNSAFE_SYMLINK')}`,
    });
  }
  assertPrivateFile(p, st, what, rule);
  return readFileSync(p);
}

/** Creates a directory (and parents) with mode 0700 for the last component. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Writes a file whole: a temporary file beside it (0600, O_EXCL), fsync'd, then renamed over
 * the target. A reader sees the old content or the new, never half of either. `durable: false`
 * skips the fsync for records whose loss after a power cut costs nothing (served records).
 */
export function writeFileAtomic(target: string, data: string | Buffer, mode = 0o600, durable = true): void {
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${uniqueSuffix()}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', mode);
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw e;
  }
}
