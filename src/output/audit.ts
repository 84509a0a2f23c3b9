/**
 * The audit log (contract §5): one JSON line per token request, file 0600, rotated at 5 MiB
 * keeping one old file. A failure to write is a warning, never a lost token; so is an audit
 * file that fails the safety checks (that record is then not written).
 */
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  type Stats,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { isKeybrokerError, seeDocs, unsafeError } from '../errors.js';
import { assertPrivateFile } from '../platform/safe-fs.js';

const AUDIT_ROTATE_BYTES = 5 * 1024 * 1024;

export interface AuditRecord {
  ts: string;
  profile: string;
  source: string;
  user: string;
  host: string;
  caller: number | null;
  cache: 'hit' | 'miss' | 'stale' | 'refresh' | 'rejected' | null;
  fingerprint: string | null;
  expiresAt: string | null;
  jti?: string;
  durationMs: number;
  outcome: 'ok' | 'error';
  error?: string;
}

/**
 * The audit file gets the cache's rules (contract §5): never through a symlink, only a regular
 * file the user owns that no one else may read or write. Checked on the path before opening
 * and again on the descriptor opened (O_NOFOLLOW), so a file swapped in between is refused too.
 */
export function checkAuditFile(file: string, st: Stats): void {
  if (st.isSymbolicLink()) throw symlinkError(file);
  assertPrivateFile(file, st, 'audit log');
}

const symlinkError = (file: string) =>
  unsafeError('ERR_UNSAFE_SYMLINK', `audit log ${file}: is a symbolic link`, {
    hint: `replace the link with the file itself; ${seeDocs('ERR_UNSAFE_SYMLINK')}`,
  });

const APPEND_NOFOLLOW =
  fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | (fsConstants.O_NOFOLLOW ?? 0);

/** Appends one line; returns a warning message instead of throwing. */
export function appendAudit(file: string, record: AuditRecord): string | undefined {
  try {
    const line = `${JSON.stringify(record)}\n`;
    let st: Stats | undefined;
    try {
      st = lstatSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    }
    if (st) {
      checkAuditFile(file, st);
      // The old file keeps its checked owner and 0600; the new one is created 0600.
      if (st.size + line.length > AUDIT_ROTATE_BYTES && st.size > 0) renameSync(file, `${file}.1`);
    }
    const fd = openSync(file, APPEND_NOFOLLOW, 0o600);
    try {
      checkAuditFile(file, fstatSync(fd));
      writeSync(fd, line);
    } finally {
      closeSync(fd);
    }
    return undefined;
  } catch (caught) {
    const code = (caught as NodeJS.ErrnoException).code ?? 'error';
    // O_NOFOLLOW: a link planted after the check above.
    const e = code === 'ELOOP' ? symlinkError(file) : caught;
    if (isKeybrokerError(e)) return `warning: audit record not written: ${e.message} (${e.hint})`;
    return `warning: could not write the audit log ${file}: ${code} (check that its directory is writable, or set audit.enabled to false)`;
  }
}
