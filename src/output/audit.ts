/**
 * The audit log (contract §5): one JSON line per token request, file 0600, rotated at 5 MiB
 * keeping one old file. A failure to write is a warning, never a lost token.
 */
import { closeSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export const AUDIT_ROTATE_BYTES = 5 * 1024 * 1024;

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

/** Appends one line; returns a warning message instead of throwing. */
export function appendAudit(file: string, record: AuditRecord): string | undefined {
  try {
    const line = JSON.stringify(record) + '\n';
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    }
    if (size + line.length > AUDIT_ROTATE_BYTES && size > 0) renameSync(file, `${file}.1`);
    const fd = openSync(file, 'a', 0o600);
    try {
      writeSync(fd, line);
    } finally {
      closeSync(fd);
    }
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return `warning: could not write the audit log ${file}: ${code} (check that its directory is writable, or set audit.enabled to false)`;
  }
}
