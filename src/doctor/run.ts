/**
 * `keybroker doctor`: every check of contract §4, as data. Nothing here prints; cli/doctor.ts
 * renders the report. A failed check is a result, not an exception: doctor keeps going and
 * reports everything it can see. Each area's checks live in src/doctor/checks/<area>.ts; each
 * source type's in src/sources/<type>-checks.ts. This runner only orders them.
 */
import type { AppContext } from '../context.js';
import { auditCheck } from './checks/audit.js';
import { cacheChecks } from './checks/cache.js';
import { claudeChecks, claudeRunEnv } from './checks/claude.js';
import { clockCheck } from './checks/clock.js';
import { configChecks } from './checks/config.js';
import { claimsCheck, environmentChecks } from './checks/environment.js';
import { networkChecks } from './checks/network.js';
import { runProbe } from './checks/probe.js';
import type { DoctorScope } from './checks/scope.js';
import { sourceChecks } from './checks/source.js';
import { readAllSettings, winningHelper } from './claude-settings.js';
import { type CheckResult, check, type DoctorReport, type ProbeResult } from './report.js';

export interface DoctorOptions {
  probe: boolean;
}

export async function runDoctor(ctx: AppContext, options: DoctorOptions): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  const add = (c: CheckResult) => checks.push(c);
  const settings = readAllSettings({
    env: ctx.env,
    platform: ctx.platform,
    homeDir: ctx.homeDir,
    cwd: ctx.cwd,
  });
  const scope: DoctorScope = {
    ctx,
    settings,
    helper: winningHelper(settings),
    env: claudeRunEnv(settings, ctx.env),
    probe: options.probe,
  };

  const config = await configChecks(scope);
  for (const c of config.checks) add(c);
  if (config.resolved) {
    scope.resolved = config.resolved;
    for (const c of await sourceChecks(scope)) add(c);
    const claims = claimsCheck(config.resolved);
    if (claims) add(claims);
    for (const c of await networkChecks(scope, options.probe)) add(c);
    for (const c of await cacheChecks(scope)) add(c);
    add(auditCheck(config.resolved));
  }
  add(clockCheck(ctx.now(), options.probe));
  for (const c of claudeChecks(scope)) add(c);
  for (const c of environmentChecks(scope)) add(c);

  let probe: ProbeResult | undefined;
  if (options.probe) {
    if (!scope.resolved) {
      add(
        check('probe', 'fail', 'skipped: the profile could not be resolved (see above)', {
          code: 'ERR_CONFIG_INVALID',
          hint: 'fix the config first',
        }),
      );
    } else {
      const r = await runProbe(scope);
      for (const c of r.checks) add(c);
      probe = r.probe;
    }
  }

  const report: DoctorReport = { ok: checks.every((c) => c.status !== 'fail'), checks };
  if (scope.resolved) report.profile = scope.resolved.name;
  else if (config.profileFlag) report.profile = config.profileFlag;
  if (probe) report.probe = probe;
  return report;
}
