/**
 * The `oidc` source's RFC 8693 `exchange` against a real OpenID provider (oidc-provider on
 * 127.0.0.1, with the token exchange grant registered by test/servers/oidc-provider.ts): the
 * access token of each renewal is exchanged for one scoped to the gateway, and that is printed.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { claimsOf, loginAs, oidcConfig } from '../helpers/oidc.js';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import {
  ACCESS_TOKEN_TYPE,
  type OidcTestProvider,
  startOidcProvider,
  TOKEN_EXCHANGE,
} from '../servers/oidc-provider.js';

const GATEWAY = 'https://llm-gateway.example.test';

let provider: OidcTestProvider;
let sb: Sandbox;

beforeAll(async () => {
  provider = await startOidcProvider({ exchangeAudiences: [GATEWAY] });
});
afterAll(async () => {
  await provider.close();
});
beforeEach(() => {
  sb = makeSandbox();
  provider.grants.length = 0;
  provider.exchanges.length = 0;
  provider.refreshAccessTokens.length = 0;
});
afterEach(() => sb.cleanup());

describe('oidc exchange (RFC 8693)', () => {
  it('prints the token the provider issued for the gateway, after one exchange of the renewed access token', async () => {
    sb.writeConfig(oidcConfig(provider.issuer, { exchange: { audience: GATEWAY, scope: 'llm' } }));
    await loginAs(sb, provider, 'alice');
    provider.grants.length = 0;
    const r = await runKeybroker([], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(provider.exchanges).toHaveLength(1);
    const x = provider.exchanges[0]!;
    expect(r.stdout).toBe(`${x.issued}\n`);
    // The subject token is the access token of the renewal that just happened.
    expect(provider.refreshAccessTokens).toHaveLength(1);
    expect(x).toEqual({
      subjectToken: provider.refreshAccessTokens[0],
      subjectTokenType: ACCESS_TOKEN_TYPE,
      requestedTokenType: ACCESS_TOKEN_TYPE,
      audience: GATEWAY,
      scope: 'llm',
      subject: 'alice',
      issued: x.issued,
    });
    expect(claimsOf(r.stdout.trim())).toMatchObject({
      iss: provider.issuer,
      sub: 'alice',
      aud: GATEWAY,
      scope: 'llm',
    });
    expect(provider.grants).toEqual([
      { grantType: 'refresh_token', ok: true },
      { grantType: TOKEN_EXCHANGE, ok: true },
    ]);
  });

  it('the exchanged token is cached (contract §2): a second run is a hit, with no grant at all', async () => {
    sb.writeConfig(oidcConfig(provider.issuer, { exchange: { audience: GATEWAY } }));
    await loginAs(sb, provider, 'alice');
    const first = await runKeybroker([], sb);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
    const grants = provider.grants.length;
    const second = await runKeybroker([], sb);
    expect(second).toMatchObject({ code: 0, stdout: first.stdout, stderr: '' });
    expect(provider.grants.length).toBe(grants);
    expect(provider.exchanges.map((x) => x.audience)).toEqual([GATEWAY]);
  });

  it('an exchange the provider refuses is exit 4 with one line naming the exchange, and nothing printed', async () => {
    sb.writeConfig(oidcConfig(provider.issuer, { exchange: { audience: 'https://elsewhere.example.test' } }));
    await loginAs(sb, provider, 'alice');
    const r = await runKeybroker([], sb);
    expect(r).toMatchObject({
      code: 4,
      stdout: '',
      stderr:
        'keybroker: oidc token exchange for profile sso: the provider refused to exchange the token for audience https://elsewhere.example.test (invalid_target) (check exchange.audience and exchange.scope against what the provider lets this client exchange for; run keybroker explain ERR_OIDC_EXCHANGE_REFUSED)\n',
    });
    expect(provider.exchanges.map((x) => x.error)).toEqual(['invalid_target']);
    // The login itself is fine: the renewal worked, and the refresh token is kept for the next run.
    expect(provider.refreshGrants()).toEqual([{ grantType: 'refresh_token', ok: true }]);
    sb.writeConfig(oidcConfig(provider.issuer, { exchange: { audience: GATEWAY } }));
    const again = await runKeybroker([], sb);
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
    expect(again.stdout).toBe(`${provider.exchanges[1]!.issued}\n`);
  });
});
