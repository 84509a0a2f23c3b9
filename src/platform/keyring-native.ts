/**
 * macOS Keychain and Windows Credential Manager through @napi-rs/keyring (keyring-rs).
 * Not tested on this project's CI (Linux only): kept deliberately small.
 *
 * - macOS: a generic password with service = service and account = account, the same item
 *   keytar and `security add-generic-password -s S -a A` use.
 * - Windows: a generic credential whose target name is `service/account`, as keytar writes
 *   it (keyring-rs would otherwise use `account.service`).
 *
 * Every call is bounded by `timeoutMs`: a locked macOS keychain may wait on an unlock dialog
 * the addon cannot suppress; we stop waiting and report ERR_KEYCHAIN_UNAVAILABLE.
 */
import { seeDocs, unreachableError } from '../errors.js';
import { withDeadline } from './deadline.js';
import type { Keyring } from './keyring.js';
import { type KeyringAddon, loadKeyringAddon } from './keyring-addon.js';

export async function openNativeKeyring(opts: {
  platform: 'darwin' | 'win32';
  timeoutMs: number;
}): Promise<Keyring> {
  const { platform, timeoutMs } = opts;
  const name = platform === 'darwin' ? 'macOS Keychain' : 'Windows Credential Manager';
  const hint =
    platform === 'darwin'
      ? 'unlock the login keychain (`security unlock-keychain`), or set cache.storage to "file" or "none"'
      : 'sign in to Windows with your own account so Credential Manager is available, or set cache.storage to "file" or "none"';
  const unavailable = (why: string, cause?: unknown) =>
    unreachableError('ERR_KEYCHAIN_UNAVAILABLE', `keychain (${name}): ${why}`, {
      hint: `${hint}; ${seeDocs('ERR_KEYCHAIN_UNAVAILABLE')}`,
      cause,
    });

  let addon: KeyringAddon;
  try {
    addon = await loadKeyringAddon();
  } catch (e) {
    throw unavailable('the keyring addon could not be loaded', e);
  }

  const bounded = <T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> =>
    withDeadline(
      timeoutMs,
      (signal) =>
        work(signal).catch((e: unknown) => {
          // The addon's messages may quote the platform's text; keep only that it failed.
          throw unavailable('the operation failed', e);
        }),
      () => unavailable(`no answer within ${timeoutMs} ms (is it locked?)`),
      { keepAlive: true },
    );
  const entry = (service: string, account: string) =>
    platform === 'win32'
      ? addon.AsyncEntry.withTarget(`${service}/${account}`, service, account)
      : new addon.AsyncEntry(service, account);

  return {
    backend: platform === 'darwin' ? 'macos' : 'windows',
    get: (service, account) =>
      bounded(async (signal) => (await entry(service, account).getPassword(signal)) ?? undefined),
    set: (service, account, value) => bounded((signal) => entry(service, account).setPassword(value, signal)),
    delete: (service, account) => bounded((signal) => entry(service, account).deleteCredential(signal)),
    list: (service) =>
      bounded(async (signal) =>
        (await addon.findCredentialsAsync(service, null, signal)).map((c) => c.account).sort(),
      ),
  };
}
