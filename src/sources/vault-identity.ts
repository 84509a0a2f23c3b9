/**
 * `vault-identity` source: Vault mints the JWT (`identity/oidc/token/<role>`), so its claims
 * come from the authenticated Vault identity and no signing key sits on the laptop. The
 * expiry is the token's own `exp`; the broker decides whether it still serves.
 */
import type { VaultIdentitySourceConfig } from '../config/types.js';
import { missingError, seeDocs } from '../errors.js';
import type { FetchedToken, Source, SourceDeps, TokenRequest } from './types.js';
import { badResponseError, dataOf, isObject, openVaultSession, type VaultOperation } from './vault-client.js';

/** The payload of a compact JWS, without verifying it (Vault signed it; the gateway verifies). */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  if (!/^[A-Za-z0-9_-]+$/.test(parts[1])) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    return isObject(payload) ? payload : undefined;
  } catch {
    return undefined;
  }
}

/** The largest time a JavaScript Date holds, in seconds (±8.64e15 ms). */
const MAX_EXP_SEC = 8.64e12;

export function createVaultIdentitySource(config: VaultIdentitySourceConfig, deps: SourceDeps): Source {
  const role = config.role;
  const apiPath = `identity/oidc/token/${role}`;
  const op: VaultOperation = { kind: 'identity', what: `vault identity token for role ${role}`, apiPath };

  const malformed = (why: string) =>
    missingError('ERR_VAULT_IDENTITY_TOKEN_MALFORMED', `${op.what}: ${why}`, {
      hint: `check the role's key and template in Vault (vault read identity/oidc/role/${role}); ${seeDocs('ERR_VAULT_IDENTITY_TOKEN_MALFORMED')}`,
    });

  return {
    type: 'vault-identity',
    describe() {
      const ns = config.namespace ? ` namespace ${config.namespace}` : '';
      const method = config.auth?.method ?? 'token';
      return `vault identity token role=${role} at ${config.address ?? '(no address)'}${ns} (auth ${method})`;
    },
    async getToken(request: TokenRequest): Promise<FetchedToken> {
      const session = await openVaultSession({ config, deps, request });
      return session.run(async (s) => {
        const data = dataOf(await s.read(apiPath, op));
        if (!data) throw badResponseError(op, 'the answer holds no data');
        const token = data.token;
        if (typeof token !== 'string' || !token) throw badResponseError(op, 'the answer holds no token');
        deps.logger.addSecret(token);
        const payload = decodeJwtPayload(token.trim());
        if (!payload) throw malformed('the token is not a JWT');
        const exp = payload.exp;
        if (typeof exp !== 'number' || !Number.isFinite(exp)) throw malformed('the token has no numeric exp');
        // Beyond what a Date can hold (an exp in ms or µs): toISOString() would throw a RangeError.
        if (Math.abs(exp) > MAX_EXP_SEC) throw malformed('the token has an exp out of range');
        deps.logger.debug(
          `vault: identity token for role ${role} expires at ${new Date(exp * 1000).toISOString()}`,
        );
        const meta: Record<string, string> = {};
        if (typeof payload.aud === 'string') meta.aud = payload.aud;
        if (typeof payload.sub === 'string') meta.sub = payload.sub;
        return { value: token, expiresAtMs: exp * 1000, meta };
      });
    },
  };
}
