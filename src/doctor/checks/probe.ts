/** `doctor --probe`: the source's server (when it has one), then one real token fetch, shown redacted. */
import { fingerprint } from '../../cache/entry.js';
import type { SourceConfig } from '../../config/types.js';
import { isKeybrokerError } from '../../errors.js';
import { redactToken } from '../../output/logger.js';
import { isObject } from '../../platform/text.js';
import { TTL_VAR } from '../claude-settings.js';
import { type CheckResult, check, type ProbeResult } from '../report.js';
import { type DoctorScope, fromError } from './scope.js';

function decodeJwt(
  token: string,
): { header: Record<string, unknown>; claims: Record<string, unknown> } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const dec = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    const header = dec(parts[0]!);
    const claims = dec(parts[1]!);
    if (!isObject(header) || !isObject(claims)) return undefined;
    return { header: header as Record<string, unknown>, claims: claims as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

/** Registered and Vault-set claims: none of them tells people apart for the gateway. */
const STANDARD_CLAIMS = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'nbf',
  'jti',
  'namespace',
  'auth_time',
  'azp',
  'nonce',
]);

/**
 * A vault-identity token whose own claims name no one (issue 16): behind a shared AppRole every
 * laptop is one entity, so `user` renders as the entity id (`entity_…`) and per-person metadata
 * as "". Some claim must carry a value other than the entity's id.
 */
function sharedIdentity(claims: Record<string, unknown>): CheckResult | undefined {
  const sub = typeof claims.sub === 'string' ? claims.sub : undefined;
  const own = Object.entries(claims).filter(([k]) => !STANDARD_CLAIMS.has(k));
  const names = (v: unknown) =>
    typeof v === 'string' && v.trim() !== '' && !v.startsWith('entity_') && v !== sub;
  if (own.some(([, v]) => names(v))) return undefined;
  const said =
    own.length === 0
      ? 'no claim of its own'
      : `no claim naming a person (${own.map(([k]) => k).join(', ')}: empty or the entity id)`;
  return check(
    'probe.identity',
    'warn',
    `the identity token carries ${said}: every laptop behind this Vault login looks the same to the gateway`,
    {
      code: 'ERR_VAULT_IDENTITY_SHARED',
      hint: 'log in per person (oidc, userpass, a per-device cert) and put a per-user value in the role template, e.g. {"user": {{identity.entity.name}}}',
    },
  );
}

/** What the token path would have done: its error code and exit code (contract §1). */
function failedProbe(e: unknown): ProbeResult {
  return isKeybrokerError(e) ? { ok: false, code: e.code, exitCode: e.exitCode } : { ok: false };
}

export async function runProbe(scope: DoctorScope): Promise<{ checks: CheckResult[]; probe: ProbeResult }> {
  const { ctx, env } = scope;
  const resolved = scope.resolved!;
  const checks: CheckResult[] = [];
  const src: SourceConfig = resolved.source;
  if ((src.type === 'vault' || src.type === 'vault-identity') && src.address) {
    const { vaultProbeChecks } = await import('../../sources/vault-checks.js');
    checks.push(...(await vaultProbeChecks({ ...src, address: src.address }, resolved, () => ctx.now())));
  }
  const started = ctx.now();
  try {
    const { getToken } = await import('../../broker/broker.js');
    const r = await getToken({ ...ctx, env }, resolved, {
      refresh: true,
      noCache: true,
      invocationStartMs: started,
    });
    const probe: ProbeResult = {
      ok: true,
      source: r.source,
      token: redactToken(r.token),
      fingerprint: fingerprint(r.token),
      durationMs: ctx.now() - started,
    };
    if (r.expiresAtMs !== undefined) probe.expiresAt = new Date(r.expiresAtMs).toISOString();
    const jwt = decodeJwt(r.token);
    if (jwt) probe.jwt = jwt;
    checks.push(
      check('probe', 'pass', `fetched a token from ${r.source} in ${probe.durationMs} ms: ${probe.token}`),
    );
    if (src.type === 'vault-identity' && jwt) {
      const shared = sharedIdentity(jwt.claims);
      if (shared) checks.push(shared);
    }
    if (src.type === 'oidc') {
      const { oidcProbeClaims } = await import('../../sources/oidc-checks.js');
      checks.push(oidcProbeClaims(src, resolved.name, jwt?.claims));
    }
    if (r.expiresAtMs !== undefined) {
      const left = r.expiresAtMs - ctx.now();
      const need = resolved.ttlMs + resolved.cache.refreshMarginMs;
      checks.push(
        left >= need
          ? check(
              'probe.lifetime',
              'pass',
              `the token lives ${Math.round(left / 1000)} s more, at least TTL + margin (${need / 1000} s)`,
            )
          : check(
              'probe.lifetime',
              'fail',
              `the token lives only ${Math.round(left / 1000)} s more, less than TTL + margin (${need / 1000} s)`,
              {
                code: 'ERR_TOKEN_LIFETIME_TOO_SHORT',
                hint: `lower ${TTL_VAR} or have the source issue longer-lived tokens`,
              },
            ),
      );
    }
    return { checks, probe };
  } catch (e) {
    checks.push(fromError('probe', e));
    if (src.type === 'oidc') {
      const { oidcRefusedClaims } = await import('../../sources/oidc-checks.js');
      const refused = oidcRefusedClaims(src, resolved.name, e);
      if (refused) checks.push(refused);
    }
    return { checks, probe: failedProbe(e) };
  }
}
