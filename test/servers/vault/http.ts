/**
 * Vault's HTTP shapes, from its API reference: the response envelope, `{"errors": [...]}`
 * bodies with Vault's status codes, and what a route answers.
 */

import { randomUUID, type X509Certificate } from 'node:crypto';
import type * as http from 'node:http';
import type { Namespace, RecordedVaultRequest, Token, VaultState } from './state.js';

export class HttpError {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly extra: Record<string, unknown> = {},
  ) {}
}

export const denied = () => new HttpError(403, ['permission denied']);
export const notFound = () => new HttpError(404, []);
export const badRequest = (msg: string) => new HttpError(400, [msg]);
export const unsupported = () => new HttpError(405, ['1 error occurred:\n\t* unsupported path\n\n']);
export const noHandler = (p: string) =>
  new HttpError(404, [`no handler for route "${p}". route entry not found.`]);

export interface Reply {
  status: number;
  body?: unknown;
}

/** A request past the faults, the sealed check, the body parse and the token check. */
export interface VaultRequest {
  method: string;
  /** API path without `/v1/`, query or trailing slash. */
  path: string;
  ns: Namespace;
  /** A token valid in this namespace; undefined when none was sent. */
  token: Token | undefined;
  body: Record<string, unknown>;
  /** The TLS client certificate of this request (cert auth). */
  clientCert: X509Certificate | undefined;
}

/** A request that carries a token valid in its namespace. */
export type TokenRequest = VaultRequest & { token: Token };

/** Answers a request, or returns undefined when the request is not this route's. */
export type Route<R extends VaultRequest = TokenRequest> = (vault: VaultState, req: R) => Reply | undefined;

export const envelope = (data: unknown, extra: Record<string, unknown> = {}) => ({
  request_id: randomUUID(),
  lease_id: '',
  renewable: false,
  lease_duration: 0,
  data,
  wrap_info: null,
  warnings: null,
  auth: null,
  ...extra,
});

export const ok = (data: unknown, extra?: Record<string, unknown>): Reply => ({
  status: 200,
  body: envelope(data, extra),
});

export function send(res: http.ServerResponse, status: number, body?: unknown, rec?: RecordedVaultRequest) {
  if (rec) rec.status = status;
  if (body === undefined) {
    res.writeHead(status, { 'cache-control': 'no-store' });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
