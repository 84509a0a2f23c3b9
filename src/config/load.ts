/**
 * Layered config (contract §3): read the managed and user files, check who may write them,
 * parse, merge, then resolve one profile (templates, `~`, environment defaults, TTL rule,
 * cache key).
 *
 * The cache-hit first stage imports this module: it stays synchronous, imports only node:fs,
 * node:path and small local modules (no node:crypto: see platform/sha256.ts), and never loads the schema. Validation
 * (./validate.ts) runs in the second stage; here every access to the raw config is defensive
 * instead, and anything odd is a configError.
 */
import { existsSync, lstatSync, readFileSync, realpathSync, type Stats, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { configError, ExitCode, isKeybrokerError, seeDocs } from '../errors.js';
import { auditLogPath, cacheDir, expandHome, managedConfigPath, userConfigPath } from '../platform/paths.js';
import { assertNotWritableByOthers } from '../platform/safe-fs.js';
import { sha256Hex } from '../platform/sha256.js';
import { isObject, printable } from '../platform/text.js';
import { assertManagedAclSafe } from '../platform/win-acl.js';
import { credentialIdentity } from './credential-identity.js';
import { jsonErrorPosition } from './json-position.js';
import { expandTemplates, expandTemplatesDeep, pointerKey, setOwn, type TemplateVars } from './templates.js';
import {
  type AuditConfig,
  type CacheConfig,
  type ConfigLayer,
  DEFAULTS,
  type KeybrokerConfig,
  type ManagedPolicy,
  type ResolvedProfile,
  type SourceConfig,
} from './types.js';

export { isObject };

export interface ConfigInputs {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  homeDir: string;
  userName: string;
  hostName: string;
  configFlag?: string;
  profileFlag?: string;
}

export type LayerKind = 'managed' | 'user';

export interface LoadedConfig {
  /** Managed first, then user. */
  layers: ConfigLayer[];
  /** The merged raw config (templates not resolved, not validated). */
  merged: KeybrokerConfig;
  /** JSON pointer of every leaf value of `merged` ("/profiles/default/ttlMs") → the layer that set it. */
  origins: Record<string, LayerKind>;
  /** What the managed layer decides (lockdown, environment defaults, lifetime cap, docsUrl). */
  policy: ManagedPolicy;
  /** The cache directory (KEYBROKER_CACHE_DIR only where the policy takes environment defaults). */
  cacheDir: string;
}

export interface LoadOptions {
  /** Second stage: when the managed file stops validating, go on from the last copy that did. */
  managedFallback?: ManagedFallback;
}

export interface ManagedFallback {
  /** Throws a configError (exit 2) when a managed layer's content does not validate on its own. */
  validate(layer: ConfigLayer): void;
  /** The last managed content that validated, kept for `path`; undefined when there is none. */
  lastGood(path: string): { raw: unknown; savedAtMs: number } | undefined;
}

/** Profile names go into file names (cache entries, locks). */
export const PROFILE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const PROFILE_NAME = new RegExp(PROFILE_NAME_PATTERN);

/** Keys whose string value is a file path: a leading `~` is the home directory. */
const PATH_KEYS = new Set(['file', 'caCert', 'tokenFile', 'secretIdFile', 'jwtFile', 'certFile', 'keyFile']);

// ---------------------------------------------------------------------------------------------
// Loading

export function loadConfig(inputs: ConfigInputs, options: LoadOptions = {}): LoadedConfig {
  const pctx = { env: inputs.env, platform: inputs.platform, homeDir: inputs.homeDir };
  const managedAt = managedConfigPath(pctx, pathPresent);
  const managed = readManagedLayer(
    expandHome(managedAt.path, inputs.homeDir),
    managedAt.origin,
    options.managedFallback,
  );
  const userAt = userConfigPath(pctx, inputs.configFlag);
  const userPath = expandHome(userAt.path, inputs.homeDir);
  let user: ConfigLayer;
  const policy = managedPolicy(managed.raw);
  if (policy.lockdown) {
    user = {
      kind: 'user',
      path: userPath,
      origin: userAt.origin,
      exists: existsSync(userPath),
      ignored: true,
    };
  } else {
    user = readLayer('user', userPath, userAt.origin);
  }
  return assembleConfig([managed, user], inputs);
}

/** Merges read layers (managed first, then user) into a LoadedConfig. */
export function assembleConfig(layers: ConfigLayer[], inputs: ConfigInputs): LoadedConfig {
  const pctx = { env: inputs.env, platform: inputs.platform, homeDir: inputs.homeDir };
  const managed = layers.find((l) => l.kind === 'managed');
  const user = layers.find((l) => l.kind === 'user');
  const policy = managedPolicy(managed?.exists ? managed.raw : undefined);
  let merged: Record<string, unknown> = {};
  for (const layer of layers) {
    if (layer.exists && !layer.ignored && isObject(layer.raw)) merged = mergeObjects(merged, layer.raw);
  }
  const origins: Record<string, LayerKind> = {};
  const userRaw = user?.exists && !user.ignored ? user.raw : undefined;
  recordOrigins(merged, '', userRaw, origins);
  return {
    layers,
    merged: merged as KeybrokerConfig,
    origins,
    policy,
    cacheDir: cacheDir(pctx, { ignoreEnv: !policy.environmentDefaults }),
  };
}

/** True when something (a file, a link, even a dangling one) is at `path`. */
function pathPresent(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The managed layer. With a fallback (second stage), a file that stops validating (bad JSON,
 * unknown key, wrong type, unreadable) is replaced by the last copy that validated, so one bad
 * push does not take every laptop down. An unsafe file (exit 6) is never replaced.
 */
function readManagedLayer(file: string, origin: string, fallback: ManagedFallback | undefined): ConfigLayer {
  try {
    const layer = readLayer('managed', file, origin);
    if (layer.exists) fallback?.validate(layer);
    return layer;
  } catch (e) {
    if (!fallback || !isKeybrokerError(e) || e.exitCode !== ExitCode.config) throw e;
    const copy = fallback.lastGood(file);
    if (!copy) throw e;
    return {
      kind: 'managed',
      path: file,
      origin,
      exists: true,
      raw: copy.raw,
      fallback: { error: { code: e.code, message: e.message }, savedAtMs: copy.savedAtMs },
    };
  }
}

/** The managed layer alone (no last-good copy), for what must not depend on the user layer. */
export function readManagedLayerOnly(inputs: ConfigInputs): ConfigLayer {
  const pctx = { env: inputs.env, platform: inputs.platform, homeDir: inputs.homeDir };
  const at = managedConfigPath(pctx, pathPresent);
  return readManagedLayer(expandHome(at.path, inputs.homeDir), at.origin, undefined);
}

/**
 * What the managed file decides for everyone. These keys are read from the managed layer only
 * (validation refuses them in a user file): the user layer, which a repository's settings can
 * select through KEYBROKER_CONFIG, must not loosen them.
 */
export function managedPolicy(managedRaw: unknown): ManagedPolicy {
  const m = isObject(managedRaw) ? managedRaw : {};
  const lockdown = m.allowUserConfig === false;
  return {
    lockdown,
    environmentDefaults: !lockdown || m.environmentDefaults === true,
    maxLifetimeSec: positiveInt(m.maxLifetimeSec) ?? DEFAULTS.maxLifetimeSec,
    ...(typeof m.docsUrl === 'string' && m.docsUrl !== '' ? { docsUrl: m.docsUrl } : {}),
  };
}

function readLayer(kind: LayerKind, file: string, origin: string): ConfigLayer {
  const what = kind === 'managed' ? 'managed config' : 'config';
  const st = statOrMissing(file, lstatSync);
  if (!st) return { kind, path: file, origin, exists: false };
  checkDirectory(dirname(file), what);
  if (st.isSymbolicLink()) {
    // Check where the link points too: whoever may replace the target may change the config.
    let real: string;
    try {
      real = realpathSync(file);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return { kind, path: file, origin, exists: false };
      throw unreadable(file, e);
    }
    checkDirectory(dirname(real), what);
    const target = statOrMissing(real, statSync);
    if (!target) return { kind, path: file, origin, exists: false };
    assertNotWritableByOthers(real, target, `${what} file`);
  } else {
    assertNotWritableByOthers(file, st, `${what} file`);
  }
  if (kind === 'managed' && process.platform === 'win32') assertManagedAclSafe(file, dirname(file));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw unreadable(file, e);
  }
  return { kind, path: file, origin, exists: true, raw: parseConfigText(text, file) };
}

function statOrMissing(file: string, stat: typeof statSync): Stats | undefined {
  try {
    return stat(file);
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
    throw unreadable(file, e);
  }
}

function checkDirectory(dir: string, what: string): void {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    throw unreadable(dir, e);
  }
  // A sticky directory (/tmp) lets others create files but not replace or rename ours;
  // the file itself is still checked.
  if ((st.mode & 0o1000) !== 0) return;
  assertNotWritableByOthers(dir, st, `${what} directory`);
}

function unreadable(file: string, e: unknown) {
  const code = isErrno(e) && e.code ? e.code : 'error';
  return configError('ERR_CONFIG_UNREADABLE', `config ${file}: cannot read it (${code})`, {
    hint: `check that the file is readable by you; ${seeDocs('ERR_CONFIG_UNREADABLE')}`,
    cause: e,
  });
}

/**
 * JSON.parse with an error that names the file and line:column but never quotes the text
 * (Node's own message does, and a config may hold a secret).
 */
export function parseConfigText(text: string, file: string): unknown {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const { line, column, expected } = jsonErrorPosition(text);
    throw configError(
      'ERR_CONFIG_JSON',
      `config ${file}: invalid JSON at line ${line}, column ${column}: ${expected}`,
      { hint: `fix the syntax there; ${seeDocs('ERR_CONFIG_JSON')}` },
    );
  }
  // The merge, origin and template walks recurse: a pathological nesting would overflow the
  // stack (a RangeError, exit 1) instead of being a configuration error.
  if (nestedDeeperThan(parsed, MAX_CONFIG_DEPTH)) {
    throw configError('ERR_CONFIG_JSON', `config ${file}: nested more than ${MAX_CONFIG_DEPTH} levels deep`, {
      hint: `no config needs that; fix the file; ${seeDocs('ERR_CONFIG_JSON')}`,
    });
  }
  return parsed;
}

/** Far deeper than any real config (profiles.<name>.source.claims.<claim> is 5 levels). */
const MAX_CONFIG_DEPTH = 64;

function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Merging

/**
 * Objects merge key by key (later wins), arrays and scalars are replaced. Two exceptions keep
 * a merged result meaningful: a `signingKey` is one of file/env/keychain, so it is replaced
 * whole; and a `source` of another `type`, or a Vault `auth` of another `method`, is a
 * different thing, so the later one replaces the earlier.
 */
export function mergeObjects(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) setOwn(out, k, v);
  for (const [k, v] of Object.entries(over)) {
    const prev = Object.hasOwn(out, k) ? out[k] : undefined;
    if (isObject(prev) && isObject(v) && k !== 'signingKey' && sameKind(k, prev, v)) {
      setOwn(out, k, mergeObjects(prev, v));
    } else {
      setOwn(out, k, v);
    }
  }
  return out;
}

const DISCRIMINATORS: Record<string, string> = { source: 'type', auth: 'method' };

function sameKind(key: string, a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const d = Object.hasOwn(DISCRIMINATORS, key) ? DISCRIMINATORS[key]! : undefined;
  return d === undefined || typeof a[d] !== 'string' || typeof b[d] !== 'string' || a[d] === b[d];
}

function recordOrigins(
  value: unknown,
  pointer: string,
  userRaw: unknown,
  out: Record<string, LayerKind>,
): void {
  if (isObject(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) {
      const key = pointerKey(k);
      recordOrigins(
        v,
        `${pointer}/${key}`,
        isObject(userRaw) && Object.hasOwn(userRaw, k) ? userRaw[k] : undefined,
        out,
      );
    }
    return;
  }
  if (pointer !== '') out[pointer] = userRaw !== undefined ? 'user' : 'managed';
}

// ---------------------------------------------------------------------------------------------
// Resolving one profile

export function selectProfileName(loaded: LoadedConfig, inputs: ConfigInputs): string {
  return profileChoice(loaded, inputs).name;
}

function profileChoice(loaded: LoadedConfig, inputs: ConfigInputs): { name: string; by: string } {
  if (inputs.profileFlag) return { name: inputs.profileFlag, by: '--profile' };
  const fromEnv = inputs.env.KEYBROKER_PROFILE;
  if (fromEnv) return { name: fromEnv, by: 'KEYBROKER_PROFILE' };
  const d = loaded.merged.defaultProfile;
  if (typeof d === 'string' && d !== '') return { name: d, by: 'defaultProfile' };
  return { name: DEFAULTS.profile, by: 'the default' };
}

/** Files that set values, for messages: "/etc/keybroker/config.json and ~/.config/keybroker/config.json". */
export function describeFiles(loaded: LoadedConfig): string {
  const read = loaded.layers.filter((l) => l.exists && !l.ignored).map((l) => l.path);
  if (read.length > 0) return read.join(' and ');
  return `no config file (looked for ${loaded.layers.map((l) => l.path).join(' and ')})`;
}

/**
 * "config <file that set this value>" for errors about one value. For an object, or a key
 * that is missing, the file that set the nearest value below or beside it.
 */
export function locationOf(loaded: LoadedConfig, pointer: string): string {
  let kind: LayerKind | undefined;
  for (let p = pointer; kind === undefined; p = p.slice(0, p.lastIndexOf('/'))) {
    kind = loaded.origins[p];
    const prefix = `${p}/`;
    for (const o in loaded.origins) {
      if (kind !== undefined) break;
      if (o.startsWith(prefix)) kind = loaded.origins[o];
    }
    if (p === '') break;
  }
  const layer = loaded.layers.find((l) => l.kind === kind);
  return `config ${layer ? layer.path : describeFiles(loaded)}`;
}

/** Refuses a profile name that cannot name a cache file (exit 2); `by` says where it came from. */
export function assertProfileName(name: string, by: string): void {
  if (!PROFILE_NAME.test(name)) {
    throw configError(
      'ERR_CONFIG_PROFILE_NAME',
      `profile "${printable(name, '...')}" (from ${by}): not a valid profile name`,
      {
        hint: `use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit; ${seeDocs('ERR_CONFIG_PROFILE_NAME')}`,
      },
    );
  }
}

export function resolveProfile(loaded: LoadedConfig, inputs: ConfigInputs): ResolvedProfile {
  const { name, by } = profileChoice(loaded, inputs);
  assertProfileName(name, by);
  const profiles = isObject(loaded.merged.profiles)
    ? (loaded.merged.profiles as Record<string, unknown>)
    : {};
  const profile = Object.hasOwn(profiles, name) ? profiles[name] : undefined;
  if (!isObject(profile)) {
    const available = Object.keys(profiles);
    throw configError(
      'ERR_CONFIG_UNKNOWN_PROFILE',
      `profile "${name}" (from ${by}): not defined in ${describeFiles(loaded)}`,
      {
        hint: `${available.length > 0 ? `available: ${available.join(', ')}` : 'no profiles are configured'}; ${seeDocs('ERR_CONFIG_UNKNOWN_PROFILE')}`,
      },
    );
  }
  const base = `/profiles/${pointerKey(name)}`;
  const where = (pointer: string) => locationOf(loaded, pointer);
  const rawSource = profile.source;
  if (!isObject(rawSource) || typeof rawSource.type !== 'string') {
    throw configError('ERR_CONFIG_INVALID', `${where(base)}: ${base}/source/type: required key missing`, {
      hint: `give the profile a source with a "type"; ${seeDocs('ERR_CONFIG_INVALID')}`,
    });
  }
  const vars = templateVars(loaded, inputs, name);
  const source = expandTemplatesDeep(rawSource, vars, `${base}/source`, where) as Record<string, unknown>;
  expandPaths(source, inputs.homeDir);
  applySourceDefaults(source, inputs, vars.identity, loaded.policy.environmentDefaults);

  const warnings: string[] = [];
  const cache: CacheConfig = { ...DEFAULTS.cache, ...definedOnly(loaded.merged.cache) };
  const profileTtl = positiveInt(profile.ttlMs);
  const fallbackTtl = profileTtl ?? DEFAULTS.ttlMs;
  let ttlMs = fallbackTtl;
  let ttlOrigin: ResolvedProfile['ttlOrigin'] = profileTtl !== undefined ? 'profile' : 'default';
  const envTtl = inputs.env.CLAUDE_CODE_API_KEY_HELPER_TTL_MS;
  if (envTtl !== undefined && envTtl !== '') {
    const n = /^[0-9]{1,15}$/.test(envTtl) ? Number(envTtl) : 0;
    if (n > 0) {
      ttlMs = n;
      ttlOrigin = 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS';
    } else {
      warnings.push(
        `CLAUDE_CODE_API_KEY_HELPER_TTL_MS="${printable(envTtl, '...')}" is not a positive integer; using ${fallbackTtl} ms`,
      );
    }
  }

  ttlMs = capTtl(ttlMs, ttlOrigin, cache.refreshMarginMs, loaded, warnings);
  capJwtLifetime(source, loaded.policy.maxLifetimeSec, base, warnings);
  const rawAudit = definedOnly(loaded.merged.audit);
  const audit: AuditConfig = { ...DEFAULTS.audit, ...rawAudit };
  if (typeof audit.file === 'string' && audit.file !== '') {
    audit.file = expandHome(expandTemplates(audit.file, vars, '/audit/file', where), inputs.homeDir);
  } else {
    audit.file = auditLogPath({ env: inputs.env, platform: inputs.platform, homeDir: inputs.homeDir });
  }

  return {
    name,
    source: source as unknown as SourceConfig,
    ttlMs,
    ttlOrigin,
    timeoutMs: positiveInt(profile.timeoutMs) ?? DEFAULTS.timeoutMs,
    cache,
    audit,
    cacheKey: cacheKeyFor(
      name,
      source,
      credentialIdentity(source, { ...inputs, cacheDir: loaded.cacheDir, profile: name }),
    ),
    identity: vars.identity,
    policy: loaded.policy,
    cacheDir: loaded.cacheDir,
    proxy: proxySetting(loaded, profile),
    warnings,
  };
}

/**
 * The template variables for profile `name`. `${identity}` is the top-level `identity` (a
 * template itself, e.g. `${env:CORP_USER}` set by device management, or `${user}@corp.example`),
 * else the OS login.
 */
export function templateVars(
  loaded: LoadedConfig,
  inputs: ConfigInputs,
  name: string,
): TemplateVars & { identity: string } {
  const base = { user: inputs.userName, hostname: inputs.hostName, profile: name, env: inputs.env };
  const raw = loaded.merged.identity;
  if (typeof raw !== 'string') return { ...base, identity: inputs.userName };
  const identity = expandTemplates(raw, { ...base, identity: undefined }, '/identity', (p) =>
    locationOf(loaded, p),
  );
  if (identity.trim() === '') {
    throw configError(
      'ERR_CONFIG_IDENTITY',
      `${locationOf(loaded, '/identity')}: /identity: expands to an empty string`,
      {
        hint: `set the variable it names, or change "identity"; ${seeDocs('ERR_CONFIG_IDENTITY')}`,
      },
    );
  }
  return { ...base, identity };
}

/**
 * The managed `maxLifetimeSec` caps every lifetime keybroker derives (contract §3). A minted
 * JWT lives 2 × TTL + margin by default, so the TTL may be at most (cap − margin) / 2: a
 * TTL from CLAUDE_CODE_API_KEY_HELPER_TTL_MS (which a repository's settings can set) never
 * stretches a token past the cap.
 */
function capTtl(
  ttlMs: number,
  origin: ResolvedProfile['ttlOrigin'],
  marginMs: number,
  loaded: LoadedConfig,
  warnings: string[],
): number {
  const capSec = loaded.policy.maxLifetimeSec;
  const maxTtlMs = maxTtlMsFor(capSec, marginMs);
  if (maxTtlMs < 1000) {
    throw configError(
      'ERR_CONFIG_INVALID',
      `${locationOf(loaded, '/maxLifetimeSec')}: /maxLifetimeSec: ${capSec} s leaves no room for a TTL beside the refresh margin (${Math.round(marginMs / 1000)} s)`,
      { hint: `raise maxLifetimeSec or lower cache.refreshMarginMs; ${seeDocs('ERR_CONFIG_INVALID')}` },
    );
  }
  if (ttlMs <= maxTtlMs) return ttlMs;
  const from = origin === 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS' ? 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS' : 'ttlMs';
  warnings.push(
    `${from} ${ttlMs} ms is above what the lifetime cap allows (maxLifetimeSec ${capSec}); using ${maxTtlMs} ms`,
  );
  return maxTtlMs;
}

/** The longest TTL whose default token lifetime (2 × TTL + margin) stays within `capSec`. */
export function maxTtlMsFor(capSec: number, marginMs: number): number {
  return Math.floor((capSec * 1000 - marginMs) / 2);
}

function capJwtLifetime(
  source: Record<string, unknown>,
  capSec: number,
  base: string,
  warnings: string[],
): void {
  if (source.type !== 'jwt' || typeof source.lifetimeSec !== 'number' || source.lifetimeSec <= capSec) return;
  warnings.push(
    `${base}/source/lifetimeSec ${source.lifetimeSec} is above the lifetime cap (maxLifetimeSec ${capSec}); using ${capSec}`,
  );
  source.lifetimeSec = capSec;
}

/**
 * The profile's `"proxy"`, else the top-level one, else `"env"` (contract §3a). Under lockdown
 * (`"allowUserConfig": false`) a top-level `"proxy"` in the managed file wins over every profile.
 */
function proxySetting(loaded: LoadedConfig, profile: Record<string, unknown>): string {
  const managed = loaded.layers.find((l) => l.kind === 'managed')?.raw;
  if (isObject(managed) && managed.allowUserConfig === false && typeof managed.proxy === 'string') {
    return managed.proxy;
  }
  if (typeof profile.proxy === 'string') return profile.proxy;
  return typeof loaded.merged.proxy === 'string' ? loaded.merged.proxy : 'env';
}

/**
 * `<profile>-<16 hex of sha256 of the resolved source and the credential's identity>`
 * (contract §2); key order does not matter, the TTL is not part of it.
 */
export function cacheKeyFor(name: string, source: unknown, credential?: string): string {
  const hash = sha256Hex(stableStringify(credential === undefined ? { source } : { source, credential }));
  return `${name}-${hash.slice(0, 16)}`;
}

/** JSON with object keys sorted at every depth. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => stableStringify(v ?? null)).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function expandPaths(source: Record<string, unknown>, homeDir: string): void {
  for (const k of ['caCert']) {
    if (typeof source[k] === 'string') source[k] = expandHome(source[k], homeDir);
  }
  for (const k of ['signingKey', 'auth', 'clientSecret']) {
    const o = source[k];
    if (!isObject(o)) continue;
    for (const pk of PATH_KEYS) {
      if (typeof o[pk] === 'string') o[pk] = expandHome(o[pk], homeDir);
    }
  }
}

const TRUE_VALUES = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);

const VAULT_ENV = {
  address: ['VAULT_ADDR'],
  namespace: ['VAULT_NAMESPACE'],
  caCert: ['VAULT_CACERT'],
  tlsSkipVerify: ['VAULT_SKIP_VERIFY'],
};

/** Source keys that default to standard environment variables, first set one winning. */
const SOURCE_ENV_DEFAULTS: Record<string, Record<string, readonly string[]>> = {
  vault: VAULT_ENV,
  'vault-identity': VAULT_ENV,
  'aws-secrets-manager': {
    profile: ['AWS_PROFILE'],
    region: ['AWS_REGION', 'AWS_DEFAULT_REGION'],
    endpoint: ['AWS_ENDPOINT_URL_SECRETS_MANAGER', 'AWS_ENDPOINT_URL'],
  },
};

/**
 * Connection settings that, under a managed lockdown (allowUserConfig false) without
 * `"environmentDefaults": true`, are not taken from the environment (contract §3): a
 * repository's settings `env` reaches keybroker and must not redirect or weaken a managed
 * profile. Credential choice (AWS_PROFILE, VAULT_TOKEN) and the region stay the user's.
 */
const LOCKED_DOWN_KEYS: ReadonlySet<string> = new Set([
  'address',
  'namespace',
  'caCert',
  'tlsSkipVerify',
  'endpoint',
]);

/** The variable a source key takes its default from in this environment, if any. */
export function envDefaultName(
  type: string,
  key: string,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const table = Object.hasOwn(SOURCE_ENV_DEFAULTS, type) ? SOURCE_ENV_DEFAULTS[type] : undefined;
  const names = table && Object.hasOwn(table, key) ? table[key] : undefined;
  return names?.find((n) => env[n] !== undefined && env[n] !== '');
}

/**
 * Bakes the environment's standard defaults into the source, so that they are part of the
 * cache key (another VAULT_ADDR is another cache entry) and sources never read them again.
 * A value set in the config always wins.
 */
function applySourceDefaults(
  source: Record<string, unknown>,
  inputs: ConfigInputs,
  identity: string,
  environmentDefaults: boolean,
): void {
  const type = String(source.type);
  const table = Object.hasOwn(SOURCE_ENV_DEFAULTS, type) ? SOURCE_ENV_DEFAULTS[type]! : {};
  for (const key of Object.keys(table)) {
    if (!environmentDefaults && LOCKED_DOWN_KEYS.has(key)) continue;
    if (source[key] !== undefined) continue;
    const name = envDefaultName(type, key, inputs.env);
    if (name === undefined) continue;
    const v = inputs.env[name]!;
    if (key === 'endpoint') refusePlainHttpEndpointFromEnv(name, v);
    if (key !== 'tlsSkipVerify') source[key] = v;
    else if (TRUE_VALUES.has(v)) source[key] = true;
  }
  const fill = (key: string, value: unknown) => {
    if (source[key] === undefined) source[key] = value;
  };
  switch (type) {
    case 'vault':
    case 'vault-identity':
      fill('auth', { method: 'token' });
      break;
    case 'keychain':
      fill('account', inputs.userName);
      break;
    case 'jwt':
      fill('subject', identity);
      fill('claims', { user: identity });
      break;
  }
}

/**
 * An `http://` AWS endpoint from the environment only for this machine (issue 11 finding 15):
 * a repository's settings `env` can set AWS_ENDPOINT_URL, and the signed request and session
 * token must not travel in clear to a host it chose. The config file may name any endpoint.
 */
function refusePlainHttpEndpointFromEnv(name: string, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return; // the format check reports it
  }
  if (url.protocol !== 'http:') return;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)) return;
  throw configError(
    'ERR_AWS_ENDPOINT_HTTP',
    `aws-secrets-manager: ${name} names ${url.origin}, plain http to another machine`,
    {
      hint: `use an https:// endpoint, or name the endpoint in the config file (source.endpoint) if plain http is intended; ${seeDocs('ERR_AWS_ENDPOINT_HTTP')}`,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function isErrno(e: unknown, code?: string): e is NodeJS.ErrnoException {
  return (
    e instanceof Error &&
    typeof (e as NodeJS.ErrnoException).code === 'string' &&
    (code === undefined || (e as NodeJS.ErrnoException).code === code)
  );
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

function definedOnly(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (isObject(v))
    for (const [k, x] of Object.entries(v)) if (x !== undefined && k !== '__proto__') out[k] = x;
  return out;
}
