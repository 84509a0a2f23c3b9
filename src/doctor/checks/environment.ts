/**
 * Doctor: what the environment and a repository's settings can do to keybroker (issue 11
 * findings 1, 4, 5, 14 and 18), and which claims of the active profile the user controls.
 *
 * - Variables that load foreign code into `node dist/keybroker` (LD_PRELOAD, OPENSSL_CONF,
 *   NODE_OPTIONS) are listed when set; NODE_TLS_REJECT_UNAUTHORIZED=0 and an unsafe NODE_DEBUG
 *   are flagged.
 * - A repository's `.claude/settings.json` or `settings.local.json` `env` block reaches the
 *   helper (Claude Code passes it from its second call on): any variable keybroker reads there
 *   fails doctor, naming the file and the variables.
 */
import { maxTtlMsFor } from '../../config/load.js';
import type { ResolvedProfile } from '../../config/types.js';
import { unsafeDebugSections } from '../../platform/node-debug.js';
import { printable } from '../../platform/text.js';
import { envBlock, type SettingsFile, TTL_VAR } from '../claude-settings.js';
import { type CheckResult, check } from '../report.js';
import type { DoctorScope, Env } from './scope.js';

/** Variables that make node load code or configuration that is not keybroker's. */
const FOREIGN_CODE = ['LD_PRELOAD', 'OPENSSL_CONF', 'NODE_OPTIONS'];

/** Variables keybroker (or the Node it runs on) reads: a repository must not set them. */
function isVariableKeybrokerReads(name: string): boolean {
  const upper = name.toUpperCase();
  return (
    /^(KEYBROKER_|VAULT_|AWS_)/.test(upper) ||
    ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].includes(upper) ||
    [
      'NODE_DEBUG',
      'NODE_TLS_REJECT_UNAUTHORIZED',
      'NODE_OPTIONS',
      'NODE_EXTRA_CA_CERTS',
      'SSL_CERT_FILE',
      'SSL_CERT_DIR',
      'LD_PRELOAD',
      'OPENSSL_CONF',
    ].includes(upper)
  );
}

export function environmentChecks(scope: DoctorScope): CheckResult[] {
  const out: CheckResult[] = [];
  const env = scope.env;
  for (const name of FOREIGN_CODE) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    out.push(
      check(
        'env.foreign-code',
        'warn',
        `${name} is set (${printable(v, '...', 80)}): it loads code or settings into Node that are not keybroker's`,
        {
          code: 'ERR_ENV_FOREIGN_CODE',
          hint: `unset ${name} unless you put it there on purpose; the release executable ignores NODE_OPTIONS`,
        },
      ),
    );
  }
  if (env.NODE_TLS_REJECT_UNAUTHORIZED === '0') {
    out.push(
      check('env.tls', 'fail', 'NODE_TLS_REJECT_UNAUTHORIZED=0 asks Node to skip certificate checks', {
        code: 'ERR_ENV_TLS_OFF',
        hint: 'unset it: keybroker checks certificates whatever it says, and other tools on this machine do not',
      }),
    );
  }
  const debug = unsafeDebugSections(env.NODE_DEBUG);
  if (debug.length > 0) {
    out.push(
      check(
        'env.node-debug',
        'fail',
        `NODE_DEBUG turns on ${debug.join(', ')}: keybroker refuses to contact a source`,
        {
          code: 'ERR_UNSAFE_DEBUG',
          hint: 'unset NODE_DEBUG (keybroker --debug traces safely)',
        },
      ),
    );
  }
  out.push(...repositorySettingsChecks(scope.settings, scope.resolved));
  return out;
}

/** A repository's settings `env` that sets what keybroker reads (finding 4c). */
function repositorySettingsChecks(files: SettingsFile[], resolved?: ResolvedProfile): CheckResult[] {
  const out: CheckResult[] = [];
  for (const f of files) {
    if (f.scope !== 'project' && f.scope !== 'project-local') continue;
    const block = envBlock(f) ?? {};
    const names = Object.keys(block).filter(isVariableKeybrokerReads);
    const ttl = block[TTL_VAR];
    if (resolved && ttlAboveCap(ttl, resolved)) names.push(TTL_VAR);
    if (names.length === 0) continue;
    out.push(
      check(
        'settings.env',
        'fail',
        `${f.path} (a repository's settings) sets ${names.join(', ')} in its env block, which reaches keybroker`,
        {
          code: 'ERR_REPO_SETTINGS_ENV',
          hint: 'remove them from the repository file unless you trust it; set what you need in ~/.claude/settings.json or the managed settings',
        },
      ),
    );
  }
  return out;
}

function ttlAboveCap(value: unknown, resolved: ResolvedProfile): boolean {
  const n =
    typeof value === 'string' && /^[0-9]{1,15}$/.test(value)
      ? Number(value)
      : typeof value === 'number'
        ? value
        : 0;
  return n > maxTtlMsFor(resolved.policy.maxLifetimeSec, resolved.cache.refreshMarginMs);
}

/** The managed policy in force: lockdown, environment defaults, the lifetime cap. */
export function policyCheck(resolved: ResolvedProfile): CheckResult {
  const p = resolved.policy;
  const maxTtl = maxTtlMsFor(p.maxLifetimeSec, resolved.cache.refreshMarginMs);
  const lock = p.lockdown
    ? `lockdown (allowUserConfig false), connection settings ${p.environmentDefaults ? 'may' : 'may not'} come from the environment`
    : 'no lockdown';
  return check(
    'config.policy',
    'info',
    `${lock}; lifetime cap maxLifetimeSec ${p.maxLifetimeSec} s (a TTL of at most ${maxTtl} ms)${p.docsUrl ? `; docs ${p.docsUrl}` : ''}`,
  );
}

/** Which claims of the active profile the laptop's user controls (finding 1). */
export function claimsCheck(resolved: ResolvedProfile): CheckResult | undefined {
  const src = resolved.source;
  if (src.type === 'jwt') {
    const names = ['sub', ...Object.keys(src.claims ?? {})];
    return check(
      'source.claims',
      'info',
      `the user controls every claim of this jwt profile (${names.join(', ')}): whoever can read the signing key signs any claims`,
      {
        code: 'ERR_JWT_CLAIMS_USER_CONTROLLED',
        hint: 'take claims a user must not choose (a team that decides budgets) from a vault-identity or oidc source',
      },
    );
  }
  if (src.type === 'vault-identity' || src.type === 'oidc') {
    const who = src.type === 'oidc' ? 'the identity provider' : "Vault's identity templates";
    return check('source.claims', 'pass', `the claims come from ${who}; the user controls none of them`);
  }
  return undefined;
}

export type { Env };
