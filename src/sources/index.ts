/** Source factory: each source module is imported only when its type is used. */
import type { SourceConfig } from '../config/types.js';
import { configError } from '../errors.js';
import { assertSafeNodeDebug } from '../platform/node-debug.js';
import type { Source, SourceDeps } from './types.js';

export async function createSource(config: SourceConfig, deps: SourceDeps): Promise<Source> {
  // Before any source module (and with it node:http) is loaded, let alone contacted.
  assertSafeNodeDebug(deps.env);
  switch (config.type) {
    case 'jwt':
      return (await import('./jwt.js')).createJwtSource(config, deps);
    case 'vault':
      return (await import('./vault.js')).createVaultSource(config, deps);
    case 'vault-identity':
      return (await import('./vault-identity.js')).createVaultIdentitySource(config, deps);
    case 'aws-secrets-manager':
      return (await import('./aws-secrets-manager.js')).createAwsSecretsManagerSource(config, deps);
    case 'keychain':
      return (await import('./keychain.js')).createKeychainSource(config, deps);
    case 'oidc':
      return (await import('./oidc.js')).createOidcSource(config, deps);
    default:
      throw configError(
        'ERR_CONFIG_SOURCE_TYPE',
        `unknown source type "${(config as { type: string }).type}"`,
        {
          hint: 'use jwt, vault, vault-identity, aws-secrets-manager, keychain or oidc',
        },
      );
  }
}
