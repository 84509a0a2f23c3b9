/**
 * The ONE place that loads the native keyring addon (@napi-rs/keyring). Only the macOS and
 * Windows backends use it; on Linux keybroker talks to the Secret Service itself. Loaded
 * lazily: nothing on the cache-hit path imports this module's result.
 *
 * The release build replaces this function's body so that, inside a single executable, the
 * addon is extracted from the SEA assets to a private content-addressed path and dlopen'ed.
 */
export type KeyringAddon = typeof import('@napi-rs/keyring');

import { loadSeaAddon } from './sea.js';

/** Defined as true only by scripts/package.mjs, for the single executables. */
declare const __KEYBROKER_SEA__: boolean | undefined;

let loaded: Promise<KeyringAddon> | undefined;

export function loadKeyringAddon(): Promise<KeyringAddon> {
  if (typeof __KEYBROKER_SEA__ === 'boolean' && __KEYBROKER_SEA__) {
    // The package's JS wrapper only re-exports the native binding: the binding is the module.
    loaded ??= Promise.resolve().then(() => loadSeaAddon<KeyringAddon>('keyring.node'));
    return loaded;
  }
  loaded ??= import('@napi-rs/keyring').then(
    (m) => ((m as { default?: KeyringAddon }).default ?? m) as KeyringAddon,
  );
  return loaded;
}
