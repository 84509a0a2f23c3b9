/**
 * `keybroker login [--profile P] [--device | --browser]`: signs in to an `oidc` profile's
 * provider and stores its refresh token (contract §4). Everything it says goes to stderr.
 */
import type { Argv } from 'yargs';
import type { OidcSourceConfig } from '../config/types.js';
import type { AppContext } from '../context.js';
import { configError, seeDocs } from '../errors.js';
import { cleanLine } from '../output/redact.js';
import { printableAscii } from '../platform/text.js';
import type { SessionDeps } from '../sources/oidc-session.js';
import { resolveForCommand } from './token.js';

interface LoginArgs {
  device?: boolean;
  browser?: boolean;
}

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'login',
    "sign in to an oidc profile's identity provider (stores a refresh token)",
    (c) =>
      c
        .option('device', { type: 'boolean', describe: 'sign in with a code on another device (RFC 8628)' })
        .option('browser', { type: 'boolean', describe: 'sign in in the browser (PKCE, loopback redirect)' })
        .conflicts('device', 'browser')
        .example('keybroker login --profile sso', 'browser when a display is there, else a code')
        .example('keybroker login --device', 'over SSH: open the address on any device and enter the code'),
    async (args) => {
      await runLogin(ctx, args as LoginArgs);
    },
  );
}

/**
 * The resolved oidc profile and what its login session needs from the edge, or exit 2 naming
 * what the profile is instead.
 */
export function oidcProfile(ctx: AppContext, command: string) {
  const { resolved } = resolveForCommand(ctx);
  if (resolved.source.type !== 'oidc') {
    throw configError(
      'ERR_OIDC_NOT_OIDC',
      `${command}: profile ${resolved.name} uses a ${resolved.source.type} source, not oidc`,
      {
        hint: `only an oidc profile signs in; pass --profile with an oidc profile; ${seeDocs('ERR_OIDC_NOT_OIDC')}`,
      },
    );
  }
  const session: SessionDeps = {
    env: ctx.env,
    platform: ctx.platform,
    homeDir: ctx.homeDir,
    logger: ctx.logger,
    now: ctx.now,
    cacheDir: resolved.cacheDir,
  };
  return { resolved, source: resolved.source as OidcSourceConfig, session };
}

async function runLogin(ctx: AppContext, args: LoginArgs): Promise<void> {
  const { resolved, source, session } = oidcProfile(ctx, 'login');
  const { defaultFlow, signIn } = await import('../sources/oidc-signin.js');
  const flow = args.device
    ? 'device'
    : args.browser
      ? 'browser'
      : (source.flow ?? defaultFlow(ctx.env, ctx.platform));
  const waitEnv = Number(ctx.env.KEYBROKER_LOGIN_WAIT_MS);
  const who = await signIn(resolved.name, source, resolved.cache.storage, flow, {
    ...session,
    // The provider's verification URI and user code: one clean line each (output/redact.ts).
    say: (line) => process.stderr.write(`${cleanLine(line)}\n`),
    ...(Number.isInteger(waitEnv) && waitEnv > 0 ? { waitMs: waitEnv } : {}),
  });
  process.stderr.write(
    `keybroker: signed in to profile ${resolved.name} as ${printableAscii(who.sub)}${who.email ? ` (${printableAscii(who.email)})` : ''}\n`,
  );
}
