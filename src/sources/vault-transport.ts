/**
 * The HTTP transport handed to node-vault through its `request-promise` option. It does what
 * node-vault's built-in one does (axios, the same module node-vault loads, with a TLS agent
 * built from the profile's CA and verification setting) and keeps the one thing that one
 * drops: the `Retry-After` header Vault sends with a 429 when a rate limit quota refuses a
 * request. The broker turns it into the entry's backoff horizon (contract §2, issue 7).
 */
import * as https from 'node:https';
import { RETRY_AFTER_MAX_SEC } from '../cache/policy.js';

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
  /** Verify the server's certificate (false only with tlsSkipVerify). */
  rejectUnauthorized: boolean;
  ca?: Buffer;
  now(): number;
}

/** node-vault's `request-promise` option: an object whose `defaults()` returns the request function. */
export function vaultTransport(
  axios: AxiosLike,
  options: TransportOptions,
): { defaults(): (request: TransportRequest) => Promise<TransportResponse> } {
  const httpsAgent = new https.Agent({
    rejectUnauthorized: options.rejectUnauthorized,
    ...(options.ca ? { ca: options.ca } : {}),
  });
  const send = async (request: TransportRequest): Promise<TransportResponse> => {
    const json = request.json;
    const response = await axios.request({
      method: request.method,
      url: request.uri,
      headers: { ...request.headers },
      ...(json !== null && typeof json === 'object' ? { data: json } : {}),
      ...(request.timeout !== undefined ? { timeout: request.timeout } : {}),
      httpsAgent,
      // Every status reaches node-vault's handler, which turns non-2xx into its error.
      validateStatus: () => true,
    });
    const retryAfterSec = parseRetryAfter(response.headers['retry-after'], options.now());
    return {
      statusCode: response.status,
      body: response.data,
      request: { path: new URL(request.uri).pathname },
      ...(retryAfterSec !== undefined ? { retryAfterSec } : {}),
    };
  };
  return { defaults: () => send };
}
