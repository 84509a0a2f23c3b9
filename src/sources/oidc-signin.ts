/**
 * `keybroker login` and `logout` for an `oidc` profile: the device flow (RFC 8628), the browser
 * flow (authorization code + PKCE with a loopback redirect on 127.0.0.1, RFC 8252), revocation
 * (RFC 7009), and keeping what they yield in the login's storage.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { CacheStorage, OidcSourceConfig } from '../config/types.js';
import { deniedError, isKeybrokerError, seeDocs } from '../errors.js';
import { createDeadline } from '../platform/deadline.js';
import { client, jwtClaims, loginHint, oidcError, openClient, safe, scopesOf } from './oidc-client.js';
import type { LoginIdentity } from './oidc-login.js';
import { audienceParams, type OidcSession, openSession, type SessionDeps } from './oidc-session.js';

export type SignInFlow = 'device' | 'browser';

/** How long logout waits for the provider to revoke the refresh token. */
const REVOCATION_TIMEOUT_MS = 8000;

export interface SignInDeps extends SessionDeps {
  /** One line on stderr (the logger's warn, unprefixed lines are the caller's). */
  say: (line: string) => void;
  /** How long a person gets to finish signing in. */
  waitMs?: number;
}

/** Browser when a display is there to show one; the device flow over SSH or without one. */
export function defaultFlow(env: SessionDeps['env'], platform: NodeJS.Platform): SignInFlow {
  if (env.SSH_CONNECTION || env.SSH_CLIENT || env.SSH_TTY) return 'device';
  if (platform === 'darwin' || platform === 'win32') return 'browser';
  return env.DISPLAY || env.WAYLAND_DISPLAY ? 'browser' : 'device';
}

type Tokens = client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;

interface FlowInput {
  config: client.Configuration;
  source: OidcSourceConfig;
  scope: string;
  deps: SignInDeps;
  where: { profile: string; issuer: string };
  waitMs: number;
}

export async function signIn(
  profile: string,
  source: OidcSourceConfig,
  storage: CacheStorage,
  flow: SignInFlow,
  deps: SignInDeps,
): Promise<LoginIdentity> {
  const session = await openSession(profile, source, storage, deps);
  const where = session.where;
  const config = await openClient(source, { env: deps.env, platform: deps.platform }, where);
  const scope = scopesOf(source).join(' ');
  const waitMs = deps.waitMs ?? 10 * 60_000;
  const input: FlowInput = { config, source, scope, deps, where, waitMs };
  const tokens = flow === 'device' ? await deviceFlow(input) : await browserFlow(input);
  if (!tokens.refresh_token) {
    throw deniedError(
      'ERR_OIDC_NO_REFRESH_TOKEN',
      `login to profile ${profile}: the provider issued no refresh token, so keybroker could not renew silently`,
      {
        hint: `ask for the provider's offline scope (offline_access for most; see docs/oidc.md) and allow the refresh_token grant for the client; ${seeDocs('ERR_OIDC_NO_REFRESH_TOKEN')}`,
      },
    );
  }
  const claims = tokens.claims() ?? (tokens.id_token ? jwtClaims(tokens.id_token) : undefined) ?? {};
  const sub = typeof claims.sub === 'string' ? claims.sub : '';
  const identity: LoginIdentity = {
    v: 1,
    issuer: source.issuer,
    clientId: source.clientId,
    sub,
    ...(typeof claims.email === 'string' ? { email: claims.email } : {}),
    ...(Array.isArray(claims.groups) ? { groups: claims.groups.map(String) } : {}),
    ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
    loginAtMs: deps.now(),
    server: { ...config.serverMetadata() },
    discoveredAtMs: deps.now(),
  };
  const lock = await session.lock(deps.now() + 30_000);
  try {
    await session.writeSecret({ v: 1, refreshToken: tokens.refresh_token, receivedAtMs: deps.now() });
    session.writeIdentity(identity);
    // Tokens cached for whoever was signed in before are not this login's.
    await dropCachedTokens(session, profile);
  } finally {
    lock.release();
  }
  return identity;
}

async function deviceFlow(flow: FlowInput): Promise<Tokens> {
  const { config, source, scope, deps, where, waitMs } = flow;
  let auth: Awaited<ReturnType<typeof client.initiateDeviceAuthorization>>;
  try {
    auth = await client.initiateDeviceAuthorization(config, { scope, ...audienceParams(source) });
  } catch (e) {
    throw oidcError(e, `login to profile ${where.profile}: device authorization at ${source.issuer}`, where);
  }
  deps.say(
    `keybroker: to sign in, open ${safe(auth.verification_uri)} and enter the code ${safe(auth.user_code)}`,
  );
  if (auth.verification_uri_complete) deps.say(`keybroker: or open ${safe(auth.verification_uri_complete)}`);
  const signInWait = createDeadline(waitMs);
  try {
    // openid-client polls at the provider's interval, slows down on slow_down and waits on
    // authorization_pending; access_denied and expired_token end it.
    return await client.pollDeviceAuthorizationGrant(config, auth, audienceParams(source), {
      signal: signInWait.signal,
    });
  } catch (e) {
    throw oidcError(e, `login to profile ${where.profile}`, where);
  } finally {
    signInWait.clear();
  }
}

const CLOSE_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>keybroker</title></head>
<body style="font-family:sans-serif;margin:3em"><h1>Signed in</h1><p>keybroker has your sign-in. You can close this tab.</p></body></html>
`;
const FAIL_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>keybroker</title></head>
<body style="font-family:sans-serif;margin:3em"><h1>Sign-in not completed</h1><p>Go back to the terminal for details. You can close this tab.</p></body></html>
`;

async function browserFlow(flow: FlowInput): Promise<Tokens> {
  const { config, source, scope, deps, where, waitMs } = flow;
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) =>
      reject(
        deniedError(
          'ERR_OIDC_REDIRECT_PORT',
          `login to profile ${where.profile}: cannot listen on 127.0.0.1:${source.redirectPort ?? 0} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
          {
            hint: `free the port or change redirectPort; ${seeDocs('ERR_OIDC_REDIRECT_PORT')}`,
          },
        ),
      ),
    );
    server.listen(source.redirectPort ?? 0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const params: Record<string, string> = {
    redirect_uri: redirectUri,
    scope,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    ...audienceParams(source),
  };
  // Most providers issue a refresh token to a new grant only when consent is asked for.
  if (scopesOf(source).includes('offline_access')) params.prompt = 'consent';
  const url = client.buildAuthorizationUrl(config, params).href;
  const signInWait = createDeadline(waitMs);
  try {
    const callback = new Promise<URL>((resolve) => {
      server.on('request', (req, res) => {
        const current = new URL(req.url ?? '/', redirectUri);
        if (current.pathname !== '/callback' || current.searchParams.get('state') !== state) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
          return;
        }
        const ok = current.searchParams.has('code');
        res
          .writeHead(ok ? 200 : 400, { 'content-type': 'text/html; charset=utf-8', connection: 'close' })
          .end(ok ? CLOSE_PAGE : FAIL_PAGE);
        resolve(current);
      });
    });
    deps.say(`keybroker: opening your browser to sign in; if it does not open, go to ${url}`);
    openBrowser(url, deps);
    const current = await signInWait.race(callback, () =>
      deniedError(
        'ERR_OIDC_LOGIN_REFUSED',
        `login to profile ${where.profile}: the browser sign-in was not completed in time`,
        {
          hint: `${loginHint(where.profile)} --device to sign in with a code instead; ${seeDocs('ERR_OIDC_LOGIN_REFUSED')}`,
        },
      ),
    );
    try {
      return await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: scopesOf(source).includes('openid'),
      });
    } catch (e) {
      throw oidcError(e, `login to profile ${where.profile}`, where);
    }
  } finally {
    signInWait.clear();
    server.closeAllConnections();
    server.close();
  }
}

/** `$BROWSER` (a command, `%s` for the URL, `:`-separated alternatives) or the system opener. */
function openBrowser(url: string, deps: SignInDeps): void {
  const fromEnv = deps.env.BROWSER?.split(':').find((b) => b.trim() !== '');
  let command: string;
  let args: string[];
  if (fromEnv) {
    const parts = fromEnv.trim().split(/\s+/);
    command = parts[0]!;
    args = parts.slice(1).map((a) => a.replace('%s', url));
    if (!fromEnv.includes('%s')) args.push(url);
  } else if (deps.platform === 'darwin') {
    command = 'open';
    args = [url];
  } else if (deps.platform === 'win32') {
    command = 'rundll32';
    args = ['url.dll,FileProtocolHandler', url];
  } else {
    command = 'xdg-open';
    args = [url];
  }
  try {
    const child = spawn(command, args, { stdio: 'ignore', detached: true });
    child.on('error', () =>
      deps.say(`keybroker: could not start ${path.basename(command)}; open the address above yourself`),
    );
    child.unref();
  } catch {
    deps.say(`keybroker: could not start ${path.basename(command)}; open the address above yourself`);
  }
}

/** Token cache entries of the profile (files and keychain items): not the new login's. */
async function dropCachedTokens(session: OidcSession, profile: string): Promise<void> {
  const { belongsTo } = await import('../cli/cache.js');
  let names: string[] = [];
  try {
    names = fs.readdirSync(session.dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (belongsTo(name, profile) && !name.endsWith('.lock'))
      fs.rmSync(path.join(session.dir, name), { force: true });
  }
  if (session.store.kind === 'keychain') {
    for (const key of await session.store.listKeys())
      if (belongsTo(key, profile)) await session.store.delete(key);
  }
}

export interface SignOutResult {
  identity?: LoginIdentity;
  revoked: boolean;
  /** Why the provider was not told (no endpoint, or it could not be reached). */
  revocationError?: unknown;
}

export async function signOut(
  profile: string,
  source: OidcSourceConfig,
  storage: CacheStorage,
  deps: SessionDeps,
): Promise<SignOutResult> {
  const session = await openSession(profile, source, storage, deps);
  const lock = await session.lock(deps.now() + 30_000);
  try {
    const identity = session.readIdentity();
    const secret = await session.readSecret();
    let revoked = false;
    let revocationError: unknown;
    if (secret) {
      const revocation = createDeadline(REVOCATION_TIMEOUT_MS);
      try {
        const config = await openClient(
          source,
          { env: deps.env, platform: deps.platform, signal: revocation.signal },
          session.where,
          identity?.server,
        );
        if (config.serverMetadata().revocation_endpoint) {
          await client.tokenRevocation(config, secret.refreshToken, { token_type_hint: 'refresh_token' });
          revoked = true;
        }
      } catch (e) {
        revocationError = isKeybrokerError(e)
          ? e
          : oidcError(e, `logout of profile ${profile}: revocation at ${source.issuer}`, session.where);
      } finally {
        revocation.clear();
      }
    }
    // Every local trace goes, whatever the provider said.
    await session.forget();
    await dropCachedTokens(session, profile);
    return { ...(identity ? { identity } : {}), revoked, ...(revocationError ? { revocationError } : {}) };
  } finally {
    lock.release();
  }
}
