/**
 * Doctor: the profile's source. Each source type contributes its own checks from a module
 * beside it (src/sources/<type>-checks.ts), imported only when that type is configured.
 */
import type { ResolvedProfile } from '../../config/types.js';
import type { AppContext } from '../../context.js';
import { sourceDepsFor } from '../../sources/deps.js';
import type { SourceDeps } from '../../sources/types.js';
import { type CheckResult, check } from '../report.js';
import { type DoctorScope, type Env, fromError } from './scope.js';

/** What a source needs to be described or checked (no memo: doctor and status never cache). */
export function sourceDeps(ctx: AppContext, resolved: ResolvedProfile, env: Env): SourceDeps {
  return sourceDepsFor(ctx, resolved, env);
}

export async function sourceChecks(scope: DoctorScope): Promise<CheckResult[]> {
  const { ctx, env } = scope;
  const resolved = scope.resolved!;
  const out: CheckResult[] = [];
  const src = resolved.source;
  const deps = sourceDeps(ctx, resolved, env);
  try {
    const { createSource } = await import('../../sources/index.js');
    const source = await createSource(src, deps);
    out.push(check('source', 'pass', source.describe()));
  } catch (e) {
    out.push(fromError('source', e));
    return out;
  }
  switch (src.type) {
    case 'jwt':
      out.push(...(await (await import('../../sources/jwt-checks.js')).jwtChecks(src, scope, deps)));
      break;
    case 'vault':
    case 'vault-identity':
      out.push(...(await import('../../sources/vault-checks.js')).vaultSourceChecks(src, scope));
      break;
    case 'aws-secrets-manager':
      out.push(
        ...(await import('../../sources/aws-secrets-manager-checks.js')).awsSecretsManagerChecks(src, scope),
      );
      break;
    case 'oidc':
      out.push(...(await (await import('../../sources/oidc-checks.js')).oidcChecks(src, scope)));
      break;
    case 'keychain':
      out.push(
        ...(await (await import('../../sources/keychain-checks.js')).keychainSourceChecks(src, scope)),
      );
      break;
  }
  return out;
}
