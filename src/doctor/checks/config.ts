/** Doctor: the keybroker config layers, their validity and the profile they resolve to. */
import { configInputs } from '../../config/inputs.js';
import { type LoadedConfig, loadConfig, resolveProfile } from '../../config/load.js';
import type { ResolvedProfile } from '../../config/types.js';
import { parseHelper, TTL_VAR } from '../claude-settings.js';
import { type CheckResult, check } from '../report.js';
import { policyCheck } from './environment.js';
import { type DoctorScope, fromError } from './scope.js';

export interface ConfigCheckResult {
  checks: CheckResult[];
  resolved?: ResolvedProfile;
  /** The profile asked for (--profile or the helper's), named in the report even when it fails. */
  profileFlag?: string;
}

export async function configChecks(scope: DoctorScope): Promise<ConfigCheckResult> {
  const { ctx, helper } = scope;
  const checks: CheckResult[] = [];
  const add = (c: CheckResult) => checks.push(c);
  const helperInfo = helper ? parseHelper(helper.command) : undefined;
  const profileFlag = ctx.globals.profile ?? helperInfo?.profile;
  const inputs = configInputs(
    { ...ctx, env: scope.env },
    { config: ctx.globals.config || undefined, profile: profileFlag || undefined },
  );
  let loaded: LoadedConfig | undefined;
  try {
    // As the token path loads it: a managed file that stopped validating is replaced by the
    // last copy that did, and doctor fails loudly about it below.
    const { managedFallback } = await import('../../config/checked.js');
    loaded = loadConfig(inputs, { managedFallback: managedFallback(inputs) });
  } catch (e) {
    add(fromError('config', e));
  }
  let resolved: ResolvedProfile | undefined;
  if (loaded) {
    for (const layer of loaded.layers) {
      const id = `config.${layer.kind}`;
      const where = `${layer.path} (${layer.origin === 'default' ? 'default location' : `from ${layer.origin}`})`;
      if (layer.ignored) {
        add(
          check(
            id,
            layer.exists ? 'warn' : 'info',
            `${where}: ignored, because the managed config sets "allowUserConfig": false${layer.exists ? '; its settings have no effect' : ''}`,
            layer.exists
              ? {
                  code: 'ERR_CONFIG_USER_IGNORED',
                  hint: 'ask your platform team to change the managed profile, or remove your file',
                }
              : undefined,
          ),
        );
      } else if (layer.fallback) {
        add(
          check(
            id,
            'fail',
            `${where}: does not validate (${layer.fallback.error.message}); the token path goes on with the last copy that did, saved ${new Date(layer.fallback.savedAtMs).toISOString()}`,
            {
              code: 'ERR_MANAGED_CONFIG_FALLBACK',
              hint: `fix ${layer.path} (keybroker config validate ${layer.path} --layer managed)`,
            },
          ),
        );
      } else {
        add(check(id, 'pass', `${where}: ${layer.exists ? 'read' : 'not present'}`));
      }
    }
    try {
      const { validateConfig } = await import('../../config/validate.js');
      validateConfig(loaded, inputs);
      add(check('config.valid', 'pass', 'valid'));
      try {
        resolved = resolveProfile(loaded, inputs);
        add(policyCheck(resolved));
        const by = ctx.globals.profile
          ? '--profile'
          : helperInfo?.profile
            ? `the apiKeyHelper in ${helper!.file.path}`
            : 'the config';
        add(check('profile', 'pass', `"${resolved.name}" (chosen by ${by})`));
        for (const w of resolved.warnings) {
          add(
            check('profile', 'warn', w, {
              code: 'ERR_CLAUDE_TTL_INVALID',
              hint: `set ${TTL_VAR} to a whole number of milliseconds`,
            }),
          );
        }
      } catch (e) {
        add(fromError('profile', e));
      }
    } catch (e) {
      add(fromError('config.valid', e));
    }
  }
  return { checks, ...(resolved ? { resolved } : {}), ...(profileFlag ? { profileFlag } : {}) };
}
