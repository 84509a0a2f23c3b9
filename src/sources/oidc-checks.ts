/**
 * Doctor checks for an `oidc` profile: the provider's discovery document, that its issuer is
 * exactly the configured one, the local clock against the provider's `Date`, whether the
 * provider offers refresh tokens (`refresh_token` grant, `offline_access`), the login (who, and
 * whether its refresh token is kept for silent renewal), and the claims against `requireClaims`.
 * `--probe` renews once through the normal probe (the token path's engine and session: the
 * login's lock, the durable rotation write) and `oidcProbeClaims` checks the printed token.
 * Nothing here prints or returns a token: claims are shown by name and value.
 */
import type { OidcSourceConfig } from '../config/types.js';
import { type DoctorScope, fromError } from '../doctor/checks/scope.js';
import { type CheckResult, check } from '../doctor/report.js';
import { oidcFetch, safe, scopesOf } from './oidc-client.js';
import { type LoginIdentity, readLoginIdentity } from './oidc-login.js';
import { openSession, refusedTokenClaims } from './oidc-session.js';

const SKEW_LIMIT_MS = 30_000;
const OFFLINE = 'offline_access';

export async function oidcChecks(src: OidcSourceConfig, scope: DoctorScope): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const resolved = scope.resolved!;
  const url = `${src.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let doc: Record<string, unknown> | undefined;
  try {
    const res = await oidcFetch(src, scope.env)(url, { signal: AbortSignal.timeout(8000) });
    const date = Date.parse(res.headers.get('date') ?? '');
    doc = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
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
  const offered = offlineOffered(src, doc);
  if (offered) out.push(offered);
  const who = readLoginIdentity(resolved.cacheDir, resolved.name, src);
  if (!who) {
    out.push(
      check('source.oidc.login', 'fail', `nobody is signed in to profile ${resolved.name}`, {
        code: 'ERR_OIDC_NO_LOGIN',
        hint: `run keybroker login --profile ${resolved.name}`,
      }),
    );
    // A login with these scopes would get no refresh token, and `keybroker login` refuses that;
    // unless the provider publishes scopes without offline_access (Google: its own way applies).
    const offlineKnown = listed(doc, 'scopes_supported')?.includes(OFFLINE) ?? true;
    if (!scopesOf(src).includes(OFFLINE) && offlineKnown) {
      out.push(
        check(
          'source.oidc.refresh',
          'fail',
          `scopes (${scopesOf(src).map(safe).join(' ')}) do not ask for ${OFFLINE}: most providers then issue no refresh token, and keybroker login refuses a login without one`,
          {
            code: 'ERR_OIDC_NO_REFRESH_TOKEN',
            hint: `add "${OFFLINE}" to scopes (or the provider's own setting: see docs/oidc.md, provider recipes), then run keybroker login --profile ${resolved.name}`,
          },
        ),
      );
    }
    return out;
  }
  const groups = who.groups?.length ? `, groups ${who.groups.map(safe).join(', ')}` : '';
  out.push(
    check(
      'source.oidc.login',
      'pass',
      `signed in as ${safe(who.sub)}${who.email ? ` (${safe(who.email)})` : ''}${groups} since ${new Date(who.loginAtMs).toISOString()}`,
    ),
  );
  out.push(await refreshCheck(src, scope, who));
  if (!scope.probe) out.push(loginClaimsCheck(src, who, resolved.name));
  return out;
}

/** A string list the discovery document publishes; undefined when it does not. */
function listed(doc: Record<string, unknown>, key: string): string[] | undefined {
  const v = doc[key];
  return Array.isArray(v) ? v.map(String) : undefined;
}

/**
 * What the discovery document says about refresh tokens, when it publishes `grant_types_supported`
 * or `scopes_supported` (both optional in OpenID Connect Discovery): the `refresh_token` grant,
 * and `offline_access` when the profile asks for it.
 */
export function offlineOffered(src: OidcSourceConfig, doc: Record<string, unknown>): CheckResult | undefined {
  const grants = listed(doc, 'grant_types_supported');
  const scopes = listed(doc, 'scopes_supported');
  if (!grants && !scopes) return undefined;
  if (grants && !grants.includes('refresh_token')) {
    return check(
      'source.oidc.offline',
      'fail',
      `the provider does not offer the refresh_token grant (grant_types_supported: ${grants.map(safe).join(', ')})`,
      {
        code: 'ERR_OIDC_NO_REFRESH_TOKEN',
        hint: 'enable refresh tokens for this client at the provider (docs/oidc.md, provider recipes)',
      },
    );
  }
  const wants = scopesOf(src).includes(OFFLINE);
  if (wants && scopes && !scopes.includes(OFFLINE)) {
    return check(
      'source.oidc.offline',
      'fail',
      `scopes ask for ${OFFLINE}, which the provider does not offer (scopes_supported: ${scopes.map(safe).join(', ')})`,
      {
        code: 'ERR_OIDC_NO_REFRESH_TOKEN',
        hint: `remove "${OFFLINE}" from scopes and use the provider's own way to get a refresh token (Google: a desktop client's first consent; docs/oidc.md, provider recipes)`,
      },
    );
  }
  const said = [
    ...(grants ? ['the refresh_token grant'] : []),
    ...(wants && scopes ? [`the ${OFFLINE} scope`] : []),
  ];
  if (said.length === 0) return undefined;
  return check('source.oidc.offline', 'pass', `the provider offers ${said.join(' and ')}`);
}

/**
 * Whether the login still holds its refresh token (read, never shown). `keybroker login` keeps
 * none without one; a refresh token the provider refused (invalid_grant) is dropped, leaving
 * only who it was.
 */
async function refreshCheck(
  src: OidcSourceConfig,
  scope: DoctorScope,
  who: LoginIdentity,
): Promise<CheckResult> {
  const resolved = scope.resolved!;
  try {
    const session = await openSession(resolved.name, src, resolved.cache.storage, {
      env: scope.env,
      platform: scope.ctx.platform,
      homeDir: scope.ctx.homeDir,
      logger: scope.ctx.logger,
      now: scope.ctx.now,
      cacheDir: resolved.cacheDir,
    });
    const secret = await session.readSecret();
    if (secret) {
      return check(
        'source.oidc.refresh',
        'pass',
        `a refresh token is kept in the ${session.store.kind === 'keychain' ? 'keychain' : 'file store'} (received ${new Date(secret.receivedAtMs).toISOString()}): the token path renews silently`,
      );
    }
    return check(
      'source.oidc.refresh',
      'fail',
      `the login of ${safe(who.sub)} holds no refresh token any more (the provider refused it, or it was removed): the token path cannot renew`,
      {
        code: 'ERR_OIDC_LOGIN_EXPIRED',
        hint: `run keybroker login --profile ${resolved.name}`,
      },
    );
  } catch (e) {
    return fromError('source.oidc.refresh', e);
  }
}

/** Claims whose values are shown (identity, audience, expiry); others are named only. */
const SHOWN_CLAIMS = [
  'iss',
  'sub',
  'aud',
  'azp',
  'email',
  'name',
  'preferred_username',
  'groups',
  'roles',
  'scope',
  'exp',
];
const TIME_CLAIMS = new Set(['exp', 'iat', 'nbf', 'auth_time']);
const MAX_SHOWN_ITEMS = 10;

function showValue(name: string, v: unknown): string {
  if (typeof v === 'number' && TIME_CLAIMS.has(name)) return new Date(v * 1000).toISOString();
  if (Array.isArray(v)) {
    const items = v.slice(0, MAX_SHOWN_ITEMS).map((x) => safe(typeof x === 'string' ? x : JSON.stringify(x)));
    return `[${items.join(', ')}${v.length > MAX_SHOWN_ITEMS ? `, … ${v.length} in all` : ''}]`;
  }
  if (typeof v === 'string') return v.length > 80 ? `${safe(v.slice(0, 80))}…` : safe(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return '{…}';
}

/** `sub=alice, email=…, groups=[…]; also at_hash, iat` (required claims always with their value). */
export function describeClaims(claims: Record<string, unknown>, required: string[] = []): string {
  const valued = [...SHOWN_CLAIMS, ...required.filter((c) => !SHOWN_CLAIMS.includes(c))].filter(
    (c) => c in claims,
  );
  const named = Object.keys(claims)
    .filter((c) => !valued.includes(c))
    .sort();
  const parts = valued.map((c) => `${safe(c)}=${showValue(c, claims[c])}`);
  return `${parts.join(', ')}${named.length > 0 ? `; also ${named.map(safe).join(', ')}` : ''}`;
}

function isEmpty(v: unknown): boolean {
  return v === null || v === '' || (Array.isArray(v) && v.length === 0);
}

/**
 * `requireClaims` against a token's claims: missing is what the token path refuses (exit 5),
 * present but empty (`""`, `[]`, `null`) passes there yet gives the gateway nothing to map.
 */
function verdict(
  required: string[],
  has: (c: string) => unknown,
): { status: 'pass' | 'warn' | 'fail'; said: string; missing: string[] } {
  if (required.length === 0) return { status: 'pass', said: 'no requireClaims', missing: [] };
  const missing = required.filter((c) => has(c) === undefined);
  const empty = required.filter((c) => has(c) !== undefined && isEmpty(has(c)));
  const present = required.filter((c) => !missing.includes(c) && !empty.includes(c));
  const said = [
    ...(missing.length ? [`${missing.map(safe).join(', ')} missing`] : []),
    ...(empty.length ? [`${empty.map(safe).join(', ')} empty`] : []),
    ...(present.length ? [`${present.map(safe).join(', ')} present`] : []),
  ].join(', ');
  return {
    status: missing.length ? 'fail' : empty.length ? 'warn' : 'pass',
    said: `requireClaims: ${said}`,
    missing,
  };
}

function claimsFix(status: 'pass' | 'warn' | 'fail', missing: string[], profile: string) {
  if (status === 'pass') return undefined;
  return {
    code: 'ERR_OIDC_CLAIMS_MISSING',
    hint:
      status === 'fail'
        ? `map ${missing.map(safe).join(', ')} at the provider (scopes, claim rules) or change requireClaims; the token path exits 5 for profile ${profile}`
        : 'give the user a value at the provider (group membership, profile attributes) or map the claim differently',
  };
}

/**
 * `--probe`: the claims of the token the profile printed (or of the one the token path refused
 * for lacking a required claim) against `requireClaims`.
 */
export function oidcProbeClaims(
  src: OidcSourceConfig,
  profile: string,
  claims: Record<string, unknown> | undefined,
): CheckResult {
  const required = src.requireClaims ?? [];
  if (!claims) {
    const status = required.length > 0 ? 'fail' : 'info';
    return check(
      'probe.claims',
      status,
      'the renewed token is not a JWT: it carries no claims keybroker can read',
      claimsFix(status === 'fail' ? 'fail' : 'pass', required, profile),
    );
  }
  const v = verdict(required, (c) => claims[c]);
  return check(
    'probe.claims',
    v.status,
    `the renewed token carries ${describeClaims(claims, required)}; ${v.said}`,
    claimsFix(v.status, v.missing, profile),
  );
}

/** The claims the login's identity record keeps. */
const KEPT_AT_LOGIN = new Set(['sub', 'email', 'groups']);

/** `--probe` failed: when the token was refused for lacking a required claim, what it carried. */
export function oidcRefusedClaims(
  src: OidcSourceConfig,
  profile: string,
  e: unknown,
): CheckResult | undefined {
  const claims = refusedTokenClaims(e);
  return claims ? oidcProbeClaims(src, profile, claims) : undefined;
}

/**
 * Without `--probe`: what the login's ID token carried (the identity record keeps `sub`, `email`
 * and `groups`), checked against those of `requireClaims`; the printed token is checked by
 * `--probe`, which renews once.
 */
function loginClaimsCheck(src: OidcSourceConfig, who: LoginIdentity, profile: string): CheckResult {
  const known: Record<string, unknown> = {
    sub: who.sub,
    ...(who.email !== undefined ? { email: who.email } : {}),
    ...(who.groups !== undefined ? { groups: who.groups } : {}),
  };
  const required = src.requireClaims ?? [];
  const checkable = required.filter((c) => KEPT_AT_LOGIN.has(c));
  const later = required.filter((c) => !checkable.includes(c));
  const v = verdict(checkable, (c) => known[c]);
  const said = [
    ...(checkable.length > 0 || required.length === 0 ? [v.said] : []),
    ...(later.length > 0 ? [`${later.map(safe).join(', ')} checked only with --probe`] : []),
  ].join('; ');
  // The printed token may differ from the login's (access_token, exchange): not a failure yet.
  const status = v.status === 'pass' ? 'info' : 'warn';
  return check(
    'source.oidc.claims',
    status,
    `at login the ID token carried ${describeClaims(known)}; ${said} (doctor --probe checks the printed token)`,
    claimsFix(v.status, v.missing, profile),
  );
}
