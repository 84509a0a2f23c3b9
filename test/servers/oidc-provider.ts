/**
 * A real OpenID provider for the tests: panva's oidc-provider (certified), on 127.0.0.1 with an
 * http issuer, a public native client (PKCE), the device flow, revocation and refresh-token
 * rotation (a rotated refresh token presented again revokes the whole grant, as real providers
 * with reuse detection do). Users sign in through the provider's own development pages; the
 * helpers below drive those pages over plain HTTP the way a person's browser would.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

export const TEST_CLIENT_ID = 'keybroker-test';

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

export interface OidcTestProvider {
  issuer: string;
  provider: Provider;
  users: Map<string, TestUser>;
  /** Every token endpoint request, in order. */
  grants: GrantEvent[];
  /** Token revocations the provider accepted (RFC 7009). */
  revocations: number;
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
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
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
