/**
 * Fault injection: what a test can tell the server to do instead of answering (sealed, any
 * status, hang, delay, HTML, truncated JSON, wrong shape, reset, a standby's redirect).
 */

import type * as http from 'node:http';
import { send } from './http.js';
import type { RecordedVaultRequest, VaultState } from './state.js';

export type VaultFault = (
  | { kind: 'sealed' }
  /** With `retryAfter`, the Retry-After header (as Vault sends with a rate limit quota's 429). */
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'hang' }
  | { kind: 'delay'; ms: number }
  | { kind: 'html'; status?: number }
  | { kind: 'truncated' }
  | { kind: 'wrong-shape'; body: unknown }
  | { kind: 'reset' }
  /** A standby node's answer: `status` (default 307) with `Location: <to>/v1/<the same path>`. */
  | { kind: 'redirect'; to: string; status?: number }
) & {
  /** Only requests whose API path (no /v1/) matches; all when absent. */
  match?: string | RegExp;
  /** Applies this many times, then is removed; forever when absent. */
  times?: number;
};

/** The first fault that matches `p`, counted down (and removed when it has run out). */
export function takeFault(vault: VaultState, p: string): VaultFault | undefined {
  const idx = vault.faults.findIndex(
    (f) => !f.match || (typeof f.match === 'string' ? p.includes(f.match) : f.match.test(p)),
  );
  const fault = idx >= 0 ? vault.faults[idx] : undefined;
  if (fault && fault.times !== undefined) {
    fault.times -= 1;
    if (fault.times <= 0) vault.faults.splice(idx, 1);
  }
  return fault;
}

/**
 * Misbehaves as `fault` says. Resolves to true when the request is dealt with (answered,
 * hung or reset), false when it should go on (after a delay).
 */
export async function applyFault(
  fault: VaultFault,
  p: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  rec: RecordedVaultRequest,
): Promise<boolean> {
  switch (fault.kind) {
    case 'hang':
      rec.status = -1;
      return true; // never answers; close() destroys the socket
    case 'delay':
      await new Promise((r) => setTimeout(r, fault.ms));
      return false;
    case 'sealed':
      send(res, 503, { errors: ['Vault is sealed'] }, rec);
      return true;
    case 'redirect':
      rec.status = fault.status ?? 307;
      res.writeHead(rec.status, { location: `${fault.to}${req.url ?? '/'}`, 'content-length': 0 });
      res.end();
      return true;
    case 'status':
      if (fault.retryAfter !== undefined) res.setHeader('retry-after', fault.retryAfter);
      send(
        res,
        fault.status,
        {
          errors:
            fault.status >= 500
              ? ['1 error occurred:\n\t* internal error\n\n']
              : fault.status === 404
                ? []
                : fault.status === 403
                  ? ['permission denied']
                  : fault.status === 429
                    ? // vault/http/util.go: a rate limit quota's refusal
                      [`request path "${p}": rate limit quota exceeded`]
                    : ['bad request'],
        },
        rec,
      );
      return true;
    case 'html': {
      rec.status = fault.status ?? 200;
      const html = '<html><head><title>Sign in</title></head><body>proxy login SECRET-IN-HTML</body></html>';
      res.writeHead(rec.status, {
        'content-type': 'text/html',
        'content-length': Buffer.byteLength(html),
      });
      res.end(html);
      return true;
    }
    case 'truncated': {
      rec.status = 200;
      const text = '{"request_id":"x","data":{"data":{"token":"SECRET-IN-TRUNC';
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
      return true;
    }
    case 'wrong-shape':
      send(res, 200, fault.body, rec);
      return true;
    case 'reset':
      rec.status = -1;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 });
      res.write('{"data":');
      setTimeout(() => req.socket.destroy(), 5);
      return true;
  }
}
