/** Builds the audit line of contract §5 from what the token path knows. */
import { fingerprint } from '../cache/entry.js';
import type { AuditConfig } from '../config/types.js';
import { isKeybrokerError } from '../errors.js';
import { type AuditRecord, appendAudit } from './audit.js';
import { cleanLine } from './redact.js';

export interface AuditFacts {
  nowMs: number;
  startedMs: number;
  profile: string;
  source: string;
  user: string;
  host: string;
  callerId: string | undefined;
  result?: {
    token: string;
    /** When already known (the entry keeps it), saves hashing the token again. */
    fingerprint?: string;
    cache: AuditRecord['cache'];
    expiresAtMs?: number;
    jti?: string;
  };
  error?: unknown;
}

function auditRecord(f: AuditFacts): AuditRecord {
  const caller = f.callerId ? Number.parseInt(f.callerId, 10) : process.ppid;
  const rec: AuditRecord = {
    ts: new Date(f.nowMs).toISOString(),
    profile: f.profile,
    source: f.source,
    user: f.user,
    host: f.host,
    caller: Number.isFinite(caller) ? caller : null,
    cache: f.result?.cache ?? null,
    fingerprint: f.result ? (f.result.fingerprint ?? fingerprint(f.result.token)) : null,
    expiresAt: f.result?.expiresAtMs !== undefined ? new Date(f.result.expiresAtMs).toISOString() : null,
    durationMs: Math.round(f.nowMs - f.startedMs),
    outcome: f.error === undefined ? 'ok' : 'error',
  };
  if (f.result?.jti) rec.jti = f.result.jti;
  if (f.error !== undefined) {
    rec.error = isKeybrokerError(f.error)
      ? cleanLine(`${f.error.code}: ${f.error.message}`)
      : 'internal error';
  }
  return rec;
}

/**
 * The one audit writer both stages use: one record for this run when the profile keeps an
 * audit log. Returns a warning to show instead of throwing.
 */
export function writeAudit(audit: AuditConfig, facts: AuditFacts): string | undefined {
  if (!audit.enabled || !audit.file) return undefined;
  return appendAudit(audit.file, auditRecord(facts));
}
