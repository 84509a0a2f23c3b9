/**
 * `{"type": "keychain", "service", "account"}`: one item of the OS keychain, read as is.
 * `account` arrives defaulted to the user name by the config resolver. Stored secrets have
 * no expiry of their own: the broker refetches after the TTL.
 */
import type { KeychainSourceConfig } from '../config/types.js';
import { missingError, seeDocs } from '../errors.js';
import type { Keyring, OpenKeyringOptions } from '../platform/keyring.js';
import type { FetchedToken, Source, SourceDeps, TokenRequest } from './types.js';

export interface KeychainSourceOptions {
  /** Replaces openKeyring (unit tests pass a memory keyring). */
  openKeyring?: (opts: OpenKeyringOptions) => Promise<Keyring>;
  platform?: NodeJS.Platform;
}

export function createKeychainSource(
  config: KeychainSourceConfig,
  deps: SourceDeps,
  options: KeychainSourceOptions = {},
): Source {
  const service = config.service;
  const account = config.account ?? '';
  const where = `service=${service} account=${account}`;
  return {
    type: 'keychain',
    describe: () => `keychain ${where}`,
    async getToken(request: TokenRequest): Promise<FetchedToken> {
      const open = options.openKeyring ?? (await import('../platform/keyring.js')).openKeyring;
      const timeoutMs = Math.max(1, request.deadlineMs - request.now());
      const keyring = await open({
        env: deps.env,
        platform: options.platform ?? process.platform,
        timeoutMs,
      });
      deps.logger.debug(`keychain: reading ${where} from ${keyring.backend}`);
      const value = await keyring.get(service, account);
      if (value === undefined) {
        throw missingError('ERR_KEYCHAIN_ITEM_MISSING', `keychain item ${where}: not found`, {
          hint: `store it with \`keybroker keychain set --service ${service} --account ${account}\`; ${seeDocs('ERR_KEYCHAIN_ITEM_MISSING')}`,
        });
      }
      if (value.trim() === '') {
        throw missingError('ERR_KEYCHAIN_ITEM_EMPTY', `keychain item ${where}: the value is empty`, {
          hint: `store the token with \`keybroker keychain set --service ${service} --account ${account}\`; ${seeDocs('ERR_KEYCHAIN_ITEM_EMPTY')}`,
        });
      }
      deps.logger.addSecret(value.trim());
      return { value };
    },
  };
}
