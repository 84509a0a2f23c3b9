/**
 * `keybroker config validate|schema|path|show` (contract §4): the files read, their validation,
 * the JSON Schema, and the merged config with each value's layer and secrets redacted.
 */
import * as fs from 'node:fs';
import type { Argv } from 'yargs';
import {
  assembleConfig,
  type ConfigInputs,
  describeFiles,
  envDefaultName,
  isObject,
  type LoadedConfig,
  loadConfig,
  managedPolicy,
  parseConfigText,
  resolveProfile,
  selectProfileName,
} from '../config/load.js';
import { pointerKey, usesEnvTemplate } from '../config/templates.js';
import type { ConfigLayer, ResolvedProfile } from '../config/types.js';
import { configJsonSchema, validateConfig } from '../config/validate.js';
import type { AppContext } from '../context.js';
import { configError, seeDocs } from '../errors.js';
import { redactUrls } from '../output/redact.js';
import { expandHome, managedConfigPath, userConfigPath } from '../platform/paths.js';
import { configInputs } from './token.js';

const REDACTED = '[redacted]';

/** Keys whose literal value is a credential, whatever layer set it. */
const SECRET_KEYS = new Set(['roleId']);

interface JsonFlag {
  json?: boolean;
}

export function register(y: Argv, ctx: AppContext): Argv {
  const json = { json: { type: 'boolean' as const, describe: 'print JSON' } };
  return y.command(
    'config',
    'show, validate and explain the configuration',
    (c) =>
      c
        .command(
          'validate [file]',
          'check the config files against the schema, or a candidate FILE as the layer named',
          (v: Argv) =>
            v
              .positional('file', {
                type: 'string',
                describe: 'a candidate config file to check before pushing it',
              })
              .option('layer', {
                choices: ['managed', 'user'] as const,
                default: 'user' as const,
                describe: 'the layer FILE is meant for',
              }),
          (a: { file?: string; layer?: 'managed' | 'user' }) =>
            a.file === undefined ? runValidate(ctx) : runValidateCandidate(ctx, a.file, a.layer ?? 'user'),
        )
        .command('schema', 'print the JSON Schema of a config file', {}, () => runSchema(ctx))
        .command('path', 'list the config files read, in merge order', json, (a: JsonFlag) => runPath(ctx, a))
        .command(
          'show',
          "print the merged config, each value's layer, and the selected profile as resolved (secrets redacted)",
          json,
          (a: JsonFlag) => runShow(ctx, a),
        ),
    () => {
      throw configError(
        'ERR_USAGE',
        'usage: keybroker config needs a subcommand: validate, schema, path or show',
        {
          hint: 'run keybroker config --help',
        },
      );
    },
  );
}

function runValidate(ctx: AppContext): void {
  const inputs = configInputs(ctx);
  const loaded = loadConfig(inputs);
  // Every ${env:NAME} must be set here: validation names the one that is not.
  validateConfig(loaded, inputs, { requireEnv: true });
  ctx.stdout(`${validateSummary(loaded)}\n`);
}

/**
 * `config validate FILE --layer managed|user`: a candidate checked before it is pushed. A
 * managed candidate is checked alone, as the whole config it will be; a user candidate on top
 * of this machine's managed file. Its mode is a warning here (a CI checkout is 0664), not the
 * exit 6 it is where keybroker reads it. A `${env:NAME}` unset here is a warning: the laptops
 * set it, and its value is checked where it is set.
 */
function runValidateCandidate(ctx: AppContext, file: string, kind: 'managed' | 'user'): void {
  const inputs = configInputs(ctx);
  const path = expandHome(file, inputs.homeDir);
  let text: string;
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw configError('ERR_CONFIG_UNREADABLE', `config ${path}: cannot read it (${code})`, {
      hint: `check the path and that the file is readable by you; ${seeDocs('ERR_CONFIG_UNREADABLE')}`,
    });
  }
  const mode = looseModeWarning(path, st, kind);
  if (mode) ctx.logger.warn(mode);
  const candidate: ConfigLayer = {
    kind,
    path,
    origin: 'candidate',
    exists: true,
    raw: parseConfigText(text, path),
  };
  const layers: ConfigLayer[] = [candidate];
  if (kind === 'user') {
    const managed = loadConfig(inputs).layers.find((l) => l.kind === 'managed')!;
    if (managedPolicy(managed.exists ? managed.raw : undefined).lockdown) {
      ctx.logger.warn(
        `warning: ${managed.path} sets "allowUserConfig": false: a user config is ignored on this machine`,
      );
    }
    layers.unshift(managed);
  }
  const loaded = assembleConfig(layers, inputs);
  validateConfig(loaded, inputs, { requireEnv: false });
  for (const name of unsetTemplateVariables(candidate.raw, inputs.env)) {
    ctx.logger.warn(
      `warning: ${path}: environment variable ${name} is not set here; values that use \${env:${name}} are checked where it is set`,
    );
  }
  ctx.stdout(
    `config ok: ${path} (as the ${kind} layer); profiles: ${Object.keys(isObject(loaded.merged.profiles) ? loaded.merged.profiles : {}).join(', ') || 'none'}\n`,
  );
}

/** What keybroker would refuse where it reads the file (contract §3), said as a warning. */
function looseModeWarning(path: string, st: fs.Stats, kind: 'managed' | 'user'): string | undefined {
  if (process.platform === 'win32' || (st.mode & 0o022) === 0) return undefined;
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  const install = kind === 'managed' ? 'install it owned by root, mode 0644' : 'install it with mode 0600';
  return `warning: ${path}: writable by others (mode ${mode}); keybroker refuses such a file where it reads it (${install})`;
}

/** The `${env:NAME}` variables that the value uses and that are unset in `env`. */
function unsetTemplateVariables(value: unknown, env: Readonly<Record<string, string | undefined>>): string[] {
  const names = new Set<string>();
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      for (const m of v.matchAll(/\$\{env:([^}]+)\}/g)) if (env[m[1]!] === undefined) names.add(m[1]!);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (isObject(v)) Object.values(v).forEach(walk);
  };
  walk(value);
  return [...names];
}

/** `config ok: <file> (managed), <file> (user); profiles: a, b`. */
function validateSummary(loaded: LoadedConfig): string {
  const read = loaded.layers.filter((l) => l.exists && !l.ignored).map((l) => `${l.path} (${l.kind})`);
  const profiles = isObject(loaded.merged.profiles) ? Object.keys(loaded.merged.profiles) : [];
  const ignored = loaded.layers.find((l) => l.ignored);
  return (
    `config ok: ${read.length > 0 ? read.join(', ') : describeFiles(loaded)}; ` +
    `profiles: ${profiles.length > 0 ? profiles.join(', ') : 'none'}` +
    (ignored ? `; ${ignored.path} ignored (the managed config sets allowUserConfig to false)` : '')
  );
}

function runSchema(ctx: AppContext): void {
  ctx.stdout(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
}

interface PathRow {
  layer: 'managed' | 'user';
  path: string;
  origin: string;
  exists: boolean;
  ignored: boolean;
}

function runPath(ctx: AppContext, args: JsonFlag): void {
  const inputs = configInputs(ctx);
  let rows: PathRow[];
  let failure: unknown;
  try {
    rows = loadConfig(inputs).layers.map(toRow);
  } catch (e) {
    // Still say where the files are; the reason they cannot be used follows on stderr.
    failure = e;
    rows = plainLayers(inputs).map(toRow);
  }
  if (args.json) ctx.stdout(`${JSON.stringify(rows, null, 2)}\n`);
  else ctx.stdout(rows.map(pathLine).join(''));
  if (failure !== undefined) throw failure;
}

function toRow(l: ConfigLayer): PathRow {
  return { layer: l.kind, path: l.path, origin: l.origin, exists: l.exists, ignored: l.ignored === true };
}

function plainLayers(inputs: ConfigInputs): ConfigLayer[] {
  const pctx = { env: inputs.env, platform: inputs.platform, homeDir: inputs.homeDir };
  const m = managedConfigPath(pctx, (p) => fs.existsSync(p));
  const u = userConfigPath(pctx, inputs.configFlag);
  const exists = (p: string) => fs.existsSync(p);
  const mp = expandHome(m.path, inputs.homeDir);
  const up = expandHome(u.path, inputs.homeDir);
  return [
    { kind: 'managed', path: mp, origin: m.origin, exists: exists(mp) },
    { kind: 'user', path: up, origin: u.origin, exists: exists(up) },
  ];
}

function pathLine(r: PathRow): string {
  const how = r.origin === 'default' ? 'default location' : `from ${r.origin}`;
  const state = r.ignored
    ? 'ignored: the managed config sets allowUserConfig to false'
    : r.exists
      ? 'exists'
      : 'missing';
  return `${r.layer.padEnd(7)} ${r.path}  (${how}; ${state})\n`;
}

// ---------------------------------------------------------------------------------------------
// show

interface ShownValue {
  value: unknown;
  layer: string;
}

interface ShowResult {
  files: PathRow[];
  values: Record<string, ShownValue>;
  profile?: { name: string; values: Record<string, ShownValue> };
}

function runShow(ctx: AppContext, args: JsonFlag): void {
  const inputs = configInputs(ctx);
  const loaded = loadConfig(inputs);
  const result = showConfig(loaded, inputs);
  if (args.json) {
    ctx.stdout(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines: string[] = [];
  for (const f of result.files) lines.push(`# ${pathLine(f).trimEnd()}`);
  for (const [p, v] of Object.entries(result.values)) lines.push(valueLine(p, v));
  if (result.profile) {
    lines.push(
      '',
      `# profile "${result.profile.name}", resolved (templates, ~ and environment defaults applied)`,
    );
    for (const [p, v] of Object.entries(result.profile.values)) lines.push(valueLine(p, v));
  }
  ctx.stdout(`${lines.join('\n')}\n`);
}

function valueLine(pointer: string, v: ShownValue): string {
  return `${pointer} = ${v.value === REDACTED ? REDACTED : JSON.stringify(v.value)}  (${v.layer})`;
}

/**
 * Everything `config show` prints. The merged values as written, with their layer; then the
 * selected profile as the token path will use it, each value with where it came from. A
 * value that takes part of itself from `${env:...}`, and credential keys, are redacted.
 */
function showConfig(loaded: LoadedConfig, inputs: ConfigInputs): ShowResult {
  const values: Record<string, ShownValue> = {};
  for (const [pointer, layer] of Object.entries(loaded.origins)) {
    const raw = valueAt(loaded.merged, pointer);
    values[pointer] = { value: redactRaw(pointer, raw), layer };
  }
  const result: ShowResult = { files: loaded.layers.map(toRow), values };
  const name = selectProfileName(loaded, inputs);
  const profiles = isObject(loaded.merged.profiles) ? loaded.merged.profiles : {};
  const askedFor = Boolean(inputs.profileFlag || inputs.env.KEYBROKER_PROFILE);
  if (!askedFor && !Object.hasOwn(profiles, name)) return result;
  const resolved = resolveProfile(loaded, inputs);
  result.profile = { name: resolved.name, values: resolvedValues(loaded, resolved, inputs) };
  return result;
}

function resolvedValues(
  loaded: LoadedConfig,
  resolved: ResolvedProfile,
  inputs: ConfigInputs,
): Record<string, ShownValue> {
  const out: Record<string, ShownValue> = {};
  const base = `/profiles/${pointerKey(resolved.name)}`;
  const type = resolved.source.type;
  for (const [p, v] of leaves(resolved.source, '/source')) {
    const configPointer = `${base}${p}`;
    const layer = loaded.origins[configPointer];
    const raw = valueAt(loaded.merged, configPointer);
    let from: string;
    if (layer !== undefined) from = layer;
    else {
      const key = p.split('/')[2] ?? '';
      const envName = p.split('/').length === 3 ? envDefaultName(type, key, inputs.env) : undefined;
      from = envName ? `env ${envName}` : 'default';
    }
    const secret = hasEnvTemplate(raw) || isSecretPointer(p);
    out[p] = { value: secret ? REDACTED : redactUrl(v), layer: from };
  }
  out['/ttlMs'] = {
    value: resolved.ttlMs,
    layer:
      resolved.ttlOrigin === 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS'
        ? 'env CLAUDE_CODE_API_KEY_HELPER_TTL_MS'
        : resolved.ttlOrigin === 'profile'
          ? (loaded.origins[`${base}/ttlMs`] ?? 'profile')
          : 'default',
  };
  out['/timeoutMs'] = { value: resolved.timeoutMs, layer: loaded.origins[`${base}/timeoutMs`] ?? 'default' };
  for (const [k, v] of Object.entries(resolved.cache)) {
    out[`/cache/${k}`] = { value: v, layer: loaded.origins[`/cache/${k}`] ?? 'default' };
  }
  for (const [k, v] of Object.entries(resolved.audit)) {
    const layer = loaded.origins[`/audit/${k}`];
    out[`/audit/${k}`] = { value: v, layer: layer ?? 'default' };
  }
  out['/cacheKey'] = { value: resolved.cacheKey, layer: 'derived' };
  return out;
}

/** True when any string in the value (arrays included) takes part of itself from `${env:...}`. */
function hasEnvTemplate(v: unknown): boolean {
  if (typeof v === 'string') return usesEnvTemplate(v);
  if (Array.isArray(v)) return v.some(hasEnvTemplate);
  if (isObject(v)) return Object.values(v).some(hasEnvTemplate);
  return false;
}

function redactRaw(pointer: string, raw: unknown): unknown {
  if (isSecretPointer(pointer)) return REDACTED;
  return redactUrl(raw);
}

function isSecretPointer(pointer: string): boolean {
  const last = pointer.slice(pointer.lastIndexOf('/') + 1);
  return SECRET_KEYS.has(last);
}

/** `https://user:pass@host` → `https://user:***@host` (the one URL redaction, output/redact.ts). */
function redactUrl(v: unknown): unknown {
  return typeof v === 'string' ? redactUrls(v) : v;
}

function leaves(value: unknown, pointer: string): [string, unknown][] {
  if (isObject(value) && Object.keys(value).length > 0) {
    return Object.entries(value).flatMap(([k, v]) => leaves(v, `${pointer}/${pointerKey(k)}`));
  }
  return [[pointer, value]];
}

function valueAt(root: unknown, pointer: string): unknown {
  let cur: unknown = root;
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObject(cur) || !Object.hasOwn(cur, key)) return undefined;
    cur = cur[key];
  }
  return cur;
}
