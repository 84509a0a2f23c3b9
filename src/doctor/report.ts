/** Doctor's results and how they are shown: one line per check, a fix and a docs link per failure. */
import { seeDocs } from '../errors.js';
import { cleanLine } from '../output/redact.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'info';

export interface CheckResult {
  /** Stable id, e.g. `config.user`, `claude.helper`. */
  id: string;
  status: CheckStatus;
  /** What was found, one line, no secrets. */
  message: string;
  /** What to do, ending with the docs anchor (warnings and failures). */
  hint?: string;
  /** The ERR_* code whose troubleshooting entry explains this. */
  code?: string;
}

export interface ProbeResult {
  ok: boolean;
  source?: string;
  /** The token, redacted: `abcd…wxyz (N chars)`. */
  token?: string;
  fingerprint?: string;
  expiresAt?: string;
  durationMs?: number;
  jwt?: { header: Record<string, unknown>; claims: Record<string, unknown> };
  /** When the fetch failed: the error code and the exit code the token path gives for it. */
  code?: string;
  exitCode?: number;
}

export interface DoctorReport {
  ok: boolean;
  profile?: string;
  checks: CheckResult[];
  probe?: ProbeResult;
}

export function check(
  id: string,
  status: CheckStatus,
  message: string,
  fix?: { code: string; hint: string },
): CheckResult {
  // Messages quote configured URLs and server text (versions, errors): one clean line each.
  const shown = cleanLine(message);
  if (!fix) return { id, status, message: shown };
  return { id, status, message: shown, code: fix.code, hint: cleanLine(withDocs(fix.hint, fix.code)) };
}

/** Appends `run keybroker explain CODE` unless the hint already names an entry. */
export function withDocs(hint: string, code: string): string {
  return hint.includes('run keybroker explain ') ? hint : `${hint}; ${seeDocs(code)}`;
}

const LABEL: Record<CheckStatus, string> = { pass: 'ok  ', warn: 'warn', fail: 'FAIL', info: 'info' };

export function renderText(report: DoctorReport): string {
  const lines: string[] = [];
  lines.push(`keybroker doctor${report.profile ? `: profile "${report.profile}"` : ''}`);
  for (const c of report.checks) {
    lines.push(`[${LABEL[c.status]}] ${c.id}: ${c.message}`);
    if (c.hint && (c.status === 'fail' || c.status === 'warn')) lines.push(`       fix: ${c.hint}`);
  }
  if (report.probe?.ok) {
    const p = report.probe;
    lines.push('probe:');
    lines.push(`  token:       ${p.token}`);
    lines.push(`  fingerprint: ${p.fingerprint}`);
    lines.push(`  source:      ${p.source}`);
    lines.push(`  expires:     ${p.expiresAt ?? 'no own expiry'}`);
    if (p.jwt) {
      lines.push(`  jwt header:  ${JSON.stringify(p.jwt.header)}`);
      lines.push(`  jwt claims:  ${JSON.stringify(p.jwt.claims)}`);
    }
  }
  if (report.probe && !report.probe.ok && report.probe.exitCode !== undefined) {
    lines.push(`probe: the token path exits ${report.probe.exitCode} with ${report.probe.code}`);
  }
  const count = (s: CheckStatus) => report.checks.filter((c) => c.status === s).length;
  const failed = count('fail');
  const warned = count('warn');
  lines.push(
    `${failed === 0 ? 'all checks passed' : `${failed} check${failed === 1 ? '' : 's'} failed`}` +
      `${warned > 0 ? `, ${warned} warning${warned === 1 ? '' : 's'}` : ''}`,
  );
  return `${lines.map(cleanLine).join('\n')}\n`;
}
