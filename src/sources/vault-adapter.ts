/**
 * node-vault (the design's Vault library) behind one file: every workaround it needs lives
 * here, each with its reason, and vault-client.ts talks to Vault only through `VaultAdapter`.
 *
 * 1. Loaded lazily with DEBUG unset (`importNodeVault`), so its `debug` loggers stay off.
 * 2. Its own request logger is replaced by a no-op (it prints request bodies: secret ids).
 * 3. Its HTTP transport (`request-promise` option) is ours (`vaultTransport`): the shared
 *    network client's agents (trust store, proxies: src/net/), redirects limited to one 307 to
 *    https, and the `Retry-After` header kept.
 * 4. Its `handleVaultResponse` is wrapped so that the error it builds carries Retry-After.
 * 5. Its fallbacks to process.env (VAULT_TOKEN, VAULT_NAMESPACE, VAULT_PREFIX) are overridden:
 *    the resolved config is the only input.
 * 6. Logins always name their mount: node-vault posts to `auth//login` without one, and its
 *    certLogin ignores the mount altogether.
 *
 * A failed request rejects with node-vault's ApiResponseError (`response.statusCode`,
 * `response.body`, and from (4) `response.retryAfterSec`) or with axios's / the network's error:
 * vault-client.ts's `mapVaultError` turns either into a typed error.
 *
 * Redirects (contract §3a, issue 11 finding 2): axios would follow up to 21, to any scheme,
 * resending X-Vault-Token. Here a 307 (a standby node naming the active one) is followed
 * once and only to an https URL, as the vault CLI does; every other redirect is refused.
 */
import { RETRY_AFTER_MAX_SEC } from '../cache/policy.js';
import { seeDocs, unreachableError } from '../errors.js';
import { type NetClient, withoutDebugEnv } from '../net/client.js';
import { isObject } from '../platform/text.js';

/** What every request is given: the time left before the run's deadline. */
export interface VaultRequestOptions {
  timeout: number;
}

/** The login methods node-vault is asked for (token auth needs no login). */
export type VaultLoginMethod = 'approle' | 'kubernetes' | 'jwt' | 'cert';

/** Vault as vault-client.ts sees it. */
export interface VaultAdapter {
  /** The token sent as X-Vault-Token from now on; undefined sends none (a login). */
  setToken(token: string | undefined): void;
  /** GET /v1/<apiPath>; resolves to the parsed body. */
  read(apiPath: string, options: VaultRequestOptions): Promise<unknown>;
  /** POST /v1/auth/<mount>/login with `data` (role_id and secret_id, role and jwt, name). */
  login(
    method: VaultLoginMethod,
    mount: string,
    data: Record<string, unknown>,
    options: VaultRequestOptions,
  ): Promise<unknown>;
}

export interface VaultAdapterOptions {
  /** The checked address, no trailing slash. */
  address: string;
  namespace?: string | undefined;
  /** Agents with the profile's TLS settings and proxy routing. */
  net: Pick<NetClient, 'httpsAgent' | 'httpAgent'>;
  now(): number;
}

/** The subset of node-vault's client that we use (its own types are loose). */
interface NodeVaultClient {
  token?: string | undefined;
  namespace?: string | undefined;
  pathPrefix: string;
  read(path: string, requestOptions?: Record<string, unknown>): Promise<unknown>;
  approleLogin(args: Record<string, unknown>): Promise<unknown>;
  kubernetesLogin(args: Record<string, unknown>): Promise<unknown>;
  jwtLogin(args: Record<string, unknown>): Promise<unknown>;
  write(
    path: string,
    data: Record<string, unknown>,
    requestOptions?: Record<string, unknown>,
  ): Promise<unknown>;
  /** Turns a transport response into the body or an ApiResponseError; looked up per request. */
  handleVaultResponse(response: TransportResponse | undefined): Promise<unknown>;
}

/**
 * (1) node-vault loads the `debug` package, which reads DEBUG once, when it loads; axios's
 * follow-redirects then logs every request's headers (X-Vault-Token included) to stderr
 * whenever DEBUG names it (a stray DEBUG=* in a developer's shell). Loading it with DEBUG unset
 * keeps those loggers off, so nothing secret can reach stderr that way.
 */
async function importNodeVault(): Promise<{ nodeVault: unknown; axios: unknown }> {
  return withoutDebugEnv(async () => {
    // axios's CommonJS build is the module node-vault itself requires: one copy in the bundle.
    const [nodeVault, axios] = await Promise.all([import('node-vault'), import('axios/dist/node/axios.cjs')]);
    return { nodeVault, axios };
  });
}

/** Loads node-vault (on the cold path only) and returns Vault behind the adapter. */
export async function openVaultAdapter(options: VaultAdapterOptions): Promise<VaultAdapter> {
  const mods = (await importNodeVault()) as {
    nodeVault: { default?: unknown };
    axios: { default?: unknown };
  };
  const factory = (mods.nodeVault.default ?? mods.nodeVault) as (
    options: Record<string, unknown>,
  ) => NodeVaultClient;
  const axios = (mods.axios.default ?? mods.axios) as AxiosLike;
  const client = factory({
    endpoint: options.address,
    apiVersion: 'v1',
    // (2) node-vault's default logger prints request bodies (secret ids) when DEBUG=node-vault.
    debug: () => {},
    // (3) Our transport: node-vault's own but for the Retry-After header, which it would drop.
    'request-promise': vaultTransport(axios, { net: options.net, now: options.now }),
  });
  // (4) node-vault's ApiResponseError keeps only the status and body; carry Retry-After over.
  const handle = client.handleVaultResponse;
  client.handleVaultResponse = (response) =>
    handle(response).catch((e: unknown) => {
      if (response?.retryAfterSec !== undefined && isObject(e) && isObject(e.response)) {
        e.response.retryAfterSec = response.retryAfterSec;
      }
      throw e;
    });
  // (5) node-vault falls back to process.env (VAULT_TOKEN, VAULT_NAMESPACE, VAULT_PREFIX); the
  // resolved config is the only input here.
  client.token = undefined;
  client.namespace = options.namespace || undefined;
  client.pathPrefix = '';

  return {
    setToken(token) {
      client.token = token;
    },
    read(apiPath, requestOptions) {
      return client.read(apiPath, { ...requestOptions });
    },
    login(method, mount, data, requestOptions) {
      // (6) The credential of cert auth is the TLS client certificate the network client
      // presents; node-vault's certLogin ignores the mount, so post to the login path directly.
      if (method === 'cert') return client.write(`auth/${mount}/login`, data, { ...requestOptions });
      // (6) Always pass the mount: node-vault posts to auth//login without it.
      const args = { ...data, mount_point: mount, requestOptions: { ...requestOptions } };
      if (method === 'approle') return client.approleLogin(args);
      return method === 'kubernetes' ? client.kubernetesLogin(args) : client.jwtLogin(args);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// (3) The transport, handed to node-vault through its `request-promise` option. It does what
// node-vault's built-in one does (axios, the same module node-vault loads) with the shared
// network client's agents, and keeps the one thing that one drops: the `Retry-After` header
// Vault sends with a 429 when a rate limit quota refuses a request. The engine turns it into
// the entry's backoff horizon (contract §2, issue 7).

/** The subset of axios used here. */
export interface AxiosLike {
  request(config: Record<string, unknown>): Promise<{
    status: number;
    data: unknown;
    headers: Record<string, unknown>;
  }>;
}

/** What node-vault passes to its transport (the `request` library's option names). */
export interface TransportRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
  timeout?: number;
}

/** What node-vault's response handler reads, plus the parsed Retry-After. */
export interface TransportResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
  retryAfterSec?: number;
}

/**
 * Parses an HTTP Retry-After value (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) into
 * whole seconds from `nowMs`, capped at RETRY_AFTER_MAX_SEC; undefined when absent or invalid.
 */
export function parseRetryAfter(value: unknown, nowMs: number): number | undefined {
  if (Array.isArray(value)) value = value[0];
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  let seconds: number;
  if (/^\d+$/.test(text)) {
    seconds = Number(text);
  } else {
    // IMF-fixdate and RFC 850 name GMT; asctime does not, but is GMT too (RFC 9110 §5.6.7).
    let date: string;
    if (/^[A-Za-z]{3,9}, .*GMT$/.test(text)) date = text;
    else if (/^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/.test(text)) date = `${text} GMT`;
    else return undefined;
    const at = Date.parse(date);
    if (!Number.isFinite(at)) return undefined;
    seconds = Math.max(0, Math.ceil((at - nowMs) / 1000));
  }
  return Math.min(seconds, RETRY_AFTER_MAX_SEC);
}

export interface TransportOptions {
  /** Agents with the profile's TLS settings and proxy routing. */
  net: Pick<NetClient, 'httpsAgent' | 'httpAgent'>;
  now(): number;
}

function header(headers: Record<string, unknown>, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
}

/** A redirect we do not follow: exit 3, naming where it pointed (its origin only). */
export function redirectRefused(from: string, status: number, location: string | undefined, why: string) {
  let to = '(no Location)';
  if (location !== undefined) {
    try {
      to = new URL(location, from).origin;
    } catch {
      to = '(an invalid Location)';
    }
  }
  return unreachableError(
    'ERR_VAULT_REDIRECT',
    `vault at ${new URL(from).origin}: answered HTTP ${status} redirecting to ${to}; ${why}`,
    {
      hint: `point VAULT_ADDR (or the profile's address) at the active node or at a load balancer, over https; ${seeDocs('ERR_VAULT_REDIRECT')}`,
    },
  );
}

/** node-vault's `request-promise` option: an object whose `defaults()` returns the request function. */
export function vaultTransport(
  axios: AxiosLike,
  options: TransportOptions,
): { defaults(): (request: TransportRequest) => Promise<TransportResponse> } {
  const send = async (request: TransportRequest): Promise<TransportResponse> => {
    const json = request.json;
    const once = (url: string) =>
      axios.request({
        method: request.method,
        url,
        headers: { ...request.headers },
        ...(json !== null && typeof json === 'object' ? { data: json } : {}),
        ...(request.timeout !== undefined ? { timeout: request.timeout } : {}),
        httpsAgent: options.net.httpsAgent,
        httpAgent: options.net.httpAgent,
        // The agents route through proxies (src/net/); axios's own HTTPS_PROXY handling is off.
        proxy: false,
        maxRedirects: 0,
        // Every status reaches node-vault's handler, which turns non-2xx into its error.
        validateStatus: () => true,
      });
    let url = request.uri;
    let response = await once(url);
    for (let followed = 0; response.status >= 300 && response.status < 400; followed++) {
      const location = header(response.headers, 'location');
      if (response.status !== 307 || location === undefined) {
        throw redirectRefused(
          url,
          response.status,
          location,
          'keybroker follows only a 307 from a standby node',
        );
      }
      const next = new URL(location, url);
      if (next.protocol !== 'https:') {
        throw redirectRefused(
          url,
          response.status,
          location,
          'a redirect to plain http is refused (the token is not sent)',
        );
      }
      if (followed > 0)
        throw redirectRefused(url, response.status, location, 'only one redirect is followed');
      url = next.href;
      response = await once(url);
    }
    const retryAfterSec = parseRetryAfter(response.headers['retry-after'], options.now());
    return {
      statusCode: response.status,
      body: response.data,
      request: { path: new URL(url).pathname },
      ...(retryAfterSec !== undefined ? { retryAfterSec } : {}),
    };
  };
  return { defaults: () => send };
}
