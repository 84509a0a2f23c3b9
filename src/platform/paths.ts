/**
 * Every well-known location of contract §2-§5, per OS. Pure: env, platform and home come in.
 */
import { win32 as pathWin32, posix } from 'node:path';

export interface PathContext {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  homeDir: string;
}

function join(ctx: PathContext, ...parts: string[]): string {
  return ctx.platform === 'win32' ? pathWin32.join(...parts) : posix.join(...parts);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v !== '' ? v : undefined;
}

/** Where the platform team's managed config lives on this OS (contract §3). */
function systemManagedConfigPath(ctx: PathContext): string {
  switch (ctx.platform) {
    case 'darwin':
      return '/Library/Application Support/keybroker/config.json';
    case 'win32':
      // Not from %ProgramData%: any user can set that variable (issue 11, finding 13).
      return 'C:\\ProgramData\\keybroker\\config.json';
    default:
      return '/etc/keybroker/config.json';
  }
}

/**
 * The managed layer's file. `KEYBROKER_MANAGED_CONFIG` names it only where no system managed
 * file exists (tests, unusual installs): a variable that a repository's settings `env` can set
 * must never replace the platform team's file. `systemFileExists` is asked about the system
 * path itself (a dangling symlink there counts as present).
 */
export function managedConfigPath(
  ctx: PathContext,
  systemFileExists: (path: string) => boolean,
): { path: string; origin: string } {
  const system = systemManagedConfigPath(ctx);
  const fromEnv = nonEmpty(ctx.env.KEYBROKER_MANAGED_CONFIG);
  if (fromEnv && !systemFileExists(system)) return { path: fromEnv, origin: 'KEYBROKER_MANAGED_CONFIG' };
  return { path: system, origin: 'default' };
}

export function userConfigDir(ctx: PathContext): string {
  if (ctx.platform === 'win32') {
    return join(ctx, ctx.env.APPDATA ?? join(ctx, ctx.homeDir, 'AppData', 'Roaming'), 'keybroker');
  }
  const xdg = nonEmpty(ctx.env.XDG_CONFIG_HOME);
  return join(ctx, xdg ?? join(ctx, ctx.homeDir, '.config'), 'keybroker');
}

export function userConfigPath(ctx: PathContext, configFlag?: string): { path: string; origin: string } {
  if (configFlag) return { path: configFlag, origin: '--config' };
  const fromEnv = nonEmpty(ctx.env.KEYBROKER_CONFIG);
  if (fromEnv) return { path: fromEnv, origin: 'KEYBROKER_CONFIG' };
  return { path: join(ctx, userConfigDir(ctx), 'config.json'), origin: 'default' };
}

/**
 * The cache directory. `ignoreEnv` (a managed lockdown without `environmentDefaults`) skips
 * KEYBROKER_CACHE_DIR, which a repository's settings `env` could point anywhere.
 */
export function cacheDir(ctx: PathContext, options: { ignoreEnv?: boolean } = {}): string {
  const fromEnv = options.ignoreEnv ? undefined : nonEmpty(ctx.env.KEYBROKER_CACHE_DIR);
  if (fromEnv) return fromEnv;
  const xdg = nonEmpty(ctx.env.XDG_CACHE_HOME);
  if (xdg && ctx.platform !== 'win32') return join(ctx, xdg, 'keybroker');
  switch (ctx.platform) {
    case 'darwin':
      return join(ctx, ctx.homeDir, 'Library', 'Caches', 'keybroker');
    case 'win32':
      return join(ctx, localAppData(ctx), 'keybroker', 'Cache');
    default:
      return join(ctx, ctx.homeDir, '.cache', 'keybroker');
  }
}

/** Windows' per-machine application data (not roamed): the cache and the audit log live there. */
function localAppData(ctx: PathContext): string {
  return ctx.env.LOCALAPPDATA ?? join(ctx, ctx.homeDir, 'AppData', 'Local');
}

export function auditLogPath(ctx: PathContext): string {
  switch (ctx.platform) {
    case 'darwin':
      return join(ctx, ctx.homeDir, 'Library', 'Logs', 'keybroker', 'audit.log');
    case 'win32':
      return join(ctx, localAppData(ctx), 'keybroker', 'Logs', 'audit.log');
    default: {
      const xdg = nonEmpty(ctx.env.XDG_STATE_HOME);
      return join(ctx, xdg ?? join(ctx, ctx.homeDir, '.local', 'state'), 'keybroker', 'audit.log');
    }
  }
}

/** Claude Code settings files, in the order that decides which apiKeyHelper wins. */
export function claudeSettingsPaths(
  ctx: PathContext & { cwd: string },
): { scope: 'managed' | 'project-local' | 'project' | 'user'; path: string }[] {
  const managed =
    ctx.platform === 'darwin'
      ? '/Library/Application Support/ClaudeCode/managed-settings.json'
      : ctx.platform === 'win32'
        ? 'C:\\Program Files\\ClaudeCode\\managed-settings.json'
        : '/etc/claude-code/managed-settings.json';
  return [
    { scope: 'managed', path: managed },
    { scope: 'project-local', path: join(ctx, ctx.cwd, '.claude', 'settings.local.json') },
    { scope: 'project', path: join(ctx, ctx.cwd, '.claude', 'settings.json') },
    { scope: 'user', path: join(ctx, ctx.homeDir, '.claude', 'settings.json') },
  ];
}

/** `~` or `~/x` at the start of a path is the home directory. */
export function expandHome(p: string, homeDir: string): string {
  if (p === '~') return homeDir;
  if (p.startsWith('~/') || p.startsWith('~\\')) return homeDir + p.slice(1);
  return p;
}
