/**
 * `keybroker jwks [--profile P]`: the public JWK Set of a jwt profile's signing key, for the
 * gateway that verifies the tokens (e.g. LiteLLM's JWT_PUBLIC_KEY_URL).
 */
import type { Argv } from 'yargs';
import type { JwtSourceConfig } from '../config/types.js';
import type { AppContext } from '../context.js';
import { configError, seeDocs } from '../errors.js';
import { resolveForCommand } from './token.js';

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'jwks',
    "print the public JWK Set of a jwt profile's signing key (for the gateway)",
    {},
    async () => {
      await runJwks(ctx);
    },
  );
}

export async function runJwks(ctx: AppContext): Promise<void> {
  const { resolved } = resolveForCommand(ctx);
  if (resolved.source.type !== 'jwt') {
    throw configError(
      'ERR_JWKS_NOT_JWT',
      `jwks: profile ${resolved.name} uses a ${resolved.source.type} source, not jwt`,
      {
        hint: `only a jwt profile has a signing key to publish; pass --profile with a jwt profile; ${seeDocs('ERR_JWKS_NOT_JWT')}`,
      },
    );
  }
  const { publicJwks } = await import('../sources/jwt.js');
  const jwks = await publicJwks(resolved.source as JwtSourceConfig, {
    logger: ctx.logger,
    // Publishing a key needs no memo: nothing is fetched from a remote source.
    memo: { get: async () => undefined, set: async () => {}, delete: async () => {} },
    env: ctx.env,
    homeDir: ctx.homeDir,
    ttlMs: resolved.ttlMs,
    refreshMarginMs: resolved.cache.refreshMarginMs,
  });
  ctx.stdout(`${JSON.stringify(jwks, null, 2)}\n`);
}
