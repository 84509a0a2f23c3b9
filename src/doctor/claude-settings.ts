/**
 * Claude Code's settings files as keybroker sees them: where they are, what they say about
 * apiKeyHelper and its TTL, and which one wins. Shared by `init` (writes) and `doctor` (reads).
 */
import * as fs from 'node:fs';
import { claudeSettingsPaths, type PathContext } from '../platform/paths.js';
import { isObject } from '../platform/text.js';

export type SettingsScope = 'managed' | 'project-local' | 'project' | 'user';

export interface SettingsFile {
  scope: SettingsScope;
  path: string;
  exists: boolean;
  /** The parsed top-level object; undefined when missing or invalid. */
  data?: Record<string, unknown>;
  /** Why the file could not be used (not JSON, not an object, unreadable). */
  problem?: string;
}

/**
 * How Claude Code reaches the model, and the settings `env` keys that choose it. In the
 * pass-through modes Claude Code sends the helper's value only as `Authorization: Bearer`
 * and reruns the helper after a 401 but not after a 403 (measured, docs/gateway.md).
 */
export type GatewayMode = 'messages' | 'bedrock' | 'vertex';
export const GATEWAY_MODES: readonly GatewayMode[] = ['messages', 'bedrock', 'vertex'];

export interface GatewayModeKeys {
  /** The variable holding the gateway URL. */
  baseUrl: string;
  /** The switch that turns the mode on (absent for the Messages API, the default). */
  use?: string;
  /** The switch that stops Claude Code signing with cloud credentials of its own. */
  skipAuth?: string;
  /** Further variables the mode needs (Vertex: project and region). */
  extra: readonly string[];
  /** What doctor and the docs call it. */
  label: string;
}

export const GATEWAY_MODE_KEYS: Readonly<Record<GatewayMode, GatewayModeKeys>> = {
  messages: { baseUrl: 'ANTHROPIC_BASE_URL', extra: [], label: 'Messages API' },
  bedrock: {
    baseUrl: 'ANTHROPIC_BEDROCK_BASE_URL',
    use: 'CLAUDE_CODE_USE_BEDROCK',
    skipAuth: 'CLAUDE_CODE_SKIP_BEDROCK_AUTH',
    extra: [],
    label: 'Bedrock pass-through',
  },
  vertex: {
    baseUrl: 'ANTHROPIC_VERTEX_BASE_URL',
    use: 'CLAUDE_CODE_USE_VERTEX',
    skipAuth: 'CLAUDE_CODE_SKIP_VERTEX_AUTH',
    extra: ['ANTHROPIC_VERTEX_PROJECT_ID', 'CLOUD_ML_REGION'],
    label: 'Vertex pass-through',
  },
};

/** Every `env` key one of the gateway modes sets: `init --gateway` owns these. */
export function gatewayModeVariables(mode: GatewayMode): string[] {
  const k = GATEWAY_MODE_KEYS[mode];
  return [k.baseUrl, ...(k.use ? [k.use] : []), ...(k.skipAuth ? [k.skipAuth] : []), ...k.extra];
}

/** Claude Code's own default when CLAUDE_CODE_API_KEY_HELPER_TTL_MS is unset or invalid. */
export const CLAUDE_DEFAULT_TTL_MS = 300_000;
export const TTL_VAR = 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS';

/**
 * The settings files in precedence order (managed > project-local > project > user).
 * KEYBROKER_CLAUDE_MANAGED_SETTINGS points the managed one elsewhere (tests, unusual installs).
 * When the working directory is the home directory, the project file is the user file and
 * is listed once, as the user's.
 */
export function settingsLocations(
  ctx: PathContext & { cwd: string },
): { scope: SettingsScope; path: string }[] {
  const managedOverride = ctx.env.KEYBROKER_CLAUDE_MANAGED_SETTINGS;
  const all = claudeSettingsPaths(ctx).map((l) =>
    l.scope === 'managed' && managedOverride ? { ...l, path: managedOverride } : l,
  );
  const userPath = all.find((l) => l.scope === 'user')?.path;
  return all.filter((l) => l.scope === 'user' || l.path !== userPath);
}

function readSettingsFile(scope: SettingsScope, file: string): SettingsFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { scope, path: file, exists: false };
    return { scope, path: file, exists: true, problem: `cannot read it (${code ?? 'error'})` };
  }
  return parseSettingsText(scope, file, text);
}

/** A settings file's text as Claude Code reads it (a BOM and an empty file are accepted). */
export function parseSettingsText(scope: SettingsScope, file: string, text: string): SettingsFile {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') return { scope, path: file, exists: true, data: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { scope, path: file, exists: true, problem: 'not valid JSON' };
  }
  if (!isObject(parsed)) {
    return { scope, path: file, exists: true, problem: 'not a JSON object' };
  }
  return { scope, path: file, exists: true, data: parsed };
}

export function readAllSettings(ctx: PathContext & { cwd: string }): SettingsFile[] {
  return settingsLocations(ctx).map((l) => readSettingsFile(l.scope, l.path));
}

export function envBlock(file: SettingsFile): Record<string, unknown> | undefined {
  const env = file.data?.env;
  return isObject(env) ? env : undefined;
}

/** The file whose apiKeyHelper Claude Code uses: the first in precedence order that sets one. */
export function winningHelper(files: SettingsFile[]): { file: SettingsFile; command: string } | undefined {
  for (const f of files) {
    const h = f.data?.apiKeyHelper;
    if (typeof h === 'string' && h.trim() !== '') return { file: f, command: h };
  }
  return undefined;
}

/**
 * The value Claude Code ends up with for an env variable: the highest-precedence settings
 * file's `env` block that sets it, else its own environment.
 */
export function effectiveEnv(
  files: SettingsFile[],
  processEnv: Readonly<Record<string, string | undefined>>,
  name: string,
): { value: string; from: string } | undefined {
  for (const f of files) {
    const v = envBlock(f)?.[name];
    if (v !== undefined && v !== null) return { value: String(v), from: f.path };
  }
  const v = processEnv[name];
  return v !== undefined ? { value: v, from: 'the environment' } : undefined;
}

/** Claude Code's reading of the TTL variable: a positive integer, else its 5-minute default. */
export function parseClaudeTtl(value: string | undefined): { ttlMs: number; valid: boolean } {
  if (value === undefined || value === '') return { ttlMs: CLAUDE_DEFAULT_TTL_MS, valid: true };
  const n = /^[0-9]{1,15}$/.test(value.trim()) ? Number(value.trim()) : 0;
  return n > 0 ? { ttlMs: n, valid: true } : { ttlMs: CLAUDE_DEFAULT_TTL_MS, valid: false };
}

/** Quotes one word for /bin/sh only when it needs it: `/usr/bin/keybroker`, `'/my dir/keybroker'`. */
export function shellQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_./:=@%+,-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Splits a helper command into words the way /bin/sh would for simple commands (quotes and
 * backslashes; no expansions). Enough to see which program it runs and its --profile.
 */
export function splitCommand(cmd: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  while (i < cmd.length) {
    const c = cmd[i]!;
    if (c === "'") {
      const end = cmd.indexOf("'", i + 1);
      cur += end < 0 ? cmd.slice(i + 1) : cmd.slice(i + 1, end);
      inWord = true;
      i = end < 0 ? cmd.length : end + 1;
    } else if (c === '"') {
      i++;
      while (i < cmd.length && cmd[i] !== '"') {
        if (cmd[i] === '\\' && i + 1 < cmd.length && '"\\$`'.includes(cmd[i + 1]!)) i++;
        cur += cmd[i];
        i++;
      }
      i++;
      inWord = true;
    } else if (c === '\\' && i + 1 < cmd.length) {
      cur += cmd[i + 1];
      inWord = true;
      i += 2;
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      i++;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** What a helper command runs: the program, and the profile it passes (if any). */
export function parseHelper(cmd: string): { program: string; profile?: string; args: string[] } {
  const words = splitCommand(cmd);
  // Skip leading VAR=value assignments and `exec`/`env`.
  let i = 0;
  while (
    i < words.length &&
    (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!) || words[i] === 'exec' || words[i] === 'env')
  ) {
    i++;
  }
  const program = words[i] ?? '';
  const args = words.slice(i + 1);
  let profile: string | undefined;
  for (let j = 0; j < args.length; j++) {
    const a = args[j]!;
    if (a === '--profile' && args[j + 1] !== undefined) profile = args[j + 1];
    else if (a.startsWith('--profile=')) profile = a.slice('--profile='.length);
  }
  return profile === undefined ? { program, args } : { program, profile, args };
}
