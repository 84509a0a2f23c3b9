/**
 * A local HashiCorp Vault HTTP API on 127.0.0.1, written from Vault's API documentation, for
 * testing the vault sources with the real node-vault client. It answers as Vault does:
 *
 * - the response envelope (`request_id`, `lease_id`, `lease_duration`, `data`, `auth`, ...)
 *   and `{"errors": [...]}` bodies with Vault's status codes (400, 403 "permission denied",
 *   404 `{"errors":[]}`, 405, 503 "Vault is sealed");
 * - `X-Vault-Token` checked on every authenticated path against ACL policies written in HCL
 *   (`path "secret/data/x" { capabilities = ["read"] }`, `*` and `+` globs);
 * - `X-Vault-Namespace`: each namespace has its own mounts, policies, roles and tokens;
 * - KV v1 and v2 (`<mount>/data/<path>`, versions, soft delete), `sys/mounts`,
 *   `sys/internal/ui/mounts/<path>` (the vault CLI's preflight), `sys/auth`,
 *   `sys/policies/acl`, `sys/namespaces`, `sys/seal-status`, `sys/health`;
 * - auth: `auth/token/create|lookup-self`, approle (roles, role-id, secret-id, login),
 *   kubernetes (service-account JWTs checked against `pem_keys`), jwt
 *   (`jwt_validation_pubkeys`, `bound_audiences`, `user_claim`), cert (the TLS client certificate);
 * - identity: entities and aliases with metadata, `identity/oidc/key|role|token` minting
 *   real RS256/ES256 JWTs with the role's template, and `.well-known/keys`.
 *
 * It counts requests per endpoint (`count('GET', 'secret/data/llm')`) and can be told to
 * misbehave: sealed, any status, hang, delay, HTML, truncated JSON, wrong shape, reset.
 * Seeding goes through the same HTTP API (`VaultAdmin`), so tests can run against a real
 * `vault server -dev` too.
 *
 * This file assembles the server and is what tests import. Each route family is a module in
 * vault/: sys.ts, auth.ts (login and roles of every method) with auth-{token,approle,kubernetes,
 * jwt,cert}.ts, identity.ts, kv.ts; handler.ts runs one request (faults.ts, http.ts for Vault's
 * shapes, acl.ts for policies) against the state in state.ts; admin.ts seeds it over HTTP.
 */

import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { allowed } from './vault/acl.js';
import { type VaultAdmin, vaultAdmin } from './vault/admin.js';
import { authRoutes, loginRoute } from './vault/auth.js';
import { lookupSelf, revokeLoginTokens, tokenRoutes } from './vault/auth-token.js';
import type { VaultFault } from './vault/faults.js';
import { createHandler } from './vault/handler.js';
import { denied, noHandler, type Reply, type Route, type VaultRequest } from './vault/http.js';
import { identityRoutes, wellKnown } from './vault/identity.js';
import { kvRoutes } from './vault/kv.js';
import { createState, type RecordedVaultRequest, type VaultState } from './vault/state.js';
import { sealStatus, sysRoutes, uiMounts } from './vault/sys.js';

export type { VaultFault } from './vault/faults.js';
export { makeJwtSigner, makeTestCa } from './vault/fixtures.js';
export type { RecordedVaultRequest } from './vault/state.js';
export { type VaultAdmin, vaultAdmin };

export interface VaultServerOptions {
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Root token of the root namespace (default: a random `hvs.` token). */
  rootToken?: string;
}

export interface VaultServer {
  url: string;
  rootToken: string;
  requests: RecordedVaultRequest[];
  /** Requests seen for one endpoint, e.g. count('GET', 'secret/data/llm'). */
  count(method: string, apiPath: string): number;
  /** Requests whose path matches, any method. */
  countMatching(pattern: RegExp): number;
  resetCounts(): void;
  faults: VaultFault[];
  sealed: boolean;
  /** Revokes every token that is not a root token (as if leases ran out). */
  revokeLoginTokens(): void;
  /** The server's clock (token expiry); tests may move it. */
  now: () => number;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The routes, in the order Vault's checks run

/** Answered without a token. */
const publicRoutes: Route<VaultRequest>[] = [wellKnown, loginRoute];
/** Any token valid in the namespace, without the ACL check. */
const tokenOnlyRoutes: Route[] = [uiMounts, lookupSelf];
/** Behind the token's ACL policies; KV last, as any other path may be under a KV mount. */
const aclRoutes: Route[] = [sysRoutes, tokenRoutes, authRoutes, identityRoutes, kvRoutes];

function firstReply<R extends VaultRequest>(
  routes: Route<R>[],
  vault: VaultState,
  req: R,
): Reply | undefined {
  for (const r of routes) {
    const reply = r(vault, req);
    if (reply) return reply;
  }
  return undefined;
}

function route(vault: VaultState, req: VaultRequest): Reply {
  const open = firstReply(publicRoutes, vault, req);
  if (open) return open;
  const { token } = req;
  // Everything below needs a token valid in this namespace.
  if (!token) throw denied();
  const authed = { ...req, token };
  const tokenOnly = firstReply(tokenOnlyRoutes, vault, authed);
  if (tokenOnly) return tokenOnly;
  if (!allowed(req.ns, token, req.method, req.path)) throw denied();
  const reply = firstReply(aclRoutes, vault, authed);
  if (reply) return reply;
  throw noHandler(req.path);
}

// ---------------------------------------------------------------------------------------------
// The server

export async function startVaultServer(options: VaultServerOptions = {}): Promise<VaultServer> {
  const vault = createState(options.rootToken ?? `hvs.${randomBytes(12).toString('base64url')}`);
  const { requests } = vault;
  const handler = createHandler(vault, { status: sealStatus, route });
  const server = options.tls
    ? // Asks for a client certificate (cert auth) without requiring one, as Vault does.
      https.createServer(
        { key: options.tls.key, cert: options.tls.cert, requestCert: true, rejectUnauthorized: false },
        handler,
      )
    : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  vault.url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    url: vault.url,
    rootToken: vault.rootToken,
    requests,
    count: (method, apiPath) => requests.filter((r) => r.method === method && r.path === apiPath).length,
    countMatching: (pattern) => requests.filter((r) => pattern.test(r.path)).length,
    resetCounts: () => {
      requests.length = 0;
    },
    get faults() {
      return vault.faults;
    },
    set faults(v) {
      vault.faults = v;
    },
    get sealed() {
      return vault.sealed;
    },
    set sealed(v) {
      vault.sealed = v;
    },
    get now() {
      return vault.now;
    },
    set now(v) {
      vault.now = v;
    },
    revokeLoginTokens: () => revokeLoginTokens(vault),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// A backend for the integration tests: a real Vault when VAULT_ADDR and VAULT_TOKEN are set,
// else this server.

export interface VaultBackend {
  address: string;
  rootToken: string;
  admin: VaultAdmin;
  /** The local server, for request counts and fault injection; undefined against a real Vault. */
  local: VaultServer | undefined;
  close(): Promise<void>;
}

export function realVaultConfigured(): boolean {
  return Boolean(process.env.VAULT_ADDR && process.env.VAULT_TOKEN);
}

export async function startVaultBackend(
  options: VaultServerOptions & { forceLocal?: boolean; adminCa?: string } = {},
): Promise<VaultBackend> {
  if (!options.forceLocal && realVaultConfigured()) {
    const address = process.env.VAULT_ADDR!.replace(/\/+$/, '');
    const rootToken = process.env.VAULT_TOKEN!;
    return {
      address,
      rootToken,
      admin: vaultAdmin(address, rootToken),
      local: undefined,
      close: async () => {},
    };
  }
  const local = await startVaultServer(options);
  return {
    address: local.url,
    rootToken: local.rootToken,
    admin: vaultAdmin(local.url, local.rootToken, options.adminCa ? { ca: options.adminCa } : {}),
    local,
    close: () => local.close(),
  };
}
