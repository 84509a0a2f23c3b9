/**
 * `keybroker doctor`: every check of contract §4, as data. Nothing here prints; cli/doctor.ts
 * renders the report. A failed check is a result, not an exception: doctor keeps going and
 * reports everything it can see.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fingerprint } from '../cache/entry.js';
import { checkCacheDir } from '../cache/file-store.js';
import { type ConfigInputs, type LoadedConfig, loadConfig, resolveProfile } from '../config/load.js';
import type { ResolvedProfile, SourceConfig, VaultConnectionConfig } from '../config/types.js';
import type { AppContext } from '../context.js';
import { isKeybrokerError } from '../errors.js';
import { redactToken } from '../output/logger.js';
import { cacheDir } from '../platform/paths.js';
import { assertPrivateFile } from '../platform/safe-fs.js';
import type { SourceDeps } from '../sources/types.js';
import {
  CLAUDE_DEFAULT_TTL_MS,
  effectiveEnv,
  envBlock,
  parseClaudeTtl,
  parseHelper,
  readAllSettings,
  type SettingsFile,
  TTL_VAR,
  winningHelper,
} from './claude-settings.js';
import { type CheckResult, check, type DoctorReport, type ProbeResult, withDocs } from './report.js';

export interface DoctorOptions {
  probe: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

/** A check result from a thrown error: its message, its hint (which ends with its docs anchor). */
function fromError(id: string, e: unknown, status: 'fail' | 'warn' = 'fail'): CheckResult {
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

const SCOPE_ORDER_LOW_TO_HIGH = ['user', 'project', 'project-local', 'managed'] as const;

/** The environment keybroker sees when Claude Code runs it: its own plus every settings `env` block. */
export function claudeRunEnv(files: SettingsFile[], env: Env): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const scope of SCOPE_ORDER_LOW_TO_HIGH) {
    for (const f of files.filter((x) => x.scope === scope)) {
      for (const [k, v] of Object.entries(envBlock(f) ?? {}))
        if (v !== null && v !== undefined) out[k] = String(v);
    }
  }
  return out;
}

export async function runDoctor(ctx: AppContext, options: DoctorOptions): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  const add = (c: CheckResult) => checks.push(c);
  const pathCtx = { env: ctx.env, platform: ctx.platform, homeDir: ctx.homeDir, cwd: ctx.cwd };
  const settings = readAllSettings(pathCtx);
  const helper = winningHelper(settings);
  const helperInfo = helper ? parseHelper(helper.command) : undefined;
  const runEnv = claudeRunEnv(settings, ctx.env);

  // --- keybroker config -------------------------------------------------------------------
  const profileFlag = ctx.globals.profile ?? helperInfo?.profile;
  const inputs: ConfigInputs = {
    env: runEnv,
    platform: ctx.platform,
    homeDir: ctx.homeDir,
    userName: ctx.userName,
    hostName: ctx.hostName,
    ...(ctx.globals.config ? { configFlag: ctx.globals.config } : {}),
    ...(profileFlag ? { profileFlag } : {}),
  };
  let loaded: LoadedConfig | undefined;
  try {
    loaded = loadConfig(inputs);
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
      } else {
        add(check(id, 'pass', `${where}: ${layer.exists ? 'read' : 'not present'}`));
      }
    }
    try {
      const { validateConfig } = await import('../config/validate.js');
      validateConfig(loaded);
      add(check('config.valid', 'pass', 'valid'));
      try {
        resolved = resolveProfile(loaded, inputs);
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

  // --- source, cache, audit, clock ------------------------------------------------------------
  if (resolved) {
    for (const c of await sourceChecks(ctx, resolved, runEnv)) add(c);
    for (const c of await cacheChecks(ctx, resolved, runEnv)) add(c);
    add(auditCheck(resolved));
  }
  add(clockCheck(ctx.now()));

  // --- Claude Code wiring ---------------------------------------------------------------------
  for (const c of claudeChecks(ctx, settings, helper, resolved)) add(c);

  // --- probe ----------------------------------------------------------------------------------
  let probe: ProbeResult | undefined;
  if (options.probe) {
    if (!resolved) {
      add(
        check('probe', 'fail', 'skipped: the profile could not be resolved (see above)', {
          code: 'ERR_CONFIG_INVALID',
          hint: 'fix the config first',
        }),
      );
    } else {
      const r = await runProbe(ctx, resolved, runEnv);
      for (const c of r.checks) add(c);
      probe = r.probe;
    }
  }

  const report: DoctorReport = { ok: checks.every((c) => c.status !== 'fail'), checks };
  if (resolved) report.profile = resolved.name;
  else if (profileFlag) report.profile = profileFlag;
  if (probe) report.probe = probe;
  return report;
}

// ---------------------------------------------------------------------------------------------
// Sources

/** What a source needs to be described or checked (no memo: doctor and status never cache). */
export function sourceDeps(ctx: AppContext, resolved: ResolvedProfile, env: Env): SourceDeps {
  return {
    logger: ctx.logger,
    memo: { get: async () => undefined, set: async () => {}, delete: async () => {} },
    env,
    homeDir: ctx.homeDir,
    ttlMs: resolved.ttlMs,
    refreshMarginMs: resolved.cache.refreshMarginMs,
  };
}

async function sourceChecks(ctx: AppContext, resolved: ResolvedProfile, env: Env): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const src = resolved.source;
  const deps = sourceDeps(ctx, resolved, env);
  try {
    const { createSource } = await import('../sources/index.js');
    const source = await createSource(src, deps);
    out.push(check('source', 'pass', source.describe()));
  } catch (e) {
    out.push(fromError('source', e));
    return out;
  }
  switch (src.type) {
    case 'jwt': {
      const { planJwt } = await import('../sources/jwt.js');
      const { loadSigningKey } = await import('../sources/signing-key.js');
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
      break;
    }
    case 'vault':
    case 'vault-identity':
      out.push(...vaultChecks(src, env, ctx.homeDir));
      break;
    case 'aws-secrets-manager': {
      const region = src.region ?? (src.profile ? undefined : env.AWS_REGION);
      if (!region && !src.profile && !fs.existsSync(path.join(ctx.homeDir, '.aws', 'config'))) {
        out.push(
          check(
            'source.region',
            'fail',
            'no AWS region: neither source.region, AWS_REGION nor ~/.aws/config sets one',
            {
              code: 'ERR_AWS_REGION_MISSING',
              hint: 'set "region" in the source or AWS_REGION',
            },
          ),
        );
      } else {
        out.push(
          check(
            'source.region',
            'pass',
            region ? `region ${region}` : `region from the AWS profile ${src.profile ?? 'default'}`,
          ),
        );
      }
      const hasCreds =
        (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) ||
        env.AWS_WEB_IDENTITY_TOKEN_FILE ||
        env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI ||
        env.AWS_CONTAINER_CREDENTIALS_FULL_URI ||
        src.profile ||
        env.AWS_PROFILE ||
        fs.existsSync(path.join(ctx.homeDir, '.aws', 'credentials')) ||
        fs.existsSync(path.join(ctx.homeDir, '.aws', 'config'));
      out.push(
        hasCreds
          ? check(
              'source.credentials',
              'pass',
              'AWS credentials are configured (checked for real only with --probe)',
            )
          : check(
              'source.credentials',
              'warn',
              'no AWS credentials found in the environment or ~/.aws (an instance role may still answer)',
              {
                code: 'ERR_AWS_NO_CREDENTIALS',
                hint: 'run aws sso login or aws configure, or set AWS_PROFILE',
              },
            ),
      );
      break;
    }
    case 'keychain': {
      out.push(await keychainCheck('source.keychain', ctx, env, src.service, src.account ?? ctx.userName));
      break;
    }
  }
  return out;
}

function fileCheck(
  id: string,
  what: string,
  file: string | undefined,
  privateFile: boolean,
): CheckResult | undefined {
  if (!file) return undefined;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return check(id, 'fail', `${what} ${file}: does not exist`, {
      code: 'ERR_VAULT_CREDENTIAL_FILE',
      hint: `create it or fix the path in the config`,
    });
  }
  if (privateFile) {
    try {
      assertPrivateFile(file, st, what);
    } catch (e) {
      return fromError(id, e);
    }
  }
  return check(id, 'pass', `${what} ${file}: present`);
}

function vaultChecks(src: VaultConnectionConfig, env: Env, homeDir: string): CheckResult[] {
  const out: CheckResult[] = [];
  if (!src.address) {
    out.push(
      check('source.address', 'fail', 'no Vault address: neither source.address nor VAULT_ADDR is set', {
        code: 'ERR_VAULT_NO_ADDRESS',
        hint: 'set VAULT_ADDR or "address" in the source',
      }),
    );
  } else {
    out.push(check('source.address', 'pass', `Vault at ${src.address} (contacted only with --probe)`));
  }
  if (src.caCert) {
    const c = fileCheck('source.caCert', 'CA certificate', src.caCert, false);
    if (c) out.push(c);
  }
  if (src.tlsSkipVerify) {
    out.push(
      check('source.tls', 'warn', 'TLS certificate verification is off (tlsSkipVerify / VAULT_SKIP_VERIFY)', {
        code: 'ERR_VAULT_TLS',
        hint: 'point caCert (VAULT_CACERT) at your CA instead',
      }),
    );
  }
  const auth = src.auth ?? { method: 'token' as const };
  switch (auth.method) {
    case 'token': {
      const tokenFile = auth.tokenFile ?? path.join(homeDir, '.vault-token');
      if (env.VAULT_TOKEN) out.push(check('source.auth', 'pass', 'token auth with VAULT_TOKEN'));
      else if (fs.existsSync(tokenFile))
        out.push(fileCheck('source.auth', 'token auth: token file', tokenFile, true)!);
      else
        out.push(
          check('source.auth', 'fail', `token auth: neither VAULT_TOKEN nor ${tokenFile} is there`, {
            code: 'ERR_VAULT_NO_TOKEN',
            hint: 'run vault login, or set VAULT_TOKEN',
          }),
        );
      break;
    }
    case 'approle': {
      if (auth.secretIdEnv) {
        out.push(
          env[auth.secretIdEnv]
            ? check('source.auth', 'pass', `approle auth, secret id from ${auth.secretIdEnv}`)
            : check(
                'source.auth',
                'fail',
                `approle auth: environment variable ${auth.secretIdEnv} is not set`,
                {
                  code: 'ERR_VAULT_CREDENTIAL_ENV',
                  hint: `set ${auth.secretIdEnv}`,
                },
              ),
        );
      } else {
        out.push(
          fileCheck('source.auth', 'approle secret id file', auth.secretIdFile, true) ??
            check('source.auth', 'fail', 'approle auth: neither secretIdFile nor secretIdEnv is set', {
              code: 'ERR_CONFIG_INVALID',
              hint: 'set one of them in source.auth',
            }),
        );
      }
      break;
    }
    case 'kubernetes': {
      const jwtFile = auth.jwtFile ?? '/var/run/secrets/kubernetes.io/serviceaccount/token';
      out.push(
        fileCheck(
          'source.auth',
          `kubernetes auth (role ${auth.role}) service account token`,
          jwtFile,
          false,
        )!,
      );
      break;
    }
    case 'jwt': {
      out.push(fileCheck('source.auth', `jwt auth (role ${auth.role}) token file`, auth.jwtFile, false)!);
      break;
    }
  }
  return out;
}

async function keychainCheck(
  id: string,
  ctx: AppContext,
  env: Env,
  service: string,
  account: string | undefined,
): Promise<CheckResult> {
  try {
    const { openKeyring } = await import('../platform/keyring.js');
    const ring = await openKeyring({ env, platform: ctx.platform, timeoutMs: 3000 });
    if (account === undefined) return check(id, 'pass', `keychain (${ring.backend}) reachable`);
    const value = await ring.get(service, account);
    if (value === undefined) {
      return check(
        id,
        'fail',
        `keychain (${ring.backend}) reachable, but it has no item service=${service} account=${account}`,
        {
          code: 'ERR_KEYCHAIN_ITEM_MISSING',
          hint: `store it with keybroker keychain set --service ${service} --account ${account}`,
        },
      );
    }
    return check(id, 'pass', `keychain (${ring.backend}) has the item service=${service} account=${account}`);
  } catch (e) {
    return fromError(id, e);
  }
}

// ---------------------------------------------------------------------------------------------
// Cache, audit log, clock

async function cacheChecks(ctx: AppContext, resolved: ResolvedProfile, env: Env): Promise<CheckResult[]> {
  const storage = resolved.cache.storage;
  if (storage === 'none')
    return [check('cache', 'info', 'cache.storage is "none": every call reaches the source')];
  const out: CheckResult[] = [];
  const dir = cacheDir({ env, platform: ctx.platform, homeDir: ctx.homeDir });
  if (!fs.existsSync(dir)) {
    out.push(check('cache.dir', 'pass', `${dir}: not created yet (made 0700 on first use)`));
  } else {
    try {
      checkCacheDir(dir);
      const mode = (fs.statSync(dir).mode & 0o777).toString(8).padStart(4, '0');
      out.push(check('cache.dir', 'pass', `${dir} (mode ${mode})`));
    } catch (e) {
      out.push(fromError('cache.dir', e));
    }
  }
  if (storage === 'keychain')
    out.push(await keychainCheck('cache.keychain', ctx, env, 'keybroker', undefined));
  return out;
}

function auditCheck(resolved: ResolvedProfile): CheckResult {
  if (!resolved.audit.enabled) return check('audit', 'info', 'audit log is off (audit.enabled: false)');
  const file = resolved.audit.file ?? '';
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return check('audit', 'pass', `${file}: not written yet`);
  }
  try {
    assertPrivateFile(file, st, 'audit log');
  } catch (e) {
    return fromError('audit', e, 'warn');
  }
  return check('audit', 'pass', `${file} (${st.size} bytes)`);
}

/** Before this, the clock is certainly wrong (keybroker did not exist). */
const EARLIEST_SANE_MS = Date.UTC(2025, 0, 1);
const LATEST_SANE_MS = Date.UTC(2100, 0, 1);
const MAX_SKEW_MS = 30_000;

function clockCheck(nowMs: number): CheckResult {
  const at = new Date(nowMs).toISOString();
  if (nowMs < EARLIEST_SANE_MS || nowMs > LATEST_SANE_MS) {
    return check('clock', 'fail', `the local clock says ${at}`, {
      code: 'ERR_CLOCK_SKEW',
      hint: 'set the system clock (enable NTP); tokens minted now would be rejected as not yet valid or expired',
    });
  }
  return check('clock', 'pass', `local clock ${at} (compared with the source's server only with --probe)`);
}

function skewCheck(nowMs: number, serverMs: number, server: string): CheckResult {
  const skew = nowMs - serverMs;
  const s = Math.round(skew / 1000);
  if (Math.abs(skew) > MAX_SKEW_MS) {
    return check(
      'clock.skew',
      'fail',
      `the local clock is ${Math.abs(s)} s ${skew > 0 ? 'ahead of' : 'behind'} ${server}`,
      {
        code: 'ERR_CLOCK_SKEW',
        hint: 'set the system clock (enable NTP)',
      },
    );
  }
  return check('clock.skew', 'pass', `within ${MAX_SKEW_MS / 1000} s of ${server}`);
}

// ---------------------------------------------------------------------------------------------
// Claude Code wiring

function looksLikeKeybroker(program: string, execPath: string): boolean {
  if (program === '') return false;
  if (path.resolve(program) === path.resolve(execPath)) return true;
  const base = path.basename(program).replace(/\.(exe|cmd|cjs|js)$/i, '');
  return base === 'keybroker' || base.startsWith('keybroker-');
}

function findOnPath(program: string, env: Env, cwd: string): string | undefined {
  if (program.includes('/')) {
    const p = path.resolve(cwd, program);
    return fs.existsSync(p) ? p : undefined;
  }
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, program);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

function claudeChecks(
  ctx: AppContext,
  files: SettingsFile[],
  helper: { file: SettingsFile; command: string } | undefined,
  resolved: ResolvedProfile | undefined,
): CheckResult[] {
  const out: CheckResult[] = [];
  for (const f of files) {
    if (f.problem) {
      out.push(
        check(
          `claude.settings`,
          'fail',
          `${f.scope} settings ${f.path}: ${f.problem}; Claude Code cannot use it`,
          {
            code: 'ERR_CLAUDE_SETTINGS_INVALID',
            hint: 'fix the file (keybroker init refuses to touch it until then)',
          },
        ),
      );
    }
  }
  if (!helper) {
    out.push(
      check(
        'claude.helper',
        'fail',
        `no Claude Code settings file sets apiKeyHelper (looked in ${files.map((f) => f.path).join(', ')})`,
        {
          code: 'ERR_CLAUDE_NO_HELPER',
          hint: 'run keybroker init (or keybroker init --scope managed as root)',
        },
      ),
    );
  } else {
    const { program, profile } = parseHelper(helper.command);
    const isKb = looksLikeKeybroker(program, ctx.execPath);
    out.push(
      isKb
        ? check(
            'claude.helper',
            'pass',
            `apiKeyHelper from ${helper.file.scope} settings ${helper.file.path} runs keybroker: ${helper.command}`,
          )
        : check(
            'claude.helper',
            'fail',
            `apiKeyHelper from ${helper.file.scope} settings ${helper.file.path} does not run keybroker: ${program || '(empty)'}`,
            {
              code: 'ERR_CLAUDE_HELPER_NOT_KEYBROKER',
              hint: `run keybroker init --scope ${helper.file.scope === 'project-local' ? 'project' : helper.file.scope} to replace it`,
            },
          ),
    );
    if (isKb) {
      const found = findOnPath(program, ctx.env, ctx.cwd);
      if (!found) {
        out.push(
          check(
            'claude.helper',
            'fail',
            `the helper's program ${program} is not found${program.includes('/') ? '' : ' on PATH'}`,
            {
              code: 'ERR_CLAUDE_HELPER_NOT_FOUND',
              hint: 'run keybroker init again from the installed keybroker, which writes its absolute path',
            },
          ),
        );
      }
      if (resolved && profile && profile !== resolved.name) {
        out.push(
          check(
            'claude.helper',
            'warn',
            `the helper uses profile "${profile}" but this check ran for "${resolved.name}"`,
            {
              code: 'ERR_CLAUDE_HELPER_PROFILE',
              hint: `run keybroker doctor --profile ${profile}`,
            },
          ),
        );
      }
    }
    const others = files.filter((f) => f !== helper.file && typeof f.data?.apiKeyHelper === 'string');
    for (const f of files) {
      if (
        (f.scope === 'project' || f.scope === 'project-local') &&
        typeof f.data?.apiKeyHelper === 'string'
      ) {
        const overrides = others.filter((o) => o.scope === 'user').length > 0 || f === helper.file;
        out.push(
          check(
            'claude.project-helper',
            'warn',
            `the project file ${f.path} sets apiKeyHelper${overrides && f === helper.file ? ' and overrides yours' : ''}; it runs without a trust prompt in claude -p mode`,
            {
              code: 'ERR_CLAUDE_PROJECT_HELPER',
              hint: 'remove apiKeyHelper from the project file unless you trust this repository; set it in ~/.claude/settings.json or the managed file',
            },
          ),
        );
      }
    }
  }

  // The TTL Claude Code holds a token for, against what the token can live.
  const ttlVar = effectiveEnv(files, ctx.env, TTL_VAR);
  const claudeTtl = parseClaudeTtl(ttlVar?.value);
  if (!claudeTtl.valid) {
    out.push(
      check(
        'claude.ttl',
        'warn',
        `${TTL_VAR}="${ttlVar!.value}" (from ${ttlVar!.from}) is not a positive integer; Claude Code uses ${CLAUDE_DEFAULT_TTL_MS} ms`,
        {
          code: 'ERR_CLAUDE_TTL_INVALID',
          hint: `set it to a whole number of milliseconds, e.g. keybroker init --ttl ${CLAUDE_DEFAULT_TTL_MS}`,
        },
      ),
    );
  }
  if (resolved) out.push(ttlCheck(resolved, claudeTtl.ttlMs, ttlVar?.from));

  // Variables that replace the helper's value in one header.
  const headerVars: [string, string][] = [
    ['ANTHROPIC_API_KEY', 'X-Api-Key'],
    ['ANTHROPIC_AUTH_TOKEN', 'Authorization'],
  ];
  for (const [name, header] of headerVars) {
    const places: string[] = [];
    if (ctx.env[name]) places.push('your environment');
    for (const f of files) if (envBlock(f)?.[name] !== undefined) places.push(`the env block of ${f.path}`);
    out.push(
      places.length > 0
        ? check(
            'claude.env',
            'fail',
            `${name} is set in ${places.join(' and ')}: Claude Code sends it in ${header} instead of keybroker's token`,
            {
              code: 'ERR_CLAUDE_ENV_OVERRIDE',
              hint: `unset ${name} (and remove it from those settings) so both headers carry keybroker's token`,
            },
          )
        : check('claude.env', 'pass', `${name} is not set`),
    );
  }
  const base = effectiveEnv(files, ctx.env, 'ANTHROPIC_BASE_URL');
  if (base) out.push(check('claude.gateway', 'info', `ANTHROPIC_BASE_URL=${base.value} (from ${base.from})`));
  return out;
}

function ttlCheck(resolved: ResolvedProfile, claudeTtlMs: number, from: string | undefined): CheckResult {
  const margin = resolved.cache.refreshMarginMs;
  const need = claudeTtlMs + margin;
  const heldBy = `Claude Code holds a token ${claudeTtlMs} ms (${from ? `${TTL_VAR} from ${from}` : 'its default'})`;
  const src = resolved.source;
  if (resolved.ttlMs !== claudeTtlMs) {
    return check(
      'claude.ttl',
      'fail',
      `${heldBy}, but keybroker plans for ${resolved.ttlMs} ms (${resolved.ttlOrigin})`,
      {
        code: 'ERR_CLAUDE_TTL_MISMATCH',
        hint: `set ${TTL_VAR} in the settings env block (keybroker init --ttl ${resolved.ttlMs})`,
      },
    );
  }
  if (src.type === 'jwt') {
    const lifetimeMs =
      src.lifetimeSec !== undefined
        ? src.lifetimeSec * 1000
        : Math.ceil((2 * resolved.ttlMs + margin) / 1000) * 1000;
    if (lifetimeMs < need) {
      return check(
        'claude.ttl',
        'fail',
        `${heldBy}; with the ${margin} ms margin a token must live ${need} ms, but jwt lifetimeSec gives ${lifetimeMs} ms`,
        {
          code: 'ERR_CLAUDE_TTL_MISMATCH',
          hint: `raise lifetimeSec to at least ${Math.ceil(need / 1000)} or lower ${TTL_VAR}`,
        },
      );
    }
    return check(
      'claude.ttl',
      'pass',
      `${heldBy}; minted tokens live ${lifetimeMs / 1000} s, more than TTL + margin (${need / 1000} s)`,
    );
  }
  if (src.type === 'vault-identity') {
    return check(
      'claude.ttl',
      'pass',
      `${heldBy}; Vault sets the token's lifetime (doctor --probe compares it with TTL + margin = ${need} ms)`,
    );
  }
  return check(
    'claude.ttl',
    'pass',
    `${heldBy}; the ${src.type} secret is fetched again once it is older than that`,
  );
}

// ---------------------------------------------------------------------------------------------
// Probe

function decodeJwt(
  token: string,
): { header: Record<string, unknown>; claims: Record<string, unknown> } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const dec = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    const header = dec(parts[0]!);
    const claims = dec(parts[1]!);
    const obj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
    if (!obj(header) || !obj(claims)) return undefined;
    return { header: header as Record<string, unknown>, claims: claims as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

async function runProbe(
  ctx: AppContext,
  resolved: ResolvedProfile,
  env: Env,
): Promise<{ checks: CheckResult[]; probe: ProbeResult }> {
  const checks: CheckResult[] = [];
  const src: SourceConfig = resolved.source;
  if ((src.type === 'vault' || src.type === 'vault-identity') && src.address) {
    const { vaultHealth } = await import('./vault-health.js');
    try {
      const h = await vaultHealth(src.address, {
        ...(src.caCert ? { caCert: src.caCert } : {}),
        ...(src.tlsSkipVerify ? { tlsSkipVerify: true } : {}),
        ...(src.namespace ? { namespace: src.namespace } : {}),
        timeoutMs: resolved.timeoutMs,
      });
      if (h.sealed || h.status === 503) {
        checks.push(
          check('probe.vault', 'fail', `Vault at ${src.address} is sealed`, {
            code: 'ERR_VAULT_SEALED',
            hint: 'ask the Vault operators to unseal it',
          }),
        );
      } else if (h.status === 501 || h.initialized === false) {
        checks.push(
          check('probe.vault', 'fail', `Vault at ${src.address} is not initialised`, {
            code: 'ERR_VAULT_SERVER_ERROR',
            hint: 'check VAULT_ADDR points at the right server',
          }),
        );
      } else {
        checks.push(
          check(
            'probe.vault',
            'pass',
            `Vault at ${src.address} answers (HTTP ${h.status}${h.version ? `, version ${h.version}` : ''})`,
          ),
        );
      }
      if (h.serverDateMs !== undefined)
        checks.push(skewCheck(ctx.now(), h.serverDateMs, `Vault at ${src.address}`));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      checks.push(
        check('probe.vault', 'fail', `Vault at ${src.address} cannot be reached (${code})`, {
          code: 'ERR_VAULT_UNREACHABLE',
          hint: 'check VAULT_ADDR, your network or VPN, and the CA certificate',
        }),
      );
    }
  }
  const started = ctx.now();
  try {
    const { getToken } = await import('../broker/broker.js');
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
    return { checks, probe: { ok: false } };
  }
}
