/**
 * `doctor --probe` for Vault: one GET of /v1/sys/health (unauthenticated), with the same
 * TLS settings the source uses, to tell "unreachable" from "sealed" from "fine", and to
 * compare clocks through the Date header. Nothing secret is sent.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

export interface VaultHealth {
  /** HTTP status: 200 active, 429 standby, 472/473 performance standby, 501 uninitialised, 503 sealed. */
  status: number;
  sealed?: boolean;
  initialized?: boolean;
  version?: string;
  /** Server clock from the Date header, ms since epoch. */
  serverDateMs?: number;
}

export function vaultHealth(
  address: string,
  options: { caCert?: string; tlsSkipVerify?: boolean; namespace?: string; timeoutMs: number },
): Promise<VaultHealth> {
  const base = address.replace(/\/+$/, '');
  const full = new URL(`${base}/v1/sys/health?standbyok=true&perfstandbyok=true`);
  const isHttps = full.protocol === 'https:';
  const agentOptions: https.RequestOptions = {};
  if (isHttps) {
    if (options.caCert) agentOptions.ca = fs.readFileSync(options.caCert);
    if (options.tlsSkipVerify) agentOptions.rejectUnauthorized = false;
  }
  return new Promise((resolve, reject) => {
    const req = (isHttps ? https : http).request(
      full,
      {
        method: 'GET',
        timeout: options.timeoutMs,
        headers: options.namespace ? { 'X-Vault-Namespace': options.namespace } : {},
        ...agentOptions,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (body.length < 65_536) body += d;
        });
        res.on('end', () => {
          const out: VaultHealth = { status: res.statusCode ?? 0 };
          const date = res.headers.date ? Date.parse(res.headers.date) : Number.NaN;
          if (!Number.isNaN(date)) out.serverDateMs = date;
          try {
            const o = JSON.parse(body) as { sealed?: unknown; initialized?: unknown; version?: unknown };
            if (typeof o.sealed === 'boolean') out.sealed = o.sealed;
            if (typeof o.initialized === 'boolean') out.initialized = o.initialized;
            if (typeof o.version === 'string') out.version = o.version;
          } catch {
            // not Vault, or not JSON: the status says enough
          }
          resolve(out);
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}
