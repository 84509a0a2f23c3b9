/**
 * `keybroker status [--json]`: per profile, the source (described without secrets), the TTL
 * and where it came from, and the cache entry (fingerprint, fetched, expires, next refresh).
 * Never a token. Looks at the profiles as Claude Code would run them: its settings' env
 * blocks (the TTL variable) apply.
 */
import * as fs from 'node:fs';
import type { Argv } from 'yargs';
import { hitPolicy } from '../broker/hit.js';
import { fingerprint } from '../cache/entry.js';
import { nextRefreshMs, usableUntilMs } from '../cache/policy.js';
import type { CacheEntry } from '../cache/types.js';
import { type ConfigInputs, isObject, resolveProfile, selectProfileName } from '../config/load.js';
import type { ResolvedProfile } from '../config/types.js';
import type { AppContext } from '../context.js';
import { isKeybrokerError } from '../errors.js';
import { cleanLine } from '../output/redact.js';

export interface ProfileStatus {
  name: string;
  selected: boolean;
  source?: { type: string; description: string };
  ttlMs?: number;
  /** Where the TTL came from: `CLAUDE_CODE_API_KEY_HELPER_TTL_MS (…/settings.json)`, `profile ttlMs`, `default`. */
  ttlFrom?: string;
  cache?: {
    storage: string;
    key: string;
    entry?: {
      fingerprint: string;
      fetchedAt: string;
      /** The token's own expiry; absent for stored secrets. */
      expiresAt?: string;
      /** Printed until then (TTL + margin before its expiry, or TTL after fetching). */
      usableUntil: string;
      nextRefreshAt: string;
      state: 'fresh' | 'refresh-due' | 'expired';
    };
  };
  /** oidc profiles: who is signed in, and since when (never a token). */
  login?: {
    state: 'signed-in' | 'not-signed-in' | 'expired';
    sub?: string;
    email?: string;
    groups?: string[];
    loginAt?: string;
  };
  error?: { code: string; message: string; hint?: string };
}

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'status',
    'show each profile: source, TTL and cache entry (never a token)',
    (yy) =>
      yy.option('json', { type: 'boolean', default: false, describe: 'one JSON object instead of text' }),
    async (argv) => {
      const profiles = await collectStatus(ctx);
      ctx.stdout(argv.json ? `${JSON.stringify({ profiles }, null, 2)}\n` : renderStatus(profiles));
    },
  );
}

async function collectStatus(ctx: AppContext): Promise<ProfileStatus[]> {
  const { readAllSettings } = await import('../doctor/claude-settings.js');
  const { claudeRunEnv } = await import('../doctor/checks/claude.js');
  const settings = readAllSettings({
    env: ctx.env,
    platform: ctx.platform,
    homeDir: ctx.homeDir,
    cwd: ctx.cwd,
  });
  const env = claudeRunEnv(settings, ctx.env);
  const inputs: ConfigInputs = {
    env,
    platform: ctx.platform,
    homeDir: ctx.homeDir,
    userName: ctx.userName,
    hostName: ctx.hostName,
    ...(ctx.globals.config ? { configFlag: ctx.globals.config } : {}),
    ...(ctx.globals.profile ? { profileFlag: ctx.globals.profile } : {}),
  };
  const { loadChecked } = await import('../config/checked.js');
  const loaded = loadChecked(inputs, { warn: (w) => ctx.logger.warn(w) });
  const files = loaded.layers.filter((l) => l.exists && !l.ignored).map((l) => `${l.kind} ${l.path}`);
  ctx.logger.debug(`config loaded: ${files.length > 0 ? files.join(', ') : 'no config file'}`);
  const selected = selectProfileName(loaded, inputs);
  const all = isObject(loaded.merged.profiles) ? Object.keys(loaded.merged.profiles) : [];
  const names = ctx.globals.profile ? [ctx.globals.profile] : all.length > 0 ? all : [selected];
  const out: ProfileStatus[] = [];
  for (const name of names) {
    const st: ProfileStatus = { name, selected: name === selected };
    try {
      // The selected profile as the token path would pick it (errors then say how it was chosen).
      const resolved = resolveProfile(loaded, name === selected ? inputs : { ...inputs, profileFlag: name });
      st.ttlMs = resolved.ttlMs;
      st.ttlFrom = ttlFrom(resolved, settings, ctx.env);
      st.source = { type: resolved.source.type, description: cleanLine(await describe(ctx, resolved, env)) };
      st.cache = await cacheStatus(ctx, resolved, env);
      if (resolved.source.type === 'oidc') st.login = await loginStatus(resolved);
    } catch (e) {
      // A profile asked for by name that does not exist is the caller's mistake, as on the token path.
      if (ctx.globals.profile && isKeybrokerError(e) && e.code === 'ERR_CONFIG_UNKNOWN_PROFILE') throw e;
      st.error = isKeybrokerError(e)
        ? { code: e.code, message: cleanLine(e.message), ...(e.hint ? { hint: cleanLine(e.hint) } : {}) }
        : { code: 'ERR_INTERNAL', message: e instanceof Error ? e.name : 'error' };
    }
    ctx.logger.debug(`profile ${name}: ${statusTrace(st)}`);
    out.push(st);
  }
  return out;
}

function statusTrace(st: ProfileStatus): string {
  if (st.error) return `not resolved (${st.error.code})`;
  const entry = st.cache?.entry;
  const cache =
    st.cache?.storage === 'none'
      ? 'cache off'
      : `cache ${st.cache?.storage}: ${entry ? `entry ${entry.fingerprint} ${entry.state}` : 'no entry'}`;
  return `${st.source?.type} source, ttl ${st.ttlMs} ms, ${cache}`;
}

function ttlFrom(
  resolved: ResolvedProfile,
  settings: import('../doctor/claude-settings.js').SettingsFile[],
  env: Readonly<Record<string, string | undefined>>,
): string {
  if (resolved.ttlOrigin === 'profile') return 'profile ttlMs';
  if (resolved.ttlOrigin === 'default') return 'default';
  for (const f of settings) {
    const block = f.data?.env;
    if (isObject(block) && block.CLAUDE_CODE_API_KEY_HELPER_TTL_MS !== undefined) {
      return `CLAUDE_CODE_API_KEY_HELPER_TTL_MS in ${f.path}`;
    }
  }
  return env.CLAUDE_CODE_API_KEY_HELPER_TTL_MS !== undefined
    ? 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS in the environment'
    : 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS';
}

async function describe(
  ctx: AppContext,
  resolved: ResolvedProfile,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string> {
  const { createSource } = await import('../sources/index.js');
  const { sourceDeps } = await import('../doctor/checks/source.js');
  const source = await createSource(resolved.source, sourceDeps(ctx, resolved, env));
  return source.describe();
}

async function loginStatus(resolved: ResolvedProfile): Promise<NonNullable<ProfileStatus['login']>> {
  const { identityFile, loginName, readLoginIdentity } = await import('../sources/oidc-login.js');
  const source = resolved.source as import('../config/types.js').OidcSourceConfig;
  const who = readLoginIdentity(resolved.cacheDir, resolved.name, source);
  if (!who) return { state: 'not-signed-in' };
  // With the file store the refresh token's presence is known without reading it; a login the
  // provider refused has lost it. (The keychain is not opened for status.)
  const name = loginName(resolved.name, source);
  const tokenGone =
    resolved.cache.storage === 'file' &&
    fs.existsSync(identityFile(resolved.cacheDir, name)) &&
    !fs.existsSync(`${resolved.cacheDir}/${name}.blob`);
  return {
    state: tokenGone ? 'expired' : 'signed-in',
    sub: cleanLine(who.sub),
    ...(who.email ? { email: cleanLine(who.email) } : {}),
    ...(who.groups ? { groups: who.groups.map(cleanLine) } : {}),
    loginAt: new Date(who.loginAtMs).toISOString(),
  };
}

async function cacheStatus(
  ctx: AppContext,
  resolved: ResolvedProfile,
  env: Readonly<Record<string, string | undefined>>,
): Promise<NonNullable<ProfileStatus['cache']>> {
  const storage = resolved.cache.storage;
  const base = { storage, key: resolved.cacheKey };
  if (storage === 'none') return base;
  let entry: CacheEntry | undefined;
  if (storage === 'file') {
    const dir = resolved.cacheDir;
    // Status never creates the cache directory.
    if (!fs.existsSync(dir)) return base;
    const { createFileStore } = await import('../cache/file-store.js');
    entry = await createFileStore({ dir }).read(resolved.cacheKey);
  } else {
    const { createKeychainStore } = await import('../cache/keychain-store.js');
    const store = await createKeychainStore({ env, platform: ctx.platform, timeoutMs: 2000 });
    entry = await store.read(resolved.cacheKey);
  }
  if (!entry) return base;
  const { params } = hitPolicy(resolved);
  const now = ctx.now();
  const until = usableUntilMs(entry, params);
  const next = nextRefreshMs(entry, params);
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    ...base,
    entry: {
      fingerprint: fingerprint(entry.token),
      fetchedAt: iso(entry.fetchedAtMs),
      ...(entry.expiresAtMs !== undefined ? { expiresAt: iso(entry.expiresAtMs) } : {}),
      usableUntil: iso(until),
      nextRefreshAt: iso(next),
      state: now >= until ? 'expired' : now >= next ? 'refresh-due' : 'fresh',
    },
  };
}

function renderStatus(profiles: ProfileStatus[]): string {
  const lines: string[] = [];
  for (const p of profiles) {
    lines.push(`profile ${p.name}${p.selected ? ' (selected)' : ''}`);
    if (p.error) {
      lines.push(`  error:  ${p.error.message}${p.error.hint ? ` (${p.error.hint})` : ''}`);
      continue;
    }
    lines.push(`  source: ${p.source?.description}`);
    lines.push(`  ttl:    ${p.ttlMs} ms (${p.ttlFrom})`);
    const l = p.login;
    if (l?.state === 'not-signed-in')
      lines.push(`  login:  not signed in (run keybroker login --profile ${p.name})`);
    else if (l) {
      const groups = l.groups?.length ? `, groups ${l.groups.join(', ')}` : '';
      lines.push(`  login:  ${l.sub}${l.email ? ` (${l.email})` : ''}${groups}`);
      lines.push(
        `    signed in:    ${l.loginAt}${l.state === 'expired' ? ' (the provider ended it; run keybroker login --profile ' + p.name + ')' : ''}`,
      );
    }
    const c = p.cache;
    if (!c || c.storage === 'none') {
      lines.push('  cache:  off (cache.storage "none")');
    } else if (!c.entry) {
      lines.push(`  cache:  ${c.storage}, no entry (the next call fetches a token)`);
    } else {
      const e = c.entry;
      lines.push(`  cache:  ${c.storage}, entry ${e.fingerprint} (${e.state})`);
      lines.push(`    fetched:      ${e.fetchedAt}`);
      lines.push(`    expires:      ${e.expiresAt ?? 'no own expiry'}`);
      lines.push(`    usable until: ${e.usableUntil}`);
      lines.push(`    next refresh: ${e.state === 'expired' ? 'on the next call' : e.nextRefreshAt}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
