/**
 * The `oidc` source (contract §3): the company's identity provider mints the token. The token
 * path only ever renews silently with the refresh token that `keybroker login` stored; it never
 * opens a browser or prompts. No login, or a login the provider refuses, is exit 4 with the hint
 * to log in; a provider that cannot be reached is exit 3, so the cache's stale-if-error applies.
 */
import type { OidcSourceConfig } from '../config/types.js';
import { cacheDir } from '../platform/paths.js';
import { loginName } from './oidc-login.js';
import type { FetchedToken, Source, SourceDeps, TokenRequest } from './types.js';

export function createOidcSource(config: OidcSourceConfig, deps: SourceDeps): Source {
  const profile = deps.profile ?? 'default';
  return {
    type: 'oidc',
    describe: () =>
      `oidc ${config.token === 'access_token' ? 'access_token' : 'id_token'}${config.exchange ? ' exchanged' : ''} from ${config.issuer} (client ${config.clientId})`,
    async getToken(request: TokenRequest): Promise<FetchedToken> {
      const { openSession, renew } = await import('./oidc-session.js');
      const sessionDeps = {
        env: deps.env,
        platform: deps.platform ?? process.platform,
        homeDir: deps.homeDir,
        logger: deps.logger,
        now: request.now,
        cacheDir:
          deps.cacheDir ??
          cacheDir({ env: deps.env, platform: deps.platform ?? process.platform, homeDir: deps.homeDir }),
      };
      const session = await openSession(profile, config, deps.cacheStorage ?? 'file', sessionDeps);
      const token = await renew(session, config, sessionDeps, request);
      const sub = token.claims?.sub;
      return {
        value: token.value,
        expiresAtMs: token.expiresAtMs,
        meta: { login: loginName(profile, config), ...(typeof sub === 'string' ? { sub } : {}) },
      };
    },
  };
}
