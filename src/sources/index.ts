/** Source factory: each source module is imported only when its type is used. */
import type { SourceConfig } from '../config/types.js';
import { configError } from '../errors.js';
import { assertSafeNodeDebug } from '../platform/node-debug.js';
import type { Source, SourceDeps } from './types.js';

type SourceType = SourceConfig['type'];
type Factory<T extends SourceType> = (
  config: Extract<SourceConfig, { type: T }>,
  deps: SourceDeps,
) => Promise<Source>;

/** One line per source type: its module and its factory. */
const FACTORIES: { readonly [T in SourceType]: Factory<T> } = {
  jwt: async (c, d) => (await import('./jwt.js')).createJwtSource(c, d),
  vault: async (c, d) => (await import('./vault.js')).createVaultSource(c, d),
  'vault-identity': async (c, d) => (await import('./vault-identity.js')).createVaultIdentitySource(c, d),
  'aws-secrets-manager': async (c, d) =>
    (await import('./aws-secrets-manager.js')).createAwsSecretsManagerSource(c, d),
  keychain: async (c, d) => (await import('./keychain.js')).createKeychainSource(c, d),
  oidc: async (c, d) => (await import('./oidc.js')).createOidcSource(c, d),
};

export async function createSource(config: SourceConfig, deps: SourceDeps): Promise<Source> {
  // Before any source module (and with it node:http) is loaded, let alone contacted.
  assertSafeNodeDebug(deps.env);
  if (!Object.hasOwn(FACTORIES, config.type)) {
    throw configError('ERR_CONFIG_SOURCE_TYPE', `unknown source type "${config.type}"`, {
      hint: 'use jwt, vault, vault-identity, aws-secrets-manager, keychain or oidc',
    });
  }
  // The table pairs each type with its own config; TypeScript cannot follow that through a union.
  return (FACTORIES[config.type] as Factory<SourceType>)(config as never, deps);
}
