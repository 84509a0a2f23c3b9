/**
 * The HTTP transport handed to node-vault through its `request-promise` option. It does what
 * node-vault's built-in one does (axios, the same module node-vault loads) with the shared
 * network client's agents (trust store, proxies: src/net/), and keeps the one thing that one
 * drops: the `Retry-After` header Vault sends with a 429 when a rate limit quota refuses a
 * request. The broker turns it into the entry's backoff horizon (contract §2, issue 7).
 *
 * Redirects (contract §3a, issue 11 finding 2): axios would follow up to 21, to any scheme,
 * resending X-Vault-Token. Here a 307 (a standby node naming the active one) is followed
 * once and only to an https URL, as the vault CLI does; every other redirect is refused.
 */
import { RETRY_AFTER_MAX_SEC } from '../cache/policy.js';
import { seeDocs, unreachableError } from '../errors.js';
import type { NetClient } from '../net/client.js';

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
