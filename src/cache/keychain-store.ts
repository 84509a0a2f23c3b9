/**
 * `cache.storage: "keychain"`: each entry is one item under service `keybroker-cache`
 * (account = the cache key, value = the entry's JSON); a source's memo blobs are items under
 * accounts `blob:<name>`. Never a plain file.
 *
 * When the keychain cannot be used, opening the store throws
 * unreachableError('ERR_KEYCHAIN_UNAVAILABLE'), and so does every call once one has failed
 * (at once, no second wait for a timeout), so the broker can work uncached and warn.
 */
import { isKeybrokerError, seeDocs, unreachableError, withoutDocs } from '../errors.js';
import type { Keyring, OpenKeyringOptions } from '../platform/keyring.js';
import { parseEntry } from './entry.js';
import type { CacheStore } from './types.js';

export const KEYCHAIN_CACHE_SERVICE = 'keybroker-cache';
const BLOB_PREFIX = 'blob:';

export interface KeychainStoreOptions {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  /** Bound for opening the keychain and for each call. */
  timeoutMs: number;
  /** Replaces openKeyring (unit tests pass a memory keyring). */
  openKeyring?: (opts: OpenKeyringOptions) => Promise<Keyring>;
  /** Called when a corrupt entry is discarded. */
  onDiscard?: (key: string) => void;
}

/**
 * Opens the keychain now (bounded by timeoutMs) and returns the store; throws
 * ERR_KEYCHAIN_UNAVAILABLE when the keychain cannot be used.
 */
export async function createKeychainStore(opts: KeychainStoreOptions): Promise<CacheStore> {
  let keyring: Promise<Keyring> | undefined;
  let broken: unknown;

  const unavailable = (e: unknown) => {
    if (isKeybrokerError(e) && e.code === 'ERR_KEYCHAIN_UNAVAILABLE') return e;
    const why = isKeybrokerError(e) ? e.message : 'the keychain failed';
    return unreachableError('ERR_KEYCHAIN_UNAVAILABLE', `keychain cache: ${why}`, {
      hint: `${isKeybrokerError(e) && e.hint ? withoutDocs(e.hint) : 'set cache.storage to "file" or "none"'}; ${seeDocs('ERR_KEYCHAIN_UNAVAILABLE')}`,
      cause: e,
    });
  };

  const use = async <T>(work: (k: Keyring) => Promise<T>): Promise<T> => {
    if (broken !== undefined) throw broken;
    try {
      keyring ??= (opts.openKeyring ?? (await import('../platform/keyring.js')).openKeyring)({
        env: opts.env,
        platform: opts.platform,
        timeoutMs: opts.timeoutMs,
      });
      return await work(await keyring);
    } catch (e) {
      broken = unavailable(e);
      throw broken;
    }
  };

  const label = (account: string) => `keybroker cache ${account}`;
  const blobAccount = (name: string) => `${BLOB_PREFIX}${name}`;

  await use(async () => undefined);

  return {
    kind: 'keychain',
    async read(key) {
      const text = await use((k) => k.get(KEYCHAIN_CACHE_SERVICE, key));
      if (text === undefined) return undefined;
      const entry = parseEntry(text, key);
      if (!entry) {
        await use((k) => k.delete(KEYCHAIN_CACHE_SERVICE, key));
        opts.onDiscard?.(key);
      }
      return entry;
    },
    async write(key, entry) {
      await use((k) => k.set(KEYCHAIN_CACHE_SERVICE, key, JSON.stringify(entry), label(key)));
    },
    async delete(key) {
      await use((k) => k.delete(KEYCHAIN_CACHE_SERVICE, key));
    },
    readBlob(name) {
      return use((k) => k.get(KEYCHAIN_CACHE_SERVICE, blobAccount(name)));
    },
    async writeBlob(name, data) {
      await use((k) => k.set(KEYCHAIN_CACHE_SERVICE, blobAccount(name), data, label(blobAccount(name))));
    },
    async deleteBlob(name) {
      await use((k) => k.delete(KEYCHAIN_CACHE_SERVICE, blobAccount(name)));
    },
    async listKeys() {
      const accounts = await use(async (k) => (k.list ? k.list(KEYCHAIN_CACHE_SERVICE) : []));
      return accounts.filter((a) => !a.startsWith(BLOB_PREFIX));
    },
    async listBlobs() {
      const accounts = await use(async (k) => (k.list ? k.list(KEYCHAIN_CACHE_SERVICE) : []));
      return accounts.filter((a) => a.startsWith(BLOB_PREFIX)).map((a) => a.slice(BLOB_PREFIX.length));
    },
  };
}
