/**
 * `keybroker logout [--profile P]`: revokes the refresh token at the provider when it has a
 * revocation endpoint (RFC 7009) and removes every local trace of the login (contract §4).
 */
import type { Argv } from 'yargs';
import type { AppContext } from '../context.js';
import { isKeybrokerError } from '../errors.js';
import { printableAscii } from '../platform/text.js';
import { oidcProfile } from './login.js';

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'logout',
    'sign out of an oidc profile: revoke its refresh token and remove every local trace',
    {},
    async () => {
      await runLogout(ctx);
    },
  );
}

async function runLogout(ctx: AppContext): Promise<void> {
  const { resolved, source, session } = oidcProfile(ctx, 'logout');
  const { signOut } = await import('../sources/oidc-signin.js');
  const out = await signOut(resolved.name, source, resolved.cache.storage, session);
  const who = out.identity ? ` (${printableAscii(out.identity.sub)})` : '';
  if (out.revocationError) {
    // The local login is gone either way; the provider's copy ends when it expires.
    const e = out.revocationError;
    ctx.logger.warn(
      `warning: the provider was not told (${isKeybrokerError(e) ? e.code : 'error'}); the refresh token stays valid there until it expires`,
    );
  }
  process.stderr.write(
    `keybroker: signed out of profile ${resolved.name}${who}${out.revoked ? '; the provider revoked the refresh token' : ''}\n`,
  );
}
