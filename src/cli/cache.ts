/**
 * `keybroker cache clear [--profile P | --all]`: removes cache entries, locks, served records
 * and source memos (login tokens) for one profile or for all: only files keybroker wrote, and
 * only from a cache directory that passes the token path's checks. Works without a valid config
 * for --all and --profile, so a broken setup can always be cleaned.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import { checkCacheDir } from '../cache/file-store.js';
import { loadConfig, resolveProfile, selectProfileName } from '../config/load.js';
import type { AppContext } from '../context.js';
import { configError, isKeybrokerError } from '../errors.js';
import { cacheDir } from '../platform/paths.js';
import { configInputs } from './token.js';

/**
 * Every name keybroker writes in the cache directory, exactly (finding 11: nothing else goes,
 * however close). A cache key is `<profile>-<16 hex>` (config/load.ts profile names); under it:
 * the entry `<key>.json`, the lock `<key>.lock` and a lock set aside while being broken
 * `<key>.lock.stale-<pid>-<suffix>` (cache/lock.ts), served records `<key>.served-<caller>`
 * (process-info.ts callerId), source memos `<key>.memo-<16 hex>` and the Retry-After wait
 * `<key>.retry-after` (broker.ts; `.blob` files here, keychain accounts without it), and the
 * temporary file of an interrupted write of any of those, `.<name>.<pid>.<suffix>.tmp`
 * (safe-fs.ts). Apart from keys: the validated-config markers `config-ok-<16 hex>`
 * (config/config-digest.ts). A new kind of file gets its pattern here.
 */
const MARKER = /^config-ok-[0-9a-f]{16}$/;
const PROFILE = '[A-Za-z0-9][A-Za-z0-9_.-]{0,63}';
const BLOB = '(?:memo-[0-9a-f]{16}|backoff|retry-after)';
const FILE_SUFFIX = `\\.(?:json|lock|lock\\.stale-\\d+-[a-z0-9]+|served-\\d+(?:-[A-Za-z0-9]+)?|${BLOB}\\.blob)`;
/** The keychain store's accounts: the entry is the bare key, a blob `<key>.<blob>` (its `blob:` prefix removed). */
const ACCOUNT_SUFFIX = `(?:\\.${BLOB})?`;

function namePattern(profile: string, where: 'file' | 'keychain'): RegExp {
  const name = `${profile}-[0-9a-f]{16}`;
  if (where === 'keychain') return new RegExp(`^${name}${ACCOUNT_SUFFIX}$`);
  const file = `${name}${FILE_SUFFIX}`;
  return new RegExp(`^(?:${file}|\\.${file}\\.\\d+\\.[a-z0-9]+\\.tmp)$`);
}
const ANY = { file: namePattern(PROFILE, 'file'), keychain: namePattern(PROFILE, 'keychain') };

/**
 * Is `name` a cache file (or, `where: 'keychain'`, a keychain cache account) keybroker wrote
 * for `profile` (for any profile when undefined)?
 */
export function belongsTo(
  name: string,
  profile: string | undefined,
  where: 'file' | 'keychain' = 'file',
): boolean {
  if (profile === undefined) return ANY[where].test(name);
  return namePattern(profile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), where).test(name);
}

interface ClearArgs {
  all?: boolean;
}

async function clear(ctx: AppContext, args: ClearArgs): Promise<void> {
  if (args.all && ctx.globals.profile) {
    throw configError('ERR_USAGE', 'cache clear: --all and --profile exclude each other', {
      hint: 'give one of them',
    });
  }
  const inputs = configInputs(ctx);
  let profile: string | undefined;
  if (!args.all) profile = ctx.globals.profile ?? selectProfileName(loadConfig(inputs), inputs);
  // The config's own cache directory: under a managed lockdown KEYBROKER_CACHE_DIR does not
  // count (contract §3). A config too broken to load still gets cleaned where it points.
  let dir: string;
  try {
    dir = loadConfig(inputs).cacheDir;
  } catch {
    dir = cacheDir(ctx);
  }
  let removed = 0;
  let names: string[] = [];
  try {
    // The token path's checks first: a directory someone else owns or may write is not ours to clear.
    checkCacheDir(dir);
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (ctx.globals.profile && !names.some((name) => belongsTo(name, profile))) {
    assertProfileDefined(inputs, ctx.globals.profile);
  }
  for (const name of names) {
    const marker = args.all === true && MARKER.test(name);
    if (!marker && !belongsTo(name, profile)) continue;
    const file = path.join(dir, name);
    if (fs.lstatSync(file).isDirectory()) continue;
    fs.unlinkSync(file);
    if (!marker) removed++; // a marker holds no token: not counted
  }
  // Entries kept in the keychain (cache.storage "keychain").
  let fromKeychain = 0;
  try {
    const resolved = resolveProfile(loadConfig(inputs), {
      ...inputs,
      ...(profile ? { profileFlag: profile } : {}),
    });
    if (resolved.cache.storage === 'keychain') {
      const { createKeychainStore } = await import('../cache/keychain-store.js');
      const store = await createKeychainStore({ env: ctx.env, platform: ctx.platform, timeoutMs: 3000 });
      const mine = (name: string) => belongsTo(name, profile, 'keychain');
      for (const key of await store.listKeys()) {
        if (mine(key)) {
          await store.delete(key);
          fromKeychain++;
        }
      }
      // Source memos (a Vault login token, a KV mount) are named after their entry's key.
      for (const name of (await store.listBlobs?.()) ?? []) {
        if (mine(name)) {
          await store.deleteBlob(name);
          fromKeychain++;
        }
      }
    }
  } catch (e) {
    if (!isKeybrokerError(e)) throw e;
    ctx.logger.debug(`keychain entries not cleared: ${e.code}`);
  }
  const what = profile === undefined ? 'all profiles' : `profile ${profile}`;
  const kc = fromKeychain > 0 ? ` and ${fromKeychain} keychain item${fromKeychain === 1 ? '' : 's'}` : '';
  ctx.stdout(`removed ${removed} cache file${removed === 1 ? '' : 's'}${kc} for ${what} in ${dir}\n`);
}

/**
 * `--profile P` names a profile the config defines; a profile no longer configured whose cache
 * files are still there may be cleared, and a config that does not load is no obstacle (a broken
 * setup can always be cleaned).
 */
function assertProfileDefined(inputs: ReturnType<typeof configInputs>, profile: string): void {
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(inputs);
  } catch {
    return;
  }
  try {
    resolveProfile(loaded, { ...inputs, profileFlag: profile });
  } catch (e) {
    if (isKeybrokerError(e) && e.code === 'ERR_CONFIG_UNKNOWN_PROFILE') throw e;
  }
}

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'cache <action>',
    'manage the token cache',
    (c) =>
      c
        .positional('action', { choices: ['clear'] as const, describe: 'clear: remove entries and locks' })
        .option('all', { type: 'boolean', describe: 'every profile' })
        .example('keybroker cache clear', 'the default profile')
        .example('keybroker cache clear --all', 'every profile'),
    (argv) => clear(ctx, argv as ClearArgs),
  );
}
