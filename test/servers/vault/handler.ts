/**
 * One request's way through the server: record it, apply a fault, answer the seal and health
 * status, refuse while sealed, parse the body, find the namespace (`X-Vault-Namespace`) and the
 * token (`X-Vault-Token`), then hand it to the routes.
 */

import { X509Certificate } from 'node:crypto';
import type * as http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { applyFault, takeFault } from './faults.js';
import { HttpError, noHandler, type Reply, send, type VaultRequest } from './http.js';
import type { RecordedVaultRequest, Token, VaultState } from './state.js';
import { isObject } from './values.js';

export interface Routes {
  /** `sys/seal-status` and `sys/health`, answered before the sealed check. */
  status(vault: VaultState, p: string): Reply | undefined;
  /** Everything but the faults and the sealed check; throws HttpError for Vault's errors. */
  route(vault: VaultState, req: VaultRequest): Reply;
}

export function createHandler(vault: VaultState, routes: Routes): http.RequestListener {
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, raw: string) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (!u.pathname.startsWith('/v1/')) {
      send(res, 404, { errors: [] });
      return;
    }
    const p = u.pathname.slice('/v1/'.length).replace(/\/+$/, '');
    const method =
      req.method === 'LIST' || u.searchParams.get('list') === 'true' ? 'LIST' : (req.method ?? 'GET');
    const nsName = String(req.headers['x-vault-namespace'] ?? '').replace(/^\/+|\/+$/g, '');
    const tokenHeader = req.headers['x-vault-token'];
    const rec: RecordedVaultRequest = {
      method,
      path: p,
      namespace: nsName,
      hadToken: typeof tokenHeader === 'string' && tokenHeader !== '',
      status: 0,
    };
    vault.requests.push(rec);

    const fault = takeFault(vault, p);
    if (fault && (await applyFault(fault, p, req, res, rec))) return;

    const status = routes.status(vault, p);
    if (status) {
      send(res, status.status, status.body, rec);
      return;
    }
    if (vault.sealed) {
      send(res, 503, { errors: ['Vault is sealed'] }, rec);
      return;
    }

    let body: Record<string, unknown> = {};
    if (raw.trim()) {
      try {
        const parsed = JSON.parse(raw) as unknown;
        body = isObject(parsed) ? parsed : {};
      } catch {
        send(res, 400, { errors: ['failed to parse JSON input: invalid character'] }, rec);
        return;
      }
    }
    const ns = vault.namespaces.get(nsName);
    if (!ns) {
      const e = noHandler(p);
      send(res, e.status, { errors: e.errors }, rec);
      return;
    }
    let token: Token | undefined;
    if (rec.hadToken) {
      const t = vault.tokens.get(String(tokenHeader));
      const live = t && (t.expiresAtMs === undefined || t.expiresAtMs > vault.now());
      // A root token of the root namespace works in every namespace; others only in their own.
      if (t && live && (t.namespace === nsName || (t.root && t.namespace === ''))) token = t;
      else if (!/^auth\/.+\/login$/.test(p) && !p.startsWith('identity/oidc/.well-known/')) {
        send(res, 403, { errors: ['permission denied'] }, rec);
        return;
      }
    }
    try {
      // cert auth reads the TLS client certificate of this request.
      const peer = (req.socket as TLSSocket).getPeerCertificate?.(true);
      const clientCert = peer?.raw ? new X509Certificate(peer.raw) : undefined;
      const out = routes.route(vault, { method, path: p, ns, token, body, clientCert });
      send(res, out.status, out.body, rec);
    } catch (e) {
      if (e instanceof HttpError) send(res, e.status, { ...e.extra, errors: e.errors }, rec);
      else send(res, 500, { errors: ['1 error occurred:\n\t* internal error\n\n'] }, rec);
    }
  };

  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  };
}
