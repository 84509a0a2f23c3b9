/** Doctor: the token cache's directory (private) and, for keychain storage, the keychain. */
import * as fs from 'node:fs';
import { checkCacheDir } from '../../cache/file-store.js';
import { cacheDir } from '../../platform/paths.js';
import { keychainCheck } from '../../sources/keychain-checks.js';
import { type CheckResult, check } from '../report.js';
import { type DoctorScope, fromError } from './scope.js';

export async function cacheChecks(scope: DoctorScope): Promise<CheckResult[]> {
  const { ctx, env } = scope;
  const resolved = scope.resolved!;
  const storage = resolved.cache.storage;
  if (storage === 'none')
    return [check('cache', 'info', 'cache.storage is "none": every call reaches the source')];
  const out: CheckResult[] = [];
  const dir = cacheDir({ env, platform: ctx.platform, homeDir: ctx.homeDir });
  if (!fs.existsSync(dir)) {
    out.push(check('cache.dir', 'pass', `${dir}: not created yet (made 0700 on first use)`));
  } else {
    try {
      checkCacheDir(dir);
      const mode = (fs.statSync(dir).mode & 0o777).toString(8).padStart(4, '0');
      out.push(check('cache.dir', 'pass', `${dir} (mode ${mode})`));
    } catch (e) {
      out.push(fromError('cache.dir', e));
    }
  }
  if (storage === 'keychain')
    out.push(await keychainCheck('cache.keychain', ctx, env, 'keybroker', undefined));
  return out;
}
