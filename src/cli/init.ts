/**
 * `keybroker init`: wires keybroker into Claude Code's settings as its apiKeyHelper, with
 * the TTL variable (and optionally the gateway URL), keeping every other key and a backup.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import { isObject, loadConfig } from '../config/load.js';
import { DEFAULTS } from '../config/types.js';
import type { AppContext } from '../context.js';
import {
  readSettingsFile,
  type SettingsScope,
  settingsLocations,
  shellQuote,
  TTL_VAR,
} from '../doctor/claude-settings.js';
import { configError, isKeybrokerError, seeDocs } from '../errors.js';
import { writeFileAtomic } from '../platform/safe-fs.js';

export type InitScope = 'user' | 'project' | 'managed';

export interface InitOptions {
  scope: InitScope;
  profile?: string;
  ttlMs?: number;
  gateway?: string;
  print: boolean;
}

export interface InitResult {
  path: string;
  text: string;
  backup?: string;
  written: boolean;
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
        .option('gateway', { type: 'string', describe: 'also set env.ANTHROPIC_BASE_URL to this URL' })
        .option('print', { type: 'boolean', default: false, describe: 'show the result without writing' }),
    async (argv) => {
      const result = runInit(ctx, {
        scope: argv.scope as InitScope,
        ...(typeof argv.profile === 'string' && argv.profile !== '' ? { profile: argv.profile } : {}),
        ...(argv.ttl !== undefined ? { ttlMs: parseTtl(String(argv.ttl)) } : {}),
        ...(typeof argv.gateway === 'string' ? { gateway: parseGateway(argv.gateway) } : {}),
        print: Boolean(argv.print),
      });
      if (!result.written) {
        ctx.stdout(result.text);
        return;
      }
      const backup = result.backup ? ` (previous version kept as ${result.backup})` : '';
      ctx.stdout(`wrote apiKeyHelper to ${result.path}${backup}\n`);
    },
  );
}

function parseTtl(raw: string): number {
  if (!/^[0-9]{1,15}$/.test(raw) || Number(raw) <= 0) {
    throw configError(
      'ERR_USAGE',
      `usage: --ttl ${printable(raw)}: not a positive whole number of milliseconds`,
      {
        hint: `e.g. --ttl 3600000 for one hour; ${seeDocs('ERR_USAGE')}`,
      },
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
    throw configError('ERR_USAGE', `usage: --gateway ${printable(raw)}: not an http(s) URL`, {
      hint: `e.g. --gateway https://llm-gateway.example.com; ${seeDocs('ERR_USAGE')}`,
    });
  }
  return raw;
}

function printable(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}

/** The settings file a scope writes. */
export function settingsPathFor(ctx: AppContext, scope: InitScope): string {
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

export function helperCommand(execPath: string, profile: string | undefined): string {
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

export function runInit(ctx: AppContext, options: InitOptions): InitResult {
  const file = path.resolve(ctx.cwd, settingsPathFor(ctx, options.scope));
  const current = readSettingsFile(options.scope, file);
  if (current.problem) {
    throw configError('ERR_INIT_SETTINGS_INVALID', `Claude Code settings ${file}: ${current.problem}`, {
      hint: `fix or move the file first; keybroker never overwrites a file it cannot read; ${seeDocs('ERR_INIT_SETTINGS_INVALID')}`,
    });
  }
  const data: Record<string, unknown> = { ...(current.data ?? {}) };
  const oldEnv = data.env;
  if (oldEnv !== undefined && !isObject(oldEnv)) {
    throw configError('ERR_INIT_SETTINGS_INVALID', `Claude Code settings ${file}: "env" is not an object`, {
      hint: `fix or move the file first; keybroker never overwrites a file it cannot read; ${seeDocs('ERR_INIT_SETTINGS_INVALID')}`,
    });
  }
  const ttlMs = options.ttlMs ?? defaultTtl(ctx, options.profile);
  data.apiKeyHelper = helperCommand(path.resolve(ctx.execPath), options.profile);
  const env: Record<string, unknown> = { ...(oldEnv ?? {}) };
  env[TTL_VAR] = String(ttlMs);
  if (options.gateway) env.ANTHROPIC_BASE_URL = options.gateway;
  data.env = env;
  const text = `${JSON.stringify(data, null, 2)}\n`;
  if (options.print) return { path: file, text, written: false };

  try {
    return writeSettings(ctx, file, text, options.scope, current.exists);
  } catch (e) {
    if (isKeybrokerError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw configError('ERR_INIT_WRITE', `Claude Code settings ${file}: cannot write it (${code})`, {
      hint: `${options.scope === 'managed' ? 'the managed file needs root: run it with sudo' : 'check the permissions of the file and its directory'}, or use --print and write it yourself; ${seeDocs('ERR_INIT_WRITE')}`,
    });
  }
}

function writeSettings(
  ctx: AppContext,
  file: string,
  text: string,
  scope: InitScope,
  exists: boolean,
): InitResult {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: scope === 'user' ? 0o700 : 0o755 });
  let target = file;
  let mode = scope === 'user' ? 0o600 : 0o644;
  let backup: string | undefined;
  if (exists) {
    target = fs.realpathSync(file);
    mode = fs.statSync(target).mode & 0o777;
    backup = backupName(file, ctx.now());
    fs.copyFileSync(target, backup, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(backup, mode);
  }
  writeFileAtomic(target, text, mode);
  // writeFileAtomic creates with the process umask applied; keep the intended mode.
  fs.chmodSync(target, mode);
  return backup ? { path: file, text, backup, written: true } : { path: file, text, written: true };
}
