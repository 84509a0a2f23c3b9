/**
 * A real OpenID provider for the tests: panva's oidc-provider (certified), on 127.0.0.1 with an
 * http issuer, a public native client (PKCE), the device flow, revocation and refresh-token
 * rotation (a rotated refresh token presented again revokes the whole grant, as real providers
 * with reuse detection do). Users sign in through the provider's own development pages; the
 * helpers below drive those pages over plain HTTP the way a person's browser would.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT } from 'jose';
import Provider, { type Configuration, errors, type KoaContextWithOIDC } from 'oidc-provider';

export const TEST_CLIENT_ID = 'keybroker-test';
/** RFC 8693 §2.1 grant type and §3 token type identifiers. */
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface TestUser {
  sub: string;
  email: string;
  groups: string[];
  disabled?: boolean;
}

export interface GrantEvent {
  grantType: string;
  ok: boolean;
  error?: string;
}

/** One RFC 8693 token exchange request, as the provider saw and answered it. */
export interface ExchangeEvent {
  subjectToken: string | undefined;
  subjectTokenType: string | undefined;
  requestedTokenType: string | undefined;
  audience: string | undefined;
  scope: string | undefined;
  /** Whose access token the subject token is, when the provider issued it to this client. */
  subject?: string;
  /** The exchanged token the provider issued, or the OAuth error it answered. */
  issued?: string;
  error?: string;
}

export interface OidcTestProvider {
  issuer: string;
  provider: Provider;
  users: Map<string, TestUser>;
  /** Every token endpoint request, in order. */
  grants: GrantEvent[];
  /** Token revocations the provider accepted (RFC 7009). */
  revocations: number;
  /** Every RFC 8693 token exchange request, in order. */
  exchanges: ExchangeEvent[];
  /** Access tokens the provider issued on refresh grants, in order. */
  refreshAccessTokens: string[];
  refreshGrants(): GrantEvent[];
  close(): Promise<void>;
}

export interface ProviderOptions {
  /** ID and access token lifetime, seconds (default 3600). */
  tokenTtlSec?: number;
  rotateRefreshToken?: boolean;
  /** Held before the provider starts on a refresh grant (before it consumes the token), ms. */
  refreshDelayMs?: number;
  /** Claims every user has in addition to sub/email/groups. */
  users?: TestUser[];
  /** Audiences the token exchange grant issues tokens for; any other is `invalid_target`. */
  exchangeAudiences?: string[];
  /** Lifetime of an exchanged token, seconds (default 3600). */
  exchangeTtlSec?: number;
}

export async function startOidcProvider(options: ProviderOptions = {}): Promise<OidcTestProvider> {
  const users = new Map<string, TestUser>();
  for (const u of options.users ?? [
    { sub: 'alice', email: 'alice@example.test', groups: ['eng', 'llm-users'] },
  ]) {
    users.set(u.sub, u);
  }
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const ttl = options.tokenTtlSec ?? 3600;
  const config: Configuration = {
    clients: [
      {
        client_id: TEST_CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        // RFC 8252 §7.3: a loopback redirect URI matches whatever port the client listens on.
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: [
          'authorization_code',
          'refresh_token',
          'urn:ietf:params:oauth:grant-type:device_code',
          TOKEN_EXCHANGE,
        ],
        response_types: ['code'],
      },
    ],
    // Any login name signs in on the development pages; only known, enabled users exist.
    findAccount: async (_ctx: KoaContextWithOIDC, id: string) => {
      const user = users.get(id);
      if (!user || user.disabled) return undefined;
      return {
        accountId: id,
        claims: async () => ({ sub: id, email: user.email, email_verified: true, groups: user.groups }),
      };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['groups'],
    },
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
    },
    rotateRefreshToken: options.rotateRefreshToken ?? true,
    ttl: {
      IdToken: ttl,
      AccessToken: ttl,
      DeviceCode: 600,
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Interaction: 600,
      Session: 24 * 3600,
    },
    cookies: { keys: ['keybroker-test-cookie-key'] },
  };
  const provider = new Provider(issuer, config);
  const grants: GrantEvent[] = [];
  const state = { revocations: 0 };
  const exchanges: ExchangeEvent[] = [];
  const refreshAccessTokens: string[] = [];
  await registerTokenExchange(provider, issuer, users, exchanges, options);
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    grants.push({ grantType: String(ctx.oidc.params?.grant_type), ok: true });
  });
  provider.on('grant.error', (ctx: KoaContextWithOIDC, err: { error?: string }) => {
    grants.push({ grantType: String(ctx.oidc.params?.grant_type), ok: false, error: err.error ?? 'error' });
  });
  provider.use(async (ctx, next) => {
    if (options.refreshDelayMs && ctx.method === 'POST' && ctx.path === '/token') {
      await new Promise((r) => setTimeout(r, options.refreshDelayMs));
    }
    await next();
    if (ctx.method === 'POST' && ctx.path === '/token/revocation' && ctx.status === 200) state.revocations++;
    if (ctx.method === 'POST' && ctx.path === '/token' && ctx.status === 200) {
      const body = ctx.body as { access_token?: string } | undefined;
      if (ctx.oidc?.params?.grant_type === 'refresh_token' && body?.access_token)
        refreshAccessTokens.push(body.access_token);
    }
    // The provider leaves interval out (clients then wait 5 s); ask for 1 s so tests move on.
    if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      (ctx.body as Record<string, unknown>).interval = 1;
    }
  });
  server.on('request', provider.callback());
  return {
    issuer,
    provider,
    users,
    grants,
    exchanges,
    refreshAccessTokens,
    get revocations() {
      return state.revocations;
    },
    refreshGrants: () => grants.filter((g) => g.grantType === 'refresh_token'),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  } as OidcTestProvider;
}

/**
 * RFC 8693 token exchange, which oidc-provider does not ship: an access token this provider
 * issued to the client (subject_token_type access_token) is exchanged for a JWT access token
 * for one of `exchangeAudiences`. Errors are RFC 6749 §5.2 JSON: invalid_request for missing or
 * unsupported parameters, invalid_grant for a subject token that is not an active access token
 * of this client (or whose user is disabled), invalid_target for an audience it does not serve.
 */
async function registerTokenExchange(
  provider: Provider,
  issuer: string,
  users: Map<string, TestUser>,
  exchanges: ExchangeEvent[],
  options: ProviderOptions,
): Promise<void> {
  const { privateKey } = await generateKeyPair('ES256');
  const audiences = options.exchangeAudiences ?? [];
  const ttlSec = options.exchangeTtlSec ?? 3600;
  const handler = async (ctx: KoaContextWithOIDC) => {
    const p = ctx.oidc.params as Record<string, string | undefined>;
    const event: ExchangeEvent = {
      subjectToken: p.subject_token,
      subjectTokenType: p.subject_token_type,
      requestedTokenType: p.requested_token_type,
      audience: p.audience,
      scope: p.scope,
    };
    exchanges.push(event);
    const refuse = (err: InstanceType<typeof errors.OIDCProviderError>) => {
      event.error = err.error;
      return err;
    };
    if (!p.subject_token || !p.subject_token_type)
      throw refuse(new errors.InvalidRequest('subject_token and subject_token_type are required'));
    if (p.subject_token_type !== ACCESS_TOKEN_TYPE)
      throw refuse(new errors.InvalidRequest('unsupported subject_token_type'));
    if (p.requested_token_type !== undefined && p.requested_token_type !== ACCESS_TOKEN_TYPE)
      throw refuse(new errors.InvalidRequest('unsupported requested_token_type'));
    const at = await provider.AccessToken.find(p.subject_token);
    const user = at ? users.get(at.accountId) : undefined;
    if (!at || at.clientId !== ctx.oidc.client!.clientId || !user || user.disabled)
      throw refuse(new errors.InvalidGrant('subject_token is not an active access token of this client'));
    event.subject = at.accountId;
    if (!p.audience || !audiences.includes(p.audience))
      throw refuse(new errors.InvalidTarget('token exchange for this audience is not allowed'));
    const issued = await new SignJWT({
      ...(p.scope ? { scope: p.scope } : {}),
      client_id: ctx.oidc.client!.clientId,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .setIssuer(issuer)
      .setSubject(at.accountId)
      .setAudience(p.audience)
      .setIssuedAt()
      .setExpirationTime(`${ttlSec}s`)
      .setJti(crypto.randomUUID())
      .sign(privateKey);
    event.issued = issued;
    ctx.body = {
      access_token: issued,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: ttlSec,
      ...(p.scope ? { scope: p.scope } : {}),
    };
  };
  provider.registerGrantType(TOKEN_EXCHANGE, handler, [
    'subject_token',
    'subject_token_type',
    'requested_token_type',
    'audience',
    'resource',
    'scope',
    'actor_token',
    'actor_token_type',
  ]);
}

// ---------------------------------------------------------------------------------------------
// A person's browser, over HTTP: cookies, redirects and the provider's forms.

interface Form {
  action: string;
  fields: Record<string, string>;
}

/** The first form on the page (the provider's pages each have one that matters). */
export function parseForm(html: string, base: string): Form {
  const formMatch = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!formMatch) throw new Error(`no form on the page: ${html.slice(0, 300)}`);
  const attrs = formMatch[1]!;
  const action = /action="([^"]*)"/.exec(attrs)?.[1] ?? '';
  const fields: Record<string, string> = {};
  for (const m of formMatch[2]!.matchAll(/<input\b([^>]*)>/gi)) {
    const name = /name="([^"]*)"/.exec(m[1]!)?.[1];
    if (!name) continue;
    fields[name] = decodeHtml(/value="([^"]*)"/.exec(m[1]!)?.[1] ?? '');
  }
  return { action: new URL(decodeHtml(action), base).toString(), fields };
}

function decodeHtml(s: string): string {
  return s
    .replace(/&#x2F;/g, '/')
    .replace(/&#x3D;/g, '=')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

export class TestBrowser {
  private cookies = new Map<string, string>();

  /** Loads a URL and follows redirects; returns the final URL and body. */
  async go(url: string, init: { method?: string; form?: Record<string, string> } = {}) {
    let current = url;
    let method = init.method ?? 'GET';
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hops = 0; hops < 20; hops++) {
      const res = await fetch(current, {
        method,
        redirect: 'manual',
        headers: {
          cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
          ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        ...(body !== undefined ? { body } : {}),
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair!.indexOf('=');
        this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        current = new URL(location, current).toString();
        method = 'GET';
        body = undefined;
        continue;
      }
      return { url: current, status: res.status, html: await res.text() };
    }
    throw new Error('too many redirects');
  }

  async submit(page: { url: string; html: string }, overrides: Record<string, string> = {}) {
    const form = parseForm(page.html, page.url);
    return this.go(form.action, { method: 'POST', form: { ...form.fields, ...overrides } });
  }

  /** From the login page on: signs in as `login`, consents, and follows to wherever that leads. */
  async signInAndConsent(page: { url: string; html: string }, login: string) {
    let next = page;
    for (let step = 0; step < 6; step++) {
      if (/name="login"/.test(next.html)) next = await this.submit(next, { login, password: 'any' });
      else if (
        /<form\b[^>]*\/interaction\/[^"]*\/confirm/.test(next.html) ||
        /name="prompt" value="consent"/.test(next.html)
      )
        next = await this.submit(next);
      else return next;
    }
    return next;
  }

  /** Completes a device flow through the provider's own pages: code entry, confirm, login, consent. */
  async completeDeviceFlow(verificationUri: string, userCode: string, login: string) {
    const entry = await this.go(verificationUri);
    const confirm = await this.submit(entry, { user_code: userCode });
    const loginPage = await this.submit(confirm);
    return this.signInAndConsent(loginPage, login);
  }

  /** Denies a device flow at its confirmation page (the [ Abort ] button). */
  async abortDeviceFlow(verificationUri: string, userCode: string) {
    const entry = await this.go(verificationUri);
    const confirm = await this.submit(entry, { user_code: userCode });
    return this.submit(confirm, { abort: 'yes' });
  }
}
