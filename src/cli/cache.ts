/**
 * `keybroker cache clear [--profile P | --all]`: removes cache entries, locks, served records
 * and source memos (login tokens) for one profile or for all. Works without a valid config
 * for --all and --profile, so a broken setup can always be cleaned.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import { loadConfig, resolveProfile, selectProfileName } from '../config/load.js';
import type { AppContext } from '../context.js';
import { configError, isKeybrokerError } from '../errors.js';
import { cacheDir } from '../platform/paths.js';
import { configInputs } from './token.js';

/**
 * Every file keybroker writes in the cache directory belongs to a key `<profile>-<16 hex>`
 * (`<key>.json`, `.lock`, `.served-…`, `.memo-<16 hex>.blob`, `.<key>….tmp`), except the
 * validated-config markers `config-ok-<16 hex>` (see config/fingerprint.ts); so do the
 * keychain store's entries and its `<key>.memo-…` blobs. Profile names may hold `-` and `.`,
 * so a name is matched against the profile asked for rather than parsed.
 */
const MARKER = /^config-ok-[0-9a-f]{16}$/;
const ANY_KEY_FILE = /^\.?.+-[0-9a-f]{16}(\.|$)/;

export function belongsTo(name: string, profile: string | undefined): boolean {
  if (MARKER.test(name)) return false;
  if (profile === undefined) return ANY_KEY_FILE.test(name);
  const escaped = profile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\.?${escaped}-[0-9a-f]{16}(\\.|$)`).test(name);
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
  const dir = cacheDir(ctx);
  let removed = 0;
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const name of names) {
    if (args.all && MARKER.test(name)) {
      fs.unlinkSync(path.join(dir, name)); // not counted: it holds no token
      continue;
    }
    if (!belongsTo(name, profile)) continue;
    const file = path.join(dir, name);
    if (fs.lstatSync(file).isDirectory()) continue;
    fs.unlinkSync(file);
    removed++;
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
      const mine = (name: string) => belongsTo(name, profile);
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
