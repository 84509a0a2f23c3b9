/**
 * The one small keyring interface: get/set/delete a secret by (service, account), one backend
 * per OS plus an in-memory one for unit tests. Cheap to import: backends (and the native
 * addon they may need) are loaded by openKeyring only when a keychain is actually used.
 *
 * Every backend bounds each call by `timeoutMs`, never prompts, and reports an unreachable,
 * absent or locked store as unreachableError('ERR_KEYCHAIN_UNAVAILABLE' | 'ERR_KEYCHAIN_LOCKED').
 * On Linux it is the Secret Service and nothing else (no kernel-keyring or file fallback).
 */

export type KeyringBackend = 'secret-service' | 'macos' | 'windows' | 'memory';

export interface Keyring {
  readonly backend: KeyringBackend;
  /** The value, or undefined when there is no such item. */
  get(service: string, account: string): Promise<string | undefined>;
  /** Creates or replaces the item; afterwards exactly one item answers (service, account). */
  set(service: string, account: string, value: string, label?: string): Promise<void>;
  /** True when something was deleted. */
  delete(service: string, account: string): Promise<boolean>;
  /** Accounts of the items under `service` (for the keychain cache store's listKeys). */
  list?(service: string): Promise<string[]>;
}

export interface OpenKeyringOptions {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  /** Bound for opening, and for each later call. */
  timeoutMs: number;
}

/**
 * Opens the platform's keyring: connects (Linux) or loads the addon (macOS, Windows). Throws
 * ERR_KEYCHAIN_UNAVAILABLE when it cannot be reached, so this doubles as doctor's probe.
 */
export async function openKeyring(opts: OpenKeyringOptions): Promise<Keyring> {
  if (opts.platform === 'darwin' || opts.platform === 'win32') {
    const { openNativeKeyring } = await import('./keyring-native.js');
    return openNativeKeyring({ platform: opts.platform, timeoutMs: opts.timeoutMs });
  }
  const { openSecretServiceKeyring } = await import('./keyring-secret-service.js');
  return openSecretServiceKeyring({ env: opts.env, timeoutMs: opts.timeoutMs });
}

/** A keyring in a Map, for unit tests. */
export function createMemoryKeyring(): Keyring {
  const items = new Map<string, string>();
  const k = (service: string, account: string) => JSON.stringify([service, account]);
  return {
    backend: 'memory',
    async get(service, account) {
      return items.get(k(service, account));
    },
    async set(service, account, value) {
      items.set(k(service, account), value);
    },
    async delete(service, account) {
      return items.delete(k(service, account));
    },
    async list(service) {
      return [...items.keys()]
        .map((key) => JSON.parse(key) as [string, string])
        .filter(([s]) => s === service)
        .map(([, a]) => a)
        .sort();
    },
  };
}
