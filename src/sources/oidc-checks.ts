/**
 * Doctor checks for an `oidc` profile: the provider's discovery document, that its issuer is
 * exactly the configured one, the local clock against the provider's `Date`, and the login
 * (who, and whether a refresh token is kept for silent renewal). `--probe` renews once through
 * the normal probe and shows the token's claims there.
 */
import type { OidcSourceConfig } from '../config/types.js';
import { type DoctorScope, fromError } from '../doctor/checks/scope.js';
import { type CheckResult, check } from '../doctor/report.js';
import { oidcFetch, safe } from './oidc-client.js';
import { readLoginIdentity } from './oidc-login.js';

const SKEW_LIMIT_MS = 30_000;

export async function oidcChecks(src: OidcSourceConfig, scope: DoctorScope): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const resolved = scope.resolved!;
  const url = `${src.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  try {
    const res = await oidcFetch(src, scope.env)(url, { signal: AbortSignal.timeout(8000) });
    const date = Date.parse(res.headers.get('date') ?? '');
    const doc = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (res.status !== 200 || !doc) {
      out.push(
        check(
          'source.oidc.discovery',
          'fail',
          `discovery at ${url}: HTTP ${res.status}, no discovery document`,
        ),
      );
      return out;
    }
    out.push(check('source.oidc.discovery', 'pass', `discovery at ${url}`));
    out.push(
      doc.issuer === src.issuer
        ? check('source.oidc.issuer', 'pass', `issuer matches ${src.issuer}`)
        : check(
            'source.oidc.issuer',
            'fail',
            `the provider's issuer is ${safe(String(doc.issuer))}, not ${src.issuer}`,
            {
              code: 'ERR_OIDC_BAD_RESPONSE',
              hint: 'set issuer exactly as the provider says',
            },
          ),
    );
    if (Number.isFinite(date)) {
      const skew = scope.ctx.now() - date;
      out.push(
        Math.abs(skew) <= SKEW_LIMIT_MS
          ? check(
              'source.oidc.clock',
              'pass',
              `clock within ${Math.ceil(Math.abs(skew) / 1000)} s of the provider's`,
            )
          : check(
              'source.oidc.clock',
              'fail',
              `clock ${Math.round(skew / 1000)} s away from the provider's Date`,
              {
                code: 'ERR_CLOCK_SKEW',
                hint: 'enable time synchronisation (NTP)',
              },
            ),
      );
    }
  } catch (e) {
    out.push(fromError('source.oidc.discovery', e));
    return out;
  }
  const who = readLoginIdentity(resolved.cacheDir, resolved.name, src);
  if (!who) {
    out.push(
      check('source.oidc.login', 'fail', `nobody is signed in to profile ${resolved.name}`, {
        code: 'ERR_OIDC_NO_LOGIN',
        hint: `run keybroker login --profile ${resolved.name}`,
      }),
    );
  } else {
    const groups = who.groups?.length ? `, groups ${who.groups.map(safe).join(', ')}` : '';
    out.push(
      check(
        'source.oidc.login',
        'pass',
        `signed in as ${safe(who.sub)}${who.email ? ` (${safe(who.email)})` : ''}${groups} since ${new Date(who.loginAtMs).toISOString()}; a refresh token is kept for silent renewal`,
      ),
    );
    const missing = (src.requireClaims ?? []).filter(
      (c) => !(c === 'sub' || (c === 'email' && who.email) || (c === 'groups' && who.groups)),
    );
    if (
      missing.length > 0 &&
      (src.requireClaims ?? []).every((c) => ['sub', 'email', 'groups'].includes(c))
    ) {
      out.push(
        check(
          'source.oidc.claims',
          'warn',
          `the login's ID token lacked ${missing.join(', ')} (requireClaims); doctor --probe shows the printed token's claims`,
        ),
      );
    }
  }
  return out;
}
