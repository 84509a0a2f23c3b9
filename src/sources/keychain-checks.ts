/** Doctor check for the OS keychain: reachable, and holding the item when one is named. */

import type { KeychainSourceConfig } from '../config/types.js';
import type { AppContext } from '../context.js';
import { type DoctorScope, type Env, fromError } from '../doctor/checks/scope.js';
import { type CheckResult, check } from '../doctor/report.js';

export async function keychainSourceChecks(
  src: KeychainSourceConfig,
  scope: DoctorScope,
): Promise<CheckResult[]> {
  return [
    await keychainCheck(
      'source.keychain',
      scope.ctx,
      scope.env,
      src.service,
      src.account ?? scope.ctx.userName,
    ),
  ];
}

export async function keychainCheck(
  id: string,
  ctx: AppContext,
  env: Env,
  service: string,
  account: string | undefined,
): Promise<CheckResult> {
  try {
    const { openKeyring } = await import('../platform/keyring.js');
    const ring = await openKeyring({ env, platform: ctx.platform, timeoutMs: 3000 });
    if (account === undefined) return check(id, 'pass', `keychain (${ring.backend}) reachable`);
    const value = await ring.get(service, account);
    if (value === undefined) {
      return check(
        id,
        'fail',
        `keychain (${ring.backend}) reachable, but it has no item service=${service} account=${account}`,
        {
          code: 'ERR_KEYCHAIN_ITEM_MISSING',
          hint: `store it with keybroker keychain set --service ${service} --account ${account}`,
        },
      );
    }
    return check(id, 'pass', `keychain (${ring.backend}) has the item service=${service} account=${account}`);
  } catch (e) {
    return fromError(id, e);
  }
}
