/**
 * `keybroker init`: wires keybroker into Claude Code's settings as its apiKeyHelper, with
 * the TTL variable (and optionally the gateway URL), keeping every other key and a backup.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import { assertProfileName, isObject, loadConfig } from '../config/load.js';
import { DEFAULTS } from '../config/types.js';
import type { AppContext } from '../context.js';
import {
  GATEWAY_MODE_KEYS,
  GATEWAY_MODES,
  type GatewayMode,
  gatewayModeVariables,
  parseSettingsText,
  type SettingsFile,
  type SettingsScope,
  settingsLocations,
  shellQuote,
  TTL_VAR,
} from '../doctor/claude-settings.js';
import { configError, isKeybrokerError, seeDocs, unsafeError } from '../errors.js';
import { assertNotWritableByOthers, writeFileAtomic } from '../platform/safe-fs.js';
import { printable } from '../platform/text.js';

export type InitScope = 'user' | 'project' | 'managed';

export interface GatewayOptions {
  url: string;
  mode: GatewayMode;
  /** Vertex only: ANTHROPIC_VERTEX_PROJECT_ID and CLOUD_ML_REGION. */
  vertexProject?: string;
  vertexRegion?: string;
}

export interface InitOptions {
  scope: InitScope;
  profile?: string;
  ttlMs?: number;
  gateway?: GatewayOptions;
  print: boolean;
}

export interface InitResult {
  path: string;
  text: string;
  backup?: string;
  /** False for --print, and when the file already says exactly this. */
  written: boolean;
  unchanged?: boolean;
  /** What doctor would warn about in the result, said at once (one line each). */
  warnings: string[];
}

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'init',
    "write keybroker into Claude Code's settings as apiKeyHelper",
    (yy) =>
      yy
        .option('scope', {
          choices: ['user', 'project', 'managed'] as const,
          default: 'user' as const,
          describe:
            'which settings file: ~/.claude/settings.json, .claude/settings.json, or the managed file',
        })
        .option('ttl', {
          type: 'string',
          describe: 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS to set (default: the profile ttlMs, else 300000)',
        })
        .option('gateway', {
          type: 'string',
          describe: 'also set the gateway address for --mode (messages: env.ANTHROPIC_BASE_URL)',
        })
        .option('mode', {
          choices: GATEWAY_MODES,
          describe: 'how Claude Code reaches the gateway: messages (default), bedrock or vertex pass-through',
        })
        .option('vertex-project', { type: 'string', describe: 'ANTHROPIC_VERTEX_PROJECT_ID (--mode vertex)' })
        .option('vertex-region', { type: 'string', describe: 'CLOUD_ML_REGION (--mode vertex)' })
        .option('print', { type: 'boolean', default: false, describe: 'show the result without writing' }),
    async (argv) => {
      const profile = typeof argv.profile === 'string' && argv.profile !== '' ? argv.profile : undefined;
      if (profile !== undefined) assertProfileName(profile, '--profile');
      const gateway = parseGatewayOptions({
        gateway: argv.gateway,
        mode: argv.mode,
        vertexProject: argv['vertex-project'],
        vertexRegion: argv['vertex-region'],
      });
      const result = runInit(ctx, {
        scope: argv.scope as InitScope,
        ...(profile !== undefined ? { profile } : {}),
        ...(argv.ttl !== undefined ? { ttlMs: parseTtl(String(argv.ttl)) } : {}),
        ...(gateway ? { gateway } : {}),
        print: Boolean(argv.print),
      });
      for (const w of result.warnings) ctx.logger.warn(`warning: ${w}`);
      if (result.unchanged) {
        ctx.stdout(`${result.path} already has these settings; nothing written\n`);
        return;
      }
      if (!result.written) {
        ctx.stdout(result.text);
        return;
      }
      const backup = result.backup ? ` (previous version kept as ${result.backup})` : '';
      ctx.stdout(`wrote apiKeyHelper to ${result.path}${backup}\n`);
    },
  );
}

function usage(message: string, hint: string): Error {
  return configError('ERR_USAGE', `usage: ${message}`, { hint: `${hint}; ${seeDocs('ERR_USAGE')}` });
}

function parseGatewayOptions(raw: {
  gateway: unknown;
  mode: unknown;
  vertexProject: unknown;
  vertexRegion: unknown;
}): GatewayOptions | undefined {
  const mode = (raw.mode as GatewayMode | undefined) ?? 'messages';
  const project = typeof raw.vertexProject === 'string' ? raw.vertexProject : undefined;
  const region = typeof raw.vertexRegion === 'string' ? raw.vertexRegion : undefined;
  if (typeof raw.gateway !== 'string') {
    if (raw.mode !== undefined)
      throw usage('--mode needs --gateway URL', 'e.g. --gateway https://llm.example.com --mode bedrock');
    if (project !== undefined || region !== undefined) {
      throw usage(
        '--vertex-project and --vertex-region need --gateway URL --mode vertex',
        'e.g. --gateway https://llm.example.com/vertex_ai/v1 --mode vertex --vertex-project P --vertex-region R',
      );
    }
    return undefined;
  }
  const url = parseGateway(raw.gateway);
  if (mode !== 'vertex') {
    if (project !== undefined || region !== undefined) {
      throw usage(
        `--vertex-project and --vertex-region belong to --mode vertex, not ${mode}`,
        'drop them, or use --mode vertex',
      );
    }
    return { url, mode };
  }
  for (const [flag, value] of [
    ['--vertex-project', project],
    ['--vertex-region', region],
  ] as const) {
    if (value === undefined || !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/.test(value)) {
      throw usage(
        `${flag} ${value === undefined ? 'is missing' : `${printable(value)}: not a project id or region name`}: --mode vertex puts it in every request path`,
        'e.g. --vertex-project my-gcp-project --vertex-region us-east5',
      );
    }
  }
  return { url, mode, vertexProject: project!, vertexRegion: region! };
}

function parseTtl(raw: string): number {
  if (!/^[0-9]{1,15}$/.test(raw) || Number(raw) <= 0) {
    throw usage(
      `--ttl ${printable(raw)}: not a positive whole number of milliseconds`,
      'e.g. --ttl 3600000 for one hour',
    );
  }
  return Number(raw);
}

function parseGateway(raw: string): string {
  let u: URL | undefined;
  try {
    u = new URL(raw);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) {
    throw usage(
      `--gateway ${printable(raw)}: not an http(s) URL`,
      'e.g. --gateway https://llm-gateway.example.com',
    );
  }
  return raw;
}

/** The settings file a scope writes. */
function settingsPathFor(ctx: AppContext, scope: InitScope): string {
  const want: SettingsScope = scope;
  const all = settingsLocations({ env: ctx.env, platform: ctx.platform, homeDir: ctx.homeDir, cwd: ctx.cwd });
  const found = all.find((l) => l.scope === want);
  // In the home directory the project file is the user file.
  return found ? found.path : all.find((l) => l.scope === 'user')!.path;
}

/** The TTL to write: --ttl, else the profile's ttlMs from the config, else the default. */
function defaultTtl(ctx: AppContext, profile: string | undefined): number {
  try {
    const loaded = loadConfig({
      env: ctx.env,
      platform: ctx.platform,
      homeDir: ctx.homeDir,
      userName: ctx.userName,
      hostName: ctx.hostName,
      ...(ctx.globals.config ? { configFlag: ctx.globals.config } : {}),
    });
    const profiles = isObject(loaded.merged.profiles) ? loaded.merged.profiles : {};
    const name =
      profile ?? ctx.env.KEYBROKER_PROFILE ?? (loaded.merged.defaultProfile || undefined) ?? DEFAULTS.profile;
    const p = Object.hasOwn(profiles, name) ? profiles[name] : undefined;
    if (!p) {
      ctx.logger.warn(
        `warning: profile "${name}" is not defined in the keybroker config yet; run keybroker doctor once it is`,
      );
      return DEFAULTS.ttlMs;
    }
    const ttl = (p as { ttlMs?: unknown }).ttlMs;
    return typeof ttl === 'number' && Number.isSafeInteger(ttl) && ttl > 0 ? ttl : DEFAULTS.ttlMs;
  } catch {
    // A broken config is doctor's business; init still writes the wiring.
    return DEFAULTS.ttlMs;
  }
}

function helperCommand(execPath: string, profile: string | undefined): string {
  return profile ? `${shellQuote(execPath)} --profile ${shellQuote(profile)}` : shellQuote(execPath);
}

/** Backup name: settings.json.bak-20261129T102200Z (UTC, to the second). */
function backupName(file: string, nowMs: number): string {
  const stamp = new Date(nowMs)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  let candidate = `${file}.bak-${stamp}`;
  for (let n = 1; fs.existsSync(candidate); n++) candidate = `${file}.bak-${stamp}-${n}`;
  return candidate;
}

/** The env block after `--gateway`: the chosen mode's keys set, the other modes' keys removed. */
function withGateway(env: Record<string, unknown>, gateway: GatewayOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...env };
  const mine = new Set(gatewayModeVariables(gateway.mode));
  for (const m of GATEWAY_MODES) for (const k of gatewayModeVariables(m)) if (!mine.has(k)) delete out[k];
  const keys = GATEWAY_MODE_KEYS[gateway.mode];
  out[keys.baseUrl] = gateway.url;
  if (keys.use) out[keys.use] = '1';
  if (keys.skipAuth) out[keys.skipAuth] = '1';
  if (gateway.mode === 'vertex') {
    out.ANTHROPIC_VERTEX_PROJECT_ID = gateway.vertexProject;
    out.CLOUD_ML_REGION = gateway.vertexRegion;
  }
  return out;
}

/** What `doctor` would warn about in the settings init is about to write, said up front. */
function wiringWarnings(
  scope: InitScope,
  file: string,
  env: Record<string, unknown>,
  gateway?: GatewayOptions,
): string[] {
  const out: string[] = [];
  if (scope === 'project') {
    out.push(
      `the project file ${file} now sets apiKeyHelper; it runs without a trust prompt in claude -p mode, for everyone who clones this repository (use --scope user or --scope managed unless that is what you want)`,
    );
  }
  const passThrough = gateway && gateway.mode !== 'messages';
  for (const [name, header] of [
    ['ANTHROPIC_AUTH_TOKEN', 'Authorization'],
    ['ANTHROPIC_API_KEY', 'X-Api-Key'],
  ] as const) {
    if (env[name] === undefined) continue;
    out.push(
      passThrough
        ? `${file} also sets ${name}; in ${GATEWAY_MODE_KEYS[gateway.mode].label} mode Claude Code must send keybroker's token as Authorization: Bearer: remove ${name}`
        : `${file} also sets ${name}: Claude Code sends it in ${header} instead of keybroker's token; remove it`,
    );
  }
  return out;
}

function runInit(ctx: AppContext, options: InitOptions): InitResult {
  const file = path.resolve(ctx.cwd, settingsPathFor(ctx, options.scope));
  let current: OpenedSettings;
  try {
    current = openSettings(options.scope, file);
  } catch (e) {
    throw asInitError(e, file, options.scope);
  }
  if (current.parsed.problem) {
    throw configError(
      'ERR_INIT_SETTINGS_INVALID',
      `Claude Code settings ${file}: ${current.parsed.problem}`,
      {
        hint: `fix or move the file first; keybroker never overwrites a file it cannot read; ${seeDocs('ERR_INIT_SETTINGS_INVALID')}`,
      },
    );
  }
  const data: Record<string, unknown> = { ...(current.parsed.data ?? {}) };
  const oldEnv = data.env;
  if (oldEnv !== undefined && !isObject(oldEnv)) {
    throw configError('ERR_INIT_SETTINGS_INVALID', `Claude Code settings ${file}: "env" is not an object`, {
      hint: `fix or move the file first; keybroker never overwrites a file it cannot read; ${seeDocs('ERR_INIT_SETTINGS_INVALID')}`,
    });
  }
  const ttlMs = options.ttlMs ?? defaultTtl(ctx, options.profile);
  data.apiKeyHelper = helperCommand(path.resolve(ctx.execPath), options.profile);
  let env: Record<string, unknown> = { ...(oldEnv ?? {}) };
  env[TTL_VAR] = String(ttlMs);
  if (options.gateway) env = withGateway(env, options.gateway);
  data.env = env;
  const text = `${JSON.stringify(data, null, 2)}\n`;
  const warnings = wiringWarnings(options.scope, file, env, options.gateway);
  if (options.print) return { path: file, text, written: false, warnings };
  // Device management runs the same init every hour: the same settings are not rewritten.
  if (current.parsed.data && JSON.stringify(current.parsed.data) === JSON.stringify(data)) {
    return { path: file, text, written: false, unchanged: true, warnings };
  }

  try {
    return { ...writeSettings(ctx, current, text, options.scope), warnings };
  } catch (e) {
    throw asInitError(e, file, options.scope);
  }
}

function asInitError(e: unknown, file: string, scope: InitScope): unknown {
  if (isKeybrokerError(e)) return e;
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  return configError('ERR_INIT_WRITE', `Claude Code settings ${file}: cannot write it (${code})`, {
    hint: `${scope === 'managed' ? 'the managed file needs root: run it with sudo' : 'check the permissions of the file and its directory'}, or use --print and write it yourself; ${seeDocs('ERR_INIT_WRITE')}`,
  });
}

interface OpenedSettings {
  /** The path Claude Code reads. */
  file: string;
  /** The file init rewrites: `file`, or where a user's own symlink at `file` points. */
  target: string;
  parsed: SettingsFile;
  /** The existing target's bytes (for the backup) and mode (kept on rewrite). */
  raw?: Buffer;
  mode?: number;
}

function symlinkRefusal(p: string, what: string): Error {
  return unsafeError('ERR_UNSAFE_SYMLINK', `${what} ${p}: is a symbolic link`, {
    hint: `a repository can plant a link there to make init rewrite another file; replace the link with a plain ${what === 'settings directory' ? 'directory' : 'file'}, or use --scope user; ${seeDocs('ERR_UNSAFE_SYMLINK')}`,
  });
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/**
 * Finds and reads the settings file init is about to rewrite, without following a link a
 * repository could have planted (contract §7): in the project scope a symlinked `.claude` or
 * `settings.json` is refused; in the user and managed scopes a link (a dotfiles manager's) is
 * followed to its target, which must be ours (or root's) and not writable by others, like
 * the directory the new file and the backup go to.
 */
function openSettings(scope: InitScope, file: string): OpenedSettings {
  const dir = path.dirname(file);
  const dirSt = lstatOrUndefined(dir);
  if (scope === 'project' && dirSt?.isSymbolicLink()) throw symlinkRefusal(dir, 'settings directory');
  let target = file;
  const st = lstatOrUndefined(file);
  if (st?.isSymbolicLink()) {
    if (scope === 'project') throw symlinkRefusal(file, 'settings file');
    target = fs.realpathSync(file);
  }
  const targetDir = path.dirname(target);
  const tdSt = lstatOrUndefined(targetDir);
  if (tdSt) assertNotWritableByOthers(targetDir, fs.statSync(targetDir), 'settings directory');
  if (!st) return { file, target, parsed: { scope, path: file, exists: false } };
  // O_NOFOLLOW: the target was checked above; a link swapped in since is refused, not followed.
  let fd: number;
  try {
    fd = fs.openSync(target, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkRefusal(target, 'settings file');
    throw e;
  }
  try {
    const tst = fs.fstatSync(fd);
    if (!tst.isFile()) {
      throw unsafeError('ERR_UNSAFE_FILE_TYPE', `settings file ${target}: not a regular file`, {
        hint: `replace it with a regular file; ${seeDocs('ERR_UNSAFE_FILE_TYPE')}`,
      });
    }
    assertNotWritableByOthers(target, tst, 'settings file');
    const raw = fs.readFileSync(fd);
    return {
      file,
      target,
      parsed: parseSettingsText(scope, file, raw.toString('utf8')),
      raw,
      mode: tst.mode & 0o777,
    };
  } finally {
    fs.closeSync(fd);
  }
}

function writeSettings(
  ctx: AppContext,
  current: OpenedSettings,
  text: string,
  scope: InitScope,
): Omit<InitResult, 'warnings'> {
  const { file, target } = current;
  if (!fs.existsSync(path.dirname(target))) {
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: scope === 'user' ? 0o700 : 0o755 });
  }
  const mode = current.mode ?? (scope === 'user' ? 0o600 : 0o644);
  let backup: string | undefined;
  if (current.raw) {
    // Beside the real target, private: the old settings may hold keys of their own.
    backup = backupName(target, ctx.now());
    const fd = fs.openSync(
      backup,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      0o600,
    );
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeSync(fd, current.raw);
    } finally {
      fs.closeSync(fd);
    }
  }
  // A new file renamed over the old name: a link planted meanwhile is replaced, not followed.
  writeFileAtomic(target, text, mode);
  // writeFileAtomic creates with the process umask applied; keep the intended mode.
  fs.chmodSync(target, mode);
  return backup ? { path: file, text, backup, written: true } : { path: file, text, written: true };
}
