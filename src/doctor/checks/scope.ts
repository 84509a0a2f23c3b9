/**
 * What every doctor check area sees, and the one way a thrown error becomes a check result.
 * An area is a function `(scope) → CheckResult[]`; src/doctor/run.ts runs them in order.
 */
import type { ResolvedProfile } from '../../config/types.js';
import type { AppContext } from '../../context.js';
import { isKeybrokerError } from '../../errors.js';
import type { SettingsFile } from '../claude-settings.js';
import { type CheckResult, check, withDocs } from '../report.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface DoctorScope {
  ctx: AppContext;
  /** Every Claude Code settings file found, lowest scope first. */
  settings: SettingsFile[];
  /** The settings file and command whose apiKeyHelper Claude Code runs. */
  helper: { file: SettingsFile; command: string } | undefined;
  /** The environment keybroker sees when Claude Code runs it (settings `env` blocks applied). */
  env: Env;
  /** `--probe`: servers are contacted (checks that only describe say so differently). */
  probe?: boolean;
  /** Set once the config area resolved the profile. */
  resolved?: ResolvedProfile;
}

/** A check result from a thrown error: its message, its hint (which ends with its docs anchor). */
export function fromError(id: string, e: unknown, status: 'fail' | 'warn' = 'fail'): CheckResult {
  if (isKeybrokerError(e)) {
    return {
      id,
      status,
      message: e.message,
      code: e.code,
      hint: withDocs(e.hint ?? 'see the entry for this code', e.code),
    };
  }
  const name = e instanceof Error ? ((e as NodeJS.ErrnoException).code ?? e.name) : typeof e;
  return check(id, status, `unexpected error (${name})`, {
    code: 'ERR_INTERNAL',
    hint: 'rerun with --debug and report it',
  });
}
