/** Doctor checks a jwt source contributes: its token lifetime, its algorithm and its signing key. */
import type { JwtSourceConfig } from '../config/types.js';
import { type DoctorScope, fromError } from '../doctor/checks/scope.js';
import { type CheckResult, check } from '../doctor/report.js';
import type { SourceDeps } from './types.js';

export async function jwtChecks(
  src: JwtSourceConfig,
  scope: DoctorScope,
  deps: SourceDeps,
): Promise<CheckResult[]> {
  const { ctx, env } = scope;
  const resolved = scope.resolved!;
  const out: CheckResult[] = [];
  const { planJwt } = await import('./jwt.js');
  const { loadSigningKey } = await import('./signing-key.js');
  try {
    const plan = planJwt(src, deps);
    out.push(check('source.lifetime', 'pass', `minted tokens live ${plan.lifetimeSec} s`));
    if (plan.alg === 'HS256') {
      out.push(
        check(
          'source.algorithm',
          'warn',
          'HS256 uses a shared secret: anyone who has it can mint a token for any user or team',
          {
            code: 'ERR_JWT_HS256',
            hint: 'use ES256 (keybroker keygen) and give the gateway the public JWK Set (keybroker jwks)',
          },
        ),
      );
    }
  } catch (e) {
    out.push(fromError('source.lifetime', e));
  }
  try {
    const key = await loadSigningKey(src, {
      env,
      homeDir: ctx.homeDir,
      timeoutMs: resolved.timeoutMs,
      platform: ctx.platform,
    });
    out.push(check('source.key', 'pass', `${key.alg} signing key from ${key.origin}, kid ${key.kid}`));
  } catch (e) {
    out.push(fromError('source.key', e));
  }
  return out;
}
