/** Doctor: the audit log file is private (or not written yet), by the token path's own check. */
import * as fs from 'node:fs';
import type { ResolvedProfile } from '../../config/types.js';
import { checkAuditFile } from '../../output/audit.js';
import { type CheckResult, check } from '../report.js';
import { fromError } from './scope.js';

export function auditCheck(resolved: ResolvedProfile): CheckResult {
  if (!resolved.audit.enabled) return check('audit', 'info', 'audit log is off (audit.enabled: false)');
  const file = resolved.audit.file ?? '';
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return check('audit', 'pass', `${file}: not written yet`);
  }
  try {
    checkAuditFile(file, st); // the rule the token path writes by
  } catch (e) {
    return fromError('audit', e, 'warn');
  }
  return check('audit', 'pass', `${file} (${st.size} bytes)`);
}
