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
 *   (`jwt_validation_pubkeys`, `bound_audiences`, `user_claim`);
 * - identity: entities and aliases with metadata, `identity/oidc/key|role|token` minting
 *   real RS256/ES256 JWTs with the role's template, and `.well-known/keys`.
 *
 * It counts requests per endpoint (`count('GET', 'secret/data/llm')`) and can be told to
 * misbehave: sealed, any status, hang, delay, HTML, truncated JSON, wrong shape, reset.
 * Seeding goes through the same HTTP API (`VaultAdmin`), so tests can run against a real
 * `vault server -dev` too.
 */

import { execFileSync } from 'node:child_process';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

// ---------------------------------------------------------------------------------------------
// State

interface Token {
  id: string;
  accessor: string;
  namespace: string;
  policies: string[];
  root: boolean;
  expiresAtMs?: number;
  ttlSec: number;
  entityId: string;
  meta: Record<string, string> | null;
}

interface KvVersion {
  data: Record<string, unknown> | null;
  created_time: string;
  deletion_time: string;
  destroyed: boolean;
  version: number;
}

interface SecretMount {
  path: string;
  type: string;
  version: 1 | 2;
  accessor: string;
  uuid: string;
  v1: Map<string, Record<string, unknown>>;
  v2: Map<string, KvVersion[]>;
}

interface RoleCommon {
  policies: string[];
  ttlSec: number;
}

interface AuthMount {
  path: string;
  type: string;
  accessor: string;
  config: Record<string, unknown>;
  roles: Map<string, Record<string, unknown> & RoleCommon>;
  /** approle: secret ids per role name. */
  secretIds: Map<string, Set<string>>;
}

interface Entity {
  id: string;
  name: string;
  metadata: Record<string, string>;
  /** `${mountAccessor}:${aliasName}` */
  aliases: Set<string>;
}

interface OidcKey {
  name: string;
  algorithm: 'RS256' | 'ES256';
  verificationTtlSec: number;
  allowedClientIds: string[];
  privateKey: KeyObject;
  kid: string;
  publicJwk: Record<string, unknown>;
}

interface OidcRole {
  name: string;
  key: string;
  template: string;
  ttlSec: number;
  clientId: string;
}

interface Namespace {
  name: string;
  mounts: Map<string, SecretMount>;
  auths: Map<string, AuthMount>;
  policies: Map<string, string>;
  entities: Map<string, Entity>;
  oidcKeys: Map<string, OidcKey>;
  oidcRoles: Map<string, OidcRole>;
}

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

export interface RecordedVaultRequest {
  method: string;
  /** API path without `/v1/` and query. */
  path: string;
  namespace: string;
  hadToken: boolean;
  status: number;
}

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
// Helpers

const KV_V1_LEASE_SEC = 2_764_800; // 768h, Vault's default max lease

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function parseDuration(v: unknown, fallbackSec: number): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string' || v === '') return fallbackSec;
  if (/^\d+$/.test(v)) return Number(v);
  let total = 0;
  for (const m of v.matchAll(/(\d+)(h|m|s)/g)) {
    total += Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
  }
  return total || fallbackSec;
}

function asStringList(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (typeof v === 'string')
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return [];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `path "x" { capabilities = ["read"] }` blocks of an HCL policy. */
function parsePolicy(hcl: string): { path: string; caps: string[] }[] {
  const rules: { path: string; caps: string[] }[] = [];
  for (const m of hcl.matchAll(/path\s+"([^"]+)"\s*\{([^}]*)\}/g)) {
    const caps = /capabilities\s*=\s*\[([^\]]*)\]/.exec(m[2] ?? '');
    rules.push({
      path: m[1]!,
      caps: (caps?.[1] ?? '')
        .split(',')
        .map((s) => s.trim().replace(/^"|"$/g, ''))
        .filter(Boolean),
    });
  }
  return rules;
}

/** Vault's path matching: `+` is one segment, a trailing `*` a prefix. */
function pathMatches(rule: string, p: string): boolean {
  const glob = rule.endsWith('*');
  const body = glob ? rule.slice(0, -1) : rule;
  const re = body
    .split('+')
    .map((s) => s.replace(/[.*?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]+');
  return new RegExp(`^${re}${glob ? '' : '$'}`).test(p);
}

function capabilitiesFor(ns: Namespace, token: Token, p: string): Set<string> {
  const caps = new Set<string>();
  if (token.root) return new Set(['root']);
  for (const name of token.policies) {
    if (name === 'root') return new Set(['root']);
    const hcl = ns.policies.get(name);
    if (!hcl) continue;
    for (const rule of parsePolicy(hcl))
      if (pathMatches(rule.path, p)) for (const c of rule.caps) caps.add(c);
  }
  if (caps.has('deny')) return new Set();
  return caps;
}

function publicJwk(key: KeyObject, kid: string, alg: string): Record<string, unknown> {
  return { ...createPublicKey(key).export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

function signJwt(key: OidcKey, claims: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ alg: key.algorithm, kid: key.kid }));
  const payload = b64url(JSON.stringify(claims));
  const input = `${header}.${payload}`;
  const sig =
    key.algorithm === 'RS256'
      ? sign('sha256', Buffer.from(input), key.privateKey)
      : sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

/** Verifies a compact JWS (RS256 or ES256) against PEM public keys; returns its claims. */
function verifyJwt(jwt: string, pems: string[]): Record<string, unknown> | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  let header: unknown;
  let claims: unknown;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(header) || !isObject(claims)) return undefined;
  const input = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2]!, 'base64url');
  for (const pem of pems) {
    try {
      const key = createPublicKey(pem);
      const ok =
        header.alg === 'RS256'
          ? verify('sha256', input, key, sig)
          : header.alg === 'ES256'
            ? verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, sig)
            : false;
      if (ok) return claims;
    } catch {
      // try the next key
    }
  }
  return undefined;
}

function renderTemplate(template: string, entity: Entity): Record<string, unknown> {
  if (!template.trim()) return {};
  let text = template;
  if (!text.trim().startsWith('{')) text = Buffer.from(text, 'base64').toString('utf8');
  const rendered = text.replace(/\{\{\s*identity\.entity\.([a-z_.A-Z0-9-]+)\s*\}\}/g, (_, key: string) => {
    if (key === 'id') return JSON.stringify(entity.id);
    if (key === 'name') return JSON.stringify(entity.name);
    if (key.startsWith('metadata.')) {
      const v = entity.metadata[key.slice('metadata.'.length)];
      return v === undefined ? 'null' : JSON.stringify(v);
    }
    return 'null';
  });
  try {
    const out = JSON.parse(rendered) as unknown;
    if (!isObject(out)) return {};
    for (const [k, v] of Object.entries(out)) if (v === null) delete out[k];
    return out;
  } catch {
    return {};
  }
}

// ---------------------------------------------------------------------------------------------
// The server

class HttpError {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly extra: Record<string, unknown> = {},
  ) {}
}

const denied = () => new HttpError(403, ['permission denied']);
const notFound = () => new HttpError(404, []);
const badRequest = (msg: string) => new HttpError(400, [msg]);
const unsupported = () => new HttpError(405, ['1 error occurred:\n\t* unsupported path\n\n']);

function newNamespace(name: string): Namespace {
  return {
    name,
    mounts: new Map(),
    auths: new Map(),
    policies: new Map(),
    entities: new Map(),
    oidcKeys: new Map(),
    oidcRoles: new Map(),
  };
}

function newSecretMount(p: string, version: 1 | 2): SecretMount {
  return {
    path: p,
    type: 'kv',
    version,
    accessor: `kv_${randomBytes(4).toString('hex')}`,
    uuid: randomUUID(),
    v1: new Map(),
    v2: new Map(),
  };
}

function newOidcKey(
  name: string,
  algorithm: 'RS256' | 'ES256',
  verificationTtlSec: number,
  allowed: string[],
): OidcKey {
  const { privateKey } =
    algorithm === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomUUID();
  return {
    name,
    algorithm,
    verificationTtlSec,
    allowedClientIds: allowed,
    privateKey,
    kid,
    publicJwk: publicJwk(privateKey, kid, algorithm),
  };
}

export async function startVaultServer(options: VaultServerOptions = {}): Promise<VaultServer> {
  const rootToken = options.rootToken ?? `hvs.${randomBytes(12).toString('base64url')}`;
  const namespaces = new Map<string, Namespace>([['', newNamespace('')]]);
  const root = namespaces.get('')!;
  // As `vault server -dev`: a KV v2 engine at secret/ and the default OIDC key.
  root.mounts.set('secret/', newSecretMount('secret/', 2));
  root.oidcKeys.set('default', newOidcKey('default', 'RS256', 86_400, ['*']));
  const tokens = new Map<string, Token>();
  tokens.set(rootToken, {
    id: rootToken,
    accessor: randomBytes(8).toString('hex'),
    namespace: '',
    policies: ['root'],
    root: true,
    ttlSec: 0,
    entityId: '',
    meta: null,
  });
  const requests: RecordedVaultRequest[] = [];
  let url = '';

  const state = {
    faults: [] as VaultFault[],
    sealed: false,
    now: () => Date.now(),
  };

  const envelope = (data: unknown, extra: Record<string, unknown> = {}) => ({
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

  const issueToken = (
    ns: Namespace,
    policies: string[],
    ttlSec: number,
    entityId: string,
    meta: Record<string, string> | null,
  ) => {
    const id = `hvs.${randomBytes(18).toString('base64url')}`;
    const token: Token = {
      id,
      accessor: randomBytes(12).toString('base64url'),
      namespace: ns.name,
      policies: ['default', ...policies.filter((p) => p !== 'default')],
      root: false,
      ttlSec,
      ...(ttlSec > 0 ? { expiresAtMs: state.now() + ttlSec * 1000 } : {}),
      entityId,
      meta,
    };
    tokens.set(id, token);
    return {
      client_token: id,
      accessor: token.accessor,
      policies: token.policies,
      token_policies: token.policies,
      identity_policies: null,
      metadata: meta,
      lease_duration: ttlSec,
      renewable: ttlSec > 0,
      entity_id: entityId,
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    };
  };

  /** Finds or creates the entity for an alias, as Vault does on login. */
  const entityFor = (ns: Namespace, mount: AuthMount, aliasName: string): Entity => {
    const key = `${mount.accessor}:${aliasName}`;
    for (const e of ns.entities.values()) if (e.aliases.has(key)) return e;
    const id = randomUUID();
    const entity: Entity = { id, name: `entity_${id.slice(0, 8)}`, metadata: {}, aliases: new Set([key]) };
    ns.entities.set(id, entity);
    return entity;
  };

  /** The current request's TLS client certificate (set by the handler just before route()). */
  let clientCert: X509Certificate | undefined;

  const login = (ns: Namespace, mount: AuthMount, body: Record<string, unknown>): unknown => {
    if (mount.type === 'cert') {
      // Vault's cert method: the certificate presented over TLS must be issued by the
      // role's `certificate` (a CA, or the certificate itself).
      if (!clientCert) throw badRequest('invalid certificate or no client certificate supplied');
      const leaf = clientCert;
      const wanted = typeof body.name === 'string' && body.name ? [body.name] : [...mount.roles.keys()];
      for (const name of wanted) {
        const role = mount.roles.get(name);
        if (!role || typeof role.certificate !== 'string') continue;
        const trusted = new X509Certificate(role.certificate);
        const matches =
          leaf.fingerprint256 === trusted.fingerprint256 ||
          (leaf.checkIssued(trusted) && leaf.verify(trusted.publicKey));
        if (!matches) continue;
        const entity = entityFor(ns, mount, leaf.subject);
        return envelope(null, {
          auth: issueToken(ns, role.policies, role.ttlSec, entity.id, { cert_name: name }),
        });
      }
      throw badRequest('invalid certificate or no client certificate supplied');
    }
    if (mount.type === 'approle') {
      const roleId = body.role_id;
      if (typeof roleId !== 'string' || !roleId) throw badRequest('missing role_id');
      const entry = [...mount.roles.entries()].find(([, r]) => r.role_id === roleId);
      if (!entry) throw badRequest('invalid role or secret ID');
      const [name, role] = entry;
      if (role.bind_secret_id !== false) {
        const secretId = body.secret_id;
        if (typeof secretId !== 'string' || !secretId) throw badRequest('missing secret_id');
        if (!mount.secretIds.get(name)?.has(secretId)) throw badRequest('invalid role or secret ID');
      }
      const entity = entityFor(ns, mount, roleId);
      return envelope(null, {
        auth: issueToken(ns, role.policies, role.ttlSec, entity.id, { role_name: name }),
      });
    }
    const roleName = body.role;
    const jwt = body.jwt;
    if (typeof roleName !== 'string' || !roleName) throw badRequest('missing role');
    if (typeof jwt !== 'string' || !jwt) throw badRequest('missing jwt');
    const role = mount.roles.get(roleName);
    if (mount.type === 'kubernetes') {
      if (!role) throw badRequest(`invalid role name "${roleName}"`);
      const claims = verifyJwt(jwt, asStringList(mount.config.pem_keys));
      if (!claims) throw denied();
      const k8s = isObject(claims['kubernetes.io']) ? claims['kubernetes.io'] : undefined;
      const sa = isObject(k8s?.serviceaccount) ? k8s.serviceaccount : undefined;
      const saName = sa?.name ?? claims['kubernetes.io/serviceaccount/service-account.name'];
      const saNs = k8s?.namespace ?? claims['kubernetes.io/serviceaccount/namespace'];
      const names = asStringList(role.bound_service_account_names);
      const nss = asStringList(role.bound_service_account_namespaces);
      if (typeof saName !== 'string' || !(names.includes('*') || names.includes(saName))) {
        throw new HttpError(403, ['service account name not authorized']);
      }
      if (typeof saNs !== 'string' || !(nss.includes('*') || nss.includes(saNs))) {
        throw new HttpError(403, ['namespace not authorized']);
      }
      const entity = entityFor(ns, mount, `${saNs}/${saName}`);
      return envelope(null, {
        auth: issueToken(ns, role.policies, role.ttlSec, entity.id, {
          role: roleName,
          service_account_name: saName,
          service_account_namespace: saNs,
        }),
      });
    }
    // jwt
    if (!role) throw badRequest(`role "${roleName}" could not be found`);
    const claims = verifyJwt(jwt, asStringList(mount.config.jwt_validation_pubkeys));
    if (!claims) throw badRequest('error validating token: failed to verify id token signature');
    if (typeof claims.exp === 'number' && claims.exp * 1000 < state.now()) {
      throw badRequest('error validating token: token is expired');
    }
    const auds = asStringList(role.bound_audiences);
    const tokenAud = asStringList(claims.aud);
    if (auds.length > 0 && !tokenAud.some((a) => auds.includes(a))) {
      throw badRequest(
        'error validating token: invalid audience (aud) claim: audience claim does not match any expected audience',
      );
    }
    const userClaim = typeof role.user_claim === 'string' ? role.user_claim : 'sub';
    const user = claims[userClaim];
    if (typeof user !== 'string') throw badRequest(`claim "${userClaim}" not found in token`);
    const entity = entityFor(ns, mount, user);
    return envelope(null, {
      auth: issueToken(ns, role.policies, role.ttlSec, entity.id, { role: roleName }),
    });
  };

  const mountFor = (ns: Namespace, p: string): SecretMount | undefined => {
    let best: SecretMount | undefined;
    for (const m of ns.mounts.values()) {
      if (`${p}/`.startsWith(m.path) && (!best || m.path.length > best.path.length)) best = m;
    }
    return best;
  };

  const mountInfo = (m: SecretMount) => ({
    accessor: m.accessor,
    config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
    description: m.version === 2 ? 'key/value secret storage' : '',
    external_entropy_access: false,
    local: false,
    options: { version: String(m.version) },
    path: m.path,
    plugin_version: '',
    running_plugin_version: 'v0.20.0+builtin',
    running_sha256: '',
    seal_wrap: false,
    type: m.type,
    uuid: m.uuid,
  });

  const kv = (
    m: SecretMount,
    method: string,
    p: string,
    body: Record<string, unknown>,
  ): { status: number; body?: unknown } => {
    const rest = p.slice(m.path.length);
    if (m.version === 1) {
      if (method === 'GET') {
        const data = m.v1.get(rest);
        if (!data) throw notFound();
        return { status: 200, body: envelope(data, { lease_duration: KV_V1_LEASE_SEC, mount_type: 'kv' }) };
      }
      if (method === 'POST' || method === 'PUT') {
        m.v1.set(rest, body);
        return { status: 204 };
      }
      if (method === 'DELETE') {
        m.v1.delete(rest);
        return { status: 204 };
      }
      throw unsupported();
    }
    const [op, ...tail] = rest.split('/');
    const key = tail.join('/');
    if (op !== 'data' || !key) {
      if (method === 'GET' && op !== 'metadata' && op !== 'config') {
        throw new HttpError(404, [], {
          warnings: [
            "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.",
          ],
        });
      }
      throw unsupported();
    }
    const versions = m.v2.get(key) ?? [];
    if (method === 'GET') {
      const latest = versions.at(-1);
      if (!latest) throw notFound();
      const metadata = {
        created_time: latest.created_time,
        custom_metadata: null,
        deletion_time: latest.deletion_time,
        destroyed: latest.destroyed,
        version: latest.version,
      };
      if (latest.data === null) throw new HttpError(404, [], { data: { data: null, metadata } });
      return { status: 200, body: envelope({ data: latest.data, metadata }, { mount_type: 'kv' }) };
    }
    if (method === 'POST' || method === 'PUT') {
      if (!isObject(body.data)) throw badRequest('no data provided');
      const version: KvVersion = {
        data: body.data,
        created_time: new Date(state.now()).toISOString(),
        deletion_time: '',
        destroyed: false,
        version: versions.length + 1,
      };
      m.v2.set(key, [...versions, version]);
      const { data: _data, ...meta } = version;
      return { status: 200, body: envelope({ ...meta, custom_metadata: null }, { mount_type: 'kv' }) };
    }
    if (method === 'DELETE') {
      const latest = versions.at(-1);
      if (latest) {
        latest.data = null;
        latest.deletion_time = new Date(state.now()).toISOString();
      }
      return { status: 204 };
    }
    throw unsupported();
  };

  /** Everything but the faults and the sealed check. */
  const route = (
    method: string,
    p: string,
    ns: Namespace,
    token: Token | undefined,
    body: Record<string, unknown>,
  ): { status: number; body?: unknown } => {
    const ok = (data: unknown, extra?: Record<string, unknown>) => ({
      status: 200,
      body: envelope(data, extra),
    });

    if (p === 'identity/oidc/.well-known/keys' && method === 'GET') {
      return { status: 200, body: { keys: [...ns.oidcKeys.values()].map((k) => k.publicJwk) } };
    }
    if (p === 'identity/oidc/.well-known/openid-configuration' && method === 'GET') {
      const issuer = `${url}/v1/${ns.name ? `${ns.name}/` : ''}identity/oidc`;
      return {
        status: 200,
        body: {
          issuer,
          jwks_uri: `${issuer}/.well-known/keys`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256', 'ES256'],
        },
      };
    }
    const loginMatch = /^auth\/(.+)\/login$/.exec(p);
    if (loginMatch && method === 'POST') {
      const mount = ns.auths.get(`${loginMatch[1]}/`);
      if (!mount) throw new HttpError(400, ['no handler for route "' + p + '". route entry not found.']);
      return { status: 200, body: login(ns, mount, body) };
    }

    // Everything below needs a token valid in this namespace.
    if (!token) throw denied();

    if (p.startsWith('sys/internal/ui/mounts/') && method === 'GET') {
      const target = p.slice('sys/internal/ui/mounts/'.length);
      const m = mountFor(ns, target);
      const refuse = () =>
        new HttpError(403, [
          `preflight capability check returned 403, please ensure client's policies grant access to path "${target}/"`,
        ]);
      if (!m) throw refuse();
      if (!token.root) {
        const rules = token.policies.flatMap((n) => parsePolicy(ns.policies.get(n) ?? ''));
        const any = rules.some(
          (r) => !r.caps.includes('deny') && r.caps.length > 0 && r.path.startsWith(m.path),
        );
        if (!any) throw refuse();
      }
      return ok(mountInfo(m));
    }
    if (p === 'auth/token/lookup-self' && method === 'GET') {
      const ttl = token.expiresAtMs ? Math.max(0, Math.floor((token.expiresAtMs - state.now()) / 1000)) : 0;
      return ok({
        accessor: token.accessor,
        entity_id: token.entityId,
        id: token.id,
        meta: token.meta,
        policies: token.policies,
        ttl,
        type: 'service',
      });
    }

    // ACL for everything else.
    const need =
      method === 'GET' ? 'read' : method === 'DELETE' ? 'delete' : method === 'LIST' ? 'list' : 'update';
    const caps = capabilitiesFor(ns, token, p);
    if (!caps.has('root') && !caps.has(need) && !(need === 'update' && caps.has('create'))) throw denied();

    let m: RegExpExecArray | null;
    m = /^sys\/mounts\/(.+)$/.exec(p);
    if (m && method === 'POST') {
      const mp = `${m[1]!.replace(/\/+$/, '')}/`;
      if (ns.mounts.has(mp)) throw badRequest(`path is already in use at ${mp}`);
      const type = String(body.type ?? '');
      if (type !== 'kv' && type !== 'kv-v2') throw badRequest(`plugin not found in the catalog: ${type}`);
      const opts = isObject(body.options) ? body.options : {};
      const version = type === 'kv-v2' || String(opts.version) === '2' ? 2 : 1;
      ns.mounts.set(mp, newSecretMount(mp, version));
      return { status: 204 };
    }
    if (p === 'sys/auth' && method === 'GET') {
      const data: Record<string, unknown> = {
        'token/': { accessor: 'auth_token_root', type: 'token', description: 'token based credentials' },
      };
      for (const a of ns.auths.values())
        data[a.path] = { accessor: a.accessor, type: a.type, description: '' };
      return ok(data);
    }
    m = /^sys\/auth\/(.+)$/.exec(p);
    if (m && method === 'POST') {
      const ap = `${m[1]!.replace(/\/+$/, '')}/`;
      if (ns.auths.has(ap)) throw badRequest(`path is already in use at ${ap}`);
      const type = String(body.type ?? '');
      if (!['approle', 'kubernetes', 'jwt', 'cert'].includes(type))
        throw badRequest(`plugin not found in the catalog: ${type}`);
      ns.auths.set(ap, {
        path: ap,
        type,
        accessor: `auth_${type}_${randomBytes(4).toString('hex')}`,
        config: {},
        roles: new Map(),
        secretIds: new Map(),
      });
      return { status: 204 };
    }
    m = /^sys\/(?:policies\/acl|policy)\/(.+)$/.exec(p);
    if (m && (method === 'POST' || method === 'PUT')) {
      const hcl = body.policy;
      if (typeof hcl !== 'string') throw badRequest("'policy' parameter not supplied or empty");
      ns.policies.set(m[1]!, hcl);
      return { status: 204 };
    }
    m = /^sys\/namespaces\/(.+)$/.exec(p);
    if (m && method === 'POST') {
      if (ns.name !== '') throw badRequest('nested namespaces are not supported by this test server');
      const name = m[1]!.replace(/\/+$/, '');
      if (!namespaces.has(name)) namespaces.set(name, newNamespace(name));
      return ok({ id: randomUUID(), path: `${name}/`, custom_metadata: {} });
    }
    if (p === 'auth/token/revoke' && (method === 'POST' || method === 'PUT')) {
      const t = tokens.get(String(body.token));
      if (t && t.namespace === ns.name && !t.root) tokens.delete(t.id);
      return { status: 204 };
    }
    if (p === 'auth/token/create' && method === 'POST') {
      const policies = asStringList(body.policies);
      const ttlSec = parseDuration(body.ttl, 2_764_800);
      return ok(null, {
        auth: issueToken(ns, policies, ttlSec, '', isObject(body.meta) ? (body.meta as never) : null),
      });
    }
    m = /^auth\/(.+)\/(?:role|certs)\/([^/]+)(\/role-id|\/secret-id)?$/.exec(p);
    if (m) {
      const mount = ns.auths.get(`${m[1]}/`);
      if (!mount) throw unsupported();
      const name = m[2]!;
      if (!m[3] && (method === 'POST' || method === 'PUT')) {
        const role: Record<string, unknown> & RoleCommon = {
          ...(mount.roles.get(name) ?? {}),
          ...body,
          policies: asStringList(body.token_policies ?? body.policies),
          ttlSec: parseDuration(body.token_ttl ?? body.ttl, 2_764_800),
        };
        if (mount.type === 'approle' && typeof role.role_id !== 'string') role.role_id = randomUUID();
        mount.roles.set(name, role);
        return { status: 204 };
      }
      const role = mount.roles.get(name);
      if (!role) throw notFound();
      if (!m[3] && method === 'GET') {
        return ok({ token_policies: role.policies, token_ttl: role.ttlSec });
      }
      if (m[3] === '/role-id' && method === 'GET') return ok({ role_id: role.role_id });
      if (m[3] === '/secret-id' && (method === 'POST' || method === 'PUT')) {
        const secretId = randomUUID();
        const set = mount.secretIds.get(name) ?? new Set<string>();
        set.add(secretId);
        mount.secretIds.set(name, set);
        return ok({
          secret_id: secretId,
          secret_id_accessor: randomUUID(),
          secret_id_ttl: 0,
          secret_id_num_uses: 0,
        });
      }
      throw unsupported();
    }
    m = /^auth\/(.+)\/config$/.exec(p);
    if (m && (method === 'POST' || method === 'PUT')) {
      const mount = ns.auths.get(`${m[1]}/`);
      if (!mount) throw unsupported();
      mount.config = { ...mount.config, ...body };
      return { status: 204 };
    }
    if (p === 'identity/entity' && (method === 'POST' || method === 'PUT')) {
      const name = typeof body.name === 'string' ? body.name : `entity_${randomBytes(4).toString('hex')}`;
      let entity = [...ns.entities.values()].find((e) => e.name === name);
      if (!entity) {
        entity = { id: randomUUID(), name, metadata: {}, aliases: new Set() };
        ns.entities.set(entity.id, entity);
      }
      if (isObject(body.metadata)) entity.metadata = body.metadata as Record<string, string>;
      return ok({ id: entity.id, name: entity.name, aliases: null });
    }
    if (p === 'identity/entity-alias' && (method === 'POST' || method === 'PUT')) {
      const entity = ns.entities.get(String(body.canonical_id));
      if (!entity) throw badRequest('invalid canonical_id');
      entity.aliases.add(`${String(body.mount_accessor)}:${String(body.name)}`);
      return ok({ canonical_id: entity.id, id: randomUUID() });
    }
    m = /^identity\/oidc\/key\/([^/]+)$/.exec(p);
    if (m && (method === 'POST' || method === 'PUT')) {
      const alg = body.algorithm === 'ES256' ? 'ES256' : 'RS256';
      const key = newOidcKey(
        m[1]!,
        alg,
        parseDuration(body.verification_ttl, 86_400),
        asStringList(body.allowed_client_ids),
      );
      ns.oidcKeys.set(key.name, key);
      return { status: 204 };
    }
    m = /^identity\/oidc\/role\/([^/]+)$/.exec(p);
    if (m) {
      const name = m[1]!;
      if (method === 'POST' || method === 'PUT') {
        const keyName = String(body.key ?? '');
        const key = ns.oidcKeys.get(keyName);
        if (!key) throw badRequest(`key "${keyName}" does not exist`);
        const ttlSec = parseDuration(body.ttl, 86_400);
        if (ttlSec > key.verificationTtlSec) {
          throw badRequest(
            "a role's token ttl cannot be longer than the verification_ttl of the key it references",
          );
        }
        const existing = ns.oidcRoles.get(name);
        ns.oidcRoles.set(name, {
          name,
          key: keyName,
          template: typeof body.template === 'string' ? body.template : '',
          ttlSec,
          clientId:
            typeof body.client_id === 'string'
              ? body.client_id
              : (existing?.clientId ?? randomBytes(13).toString('base64url')),
        });
        return { status: 204 };
      }
      const role = ns.oidcRoles.get(name);
      if (!role) throw notFound();
      return ok({ client_id: role.clientId, key: role.key, template: role.template, ttl: role.ttlSec });
    }
    m = /^identity\/oidc\/token\/([^/]+)$/.exec(p);
    if (m && method === 'GET') {
      const role = ns.oidcRoles.get(m[1]!);
      if (!role) throw badRequest(`role "${m[1]}" not found`);
      const entity = ns.entities.get(token.entityId);
      if (!entity) throw badRequest("no entity associated with the request's token");
      const key = ns.oidcKeys.get(role.key)!;
      if (!key.allowedClientIds.includes('*') && !key.allowedClientIds.includes(role.clientId)) {
        throw badRequest(
          `the key "${key.name}" does not list the client ID of the role "${role.name}" as an allowed client ID`,
        );
      }
      const iat = Math.floor(state.now() / 1000);
      const claims = {
        ...renderTemplate(role.template, entity),
        aud: role.clientId,
        exp: iat + role.ttlSec,
        iat,
        iss: `${url}/v1/${ns.name ? `${ns.name}/` : ''}identity/oidc`,
        namespace: ns.name || 'root',
        sub: entity.id,
      };
      return ok({ client_id: role.clientId, token: signJwt(key, claims), ttl: role.ttlSec });
    }

    const sm = mountFor(ns, p);
    if (sm) return kv(sm, method, p, body);
    throw new HttpError(404, [`no handler for route "${p}". route entry not found.`]);
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  };

  const send = (res: http.ServerResponse, status: number, body?: unknown, rec?: RecordedVaultRequest) => {
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
  };

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
    requests.push(rec);

    const idx = state.faults.findIndex(
      (f) => !f.match || (typeof f.match === 'string' ? p.includes(f.match) : f.match.test(p)),
    );
    const fault = idx >= 0 ? state.faults[idx] : undefined;
    if (fault && fault.times !== undefined) {
      fault.times -= 1;
      if (fault.times <= 0) state.faults.splice(idx, 1);
    }
    if (fault) {
      switch (fault.kind) {
        case 'hang':
          rec.status = -1;
          return; // never answers; close() destroys the socket
        case 'delay':
          await new Promise((r) => setTimeout(r, fault.ms));
          break;
        case 'sealed':
          send(res, 503, { errors: ['Vault is sealed'] }, rec);
          return;
        case 'redirect':
          rec.status = fault.status ?? 307;
          res.writeHead(rec.status, { location: `${fault.to}${req.url ?? '/'}`, 'content-length': 0 });
          res.end();
          return;
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
          return;
        case 'html': {
          rec.status = fault.status ?? 200;
          const html =
            '<html><head><title>Sign in</title></head><body>proxy login SECRET-IN-HTML</body></html>';
          res.writeHead(rec.status, {
            'content-type': 'text/html',
            'content-length': Buffer.byteLength(html),
          });
          res.end(html);
          return;
        }
        case 'truncated': {
          rec.status = 200;
          const text = '{"request_id":"x","data":{"data":{"token":"SECRET-IN-TRUNC';
          res.writeHead(200, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(text),
          });
          res.end(text);
          return;
        }
        case 'wrong-shape':
          send(res, 200, fault.body, rec);
          return;
        case 'reset':
          rec.status = -1;
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 });
          res.write('{"data":');
          setTimeout(() => req.socket.destroy(), 5);
          return;
      }
    }

    if (p === 'sys/seal-status' || p === 'sys/health') {
      const sealStatus = {
        type: 'shamir',
        initialized: true,
        sealed: state.sealed,
        t: 1,
        n: 1,
        progress: 0,
        nonce: '',
        version: '1.18.0',
        build_date: '2024-10-01T00:00:00Z',
        migration: false,
        recovery_seal: false,
        storage_type: 'inmem',
        ...(state.sealed ? {} : { cluster_name: 'vault-cluster-test', cluster_id: 'test' }),
      };
      if (p === 'sys/seal-status') send(res, 200, sealStatus, rec);
      else
        send(
          res,
          state.sealed ? 503 : 200,
          {
            initialized: true,
            sealed: state.sealed,
            standby: false,
            version: '1.18.0',
            server_time_utc: Math.floor(Date.now() / 1000),
          },
          rec,
        );
      return;
    }
    if (state.sealed) {
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
    const ns = namespaces.get(nsName);
    if (!ns) {
      send(res, 404, { errors: [`no handler for route "${p}". route entry not found.`] }, rec);
      return;
    }
    let token: Token | undefined;
    if (rec.hadToken) {
      const t = tokens.get(String(tokenHeader));
      const live = t && (t.expiresAtMs === undefined || t.expiresAtMs > state.now());
      // A root token of the root namespace works in every namespace; others only in their own.
      if (t && live && (t.namespace === nsName || (t.root && t.namespace === ''))) token = t;
      else if (!/^auth\/.+\/login$/.test(p) && !p.startsWith('identity/oidc/.well-known/')) {
        send(res, 403, { errors: ['permission denied'] }, rec);
        return;
      }
    }
    try {
      // cert auth reads the TLS client certificate of this request (route runs synchronously).
      const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate?.(true);
      clientCert = peer?.raw ? new X509Certificate(peer.raw) : undefined;
      const out = route(method, p, ns, token, body);
      send(res, out.status, out.body, rec);
    } catch (e) {
      if (e instanceof HttpError) send(res, e.status, { ...e.extra, errors: e.errors }, rec);
      else send(res, 500, { errors: ['1 error occurred:\n\t* internal error\n\n'] }, rec);
    }
  };

  const server = options.tls
    ? // Asks for a client certificate (cert auth) without requiring one, as Vault does.
      https.createServer(
        { key: options.tls.key, cert: options.tls.cert, requestCert: true, rejectUnauthorized: false },
        handler,
      )
    : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    url,
    rootToken,
    requests,
    count: (method, apiPath) => requests.filter((r) => r.method === method && r.path === apiPath).length,
    countMatching: (pattern) => requests.filter((r) => pattern.test(r.path)).length,
    resetCounts: () => {
      requests.length = 0;
    },
    get faults() {
      return state.faults;
    },
    set faults(v) {
      state.faults = v;
    },
    get sealed() {
      return state.sealed;
    },
    set sealed(v) {
      state.sealed = v;
    },
    get now() {
      return state.now;
    },
    set now(v) {
      state.now = v;
    },
    revokeLoginTokens: () => {
      for (const [id, t] of tokens) if (!t.root && t.ttlSec !== 2_764_800) tokens.delete(id);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Seeding through the HTTP API (the same calls work against `vault server -dev`)

export interface VaultAdmin {
  address: string;
  namespace: string | undefined;
  /** Raw call; resolves to status and parsed body (throws on a network error). */
  call(
    method: string,
    apiPath: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: any }>;
  /** Like call, but throws unless 2xx. */
  must(method: string, apiPath: string, body?: unknown, token?: string): Promise<any>;
  mountKv(mount: string, version: 1 | 2): Promise<void>;
  putKv(mount: string, version: 1 | 2, key: string, data: Record<string, unknown>): Promise<void>;
  deleteKvLatest(mount: string, key: string): Promise<void>;
  putPolicy(name: string, hcl: string): Promise<void>;
  createToken(policies: string[], ttl?: string): Promise<string>;
  enableAuth(mount: string, type: 'approle' | 'kubernetes' | 'jwt' | 'cert'): Promise<void>;
  authAccessor(mount: string): Promise<string>;
  approleRole(
    mount: string,
    name: string,
    policies: string[],
    ttl?: string,
  ): Promise<{ roleId: string; secretId: string }>;
  /** An entity with metadata, aliased to a login (alias name: role id, `ns/sa`, or user claim). */
  entityWithAlias(
    name: string,
    metadata: Record<string, string>,
    mount: string,
    aliasName: string,
  ): Promise<string>;
  oidcKey(name: string, verificationTtl: string, allowedClientIds?: string[]): Promise<void>;
  oidcRole(name: string, key: string, template: string, ttl: string): Promise<string>;
}

export function vaultAdmin(
  address: string,
  rootToken: string,
  options: { namespace?: string; ca?: string | Buffer } = {},
): VaultAdmin {
  const call = (method: string, apiPath: string, body?: unknown, token = rootToken) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const u = new URL(`${address}/v1/${apiPath}`);
      const text = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string | number> = { 'x-vault-token': token };
      if (options.namespace) headers['x-vault-namespace'] = options.namespace;
      if (text !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(text);
      }
      const lib = u.protocol === 'https:' ? https : http;
      const req = lib.request(u, { method, headers, ...(options.ca ? { ca: options.ca } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const s = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = s;
          try {
            parsed = s ? JSON.parse(s) : undefined;
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('error', reject);
      req.end(text);
    });
  const must = async (method: string, apiPath: string, body?: unknown, token?: string) => {
    const r = await call(method, apiPath, body, token);
    if (r.status < 200 || r.status >= 300) {
      throw new Error(`vault admin ${method} ${apiPath}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    }
    return r.body;
  };
  const admin: VaultAdmin = {
    address,
    namespace: options.namespace,
    call,
    must,
    async mountKv(mount, version) {
      const r = await call('POST', `sys/mounts/${mount}`, {
        type: 'kv',
        options: { version: String(version) },
      });
      if (r.status >= 300 && !JSON.stringify(r.body).includes('already in use')) {
        throw new Error(`mount ${mount}: HTTP ${r.status}`);
      }
    },
    async putKv(mount, version, key, data) {
      if (version === 2) await must('POST', `${mount}/data/${key}`, { data });
      else await must('POST', `${mount}/${key}`, data);
    },
    async deleteKvLatest(mount, key) {
      await must('DELETE', `${mount}/data/${key}`);
    },
    async putPolicy(name, hcl) {
      await must('PUT', `sys/policies/acl/${name}`, { policy: hcl });
    },
    async createToken(policies, ttl = '1h') {
      const body = await must('POST', 'auth/token/create', { policies, ttl, no_parent: true });
      return body.auth.client_token as string;
    },
    async enableAuth(mount, type) {
      const r = await call('POST', `sys/auth/${mount}`, { type });
      if (r.status >= 300 && !JSON.stringify(r.body).includes('already in use')) {
        throw new Error(`enable auth ${mount}: HTTP ${r.status}`);
      }
    },
    async authAccessor(mount) {
      const body = await must('GET', 'sys/auth');
      return body.data[`${mount}/`].accessor as string;
    },
    async approleRole(mount, name, policies, ttl = '1h') {
      await must('POST', `auth/${mount}/role/${name}`, { token_policies: policies, token_ttl: ttl });
      const roleId = (await must('GET', `auth/${mount}/role/${name}/role-id`)).data.role_id as string;
      const secretId = (await must('POST', `auth/${mount}/role/${name}/secret-id`, {})).data
        .secret_id as string;
      return { roleId, secretId };
    },
    async entityWithAlias(name, metadata, mount, aliasName) {
      const id = (await must('POST', 'identity/entity', { name, metadata })).data.id as string;
      const accessor = await admin.authAccessor(mount);
      await must('POST', 'identity/entity-alias', {
        name: aliasName,
        canonical_id: id,
        mount_accessor: accessor,
      });
      return id;
    },
    async oidcKey(name, verificationTtl, allowedClientIds = ['*']) {
      await must('POST', `identity/oidc/key/${name}`, {
        verification_ttl: verificationTtl,
        rotation_period: '24h',
        allowed_client_ids: allowedClientIds,
        algorithm: 'RS256',
      });
    },
    async oidcRole(name, key, template, ttl) {
      await must('POST', `identity/oidc/role/${name}`, { key, template, ttl });
      return (await must('GET', `identity/oidc/role/${name}`)).data.client_id as string;
    },
  };
  return admin;
}

/** A private key file's PEM for signing test JWTs (kubernetes service accounts, jwt auth). */
export function makeJwtSigner(alg: 'RS256' | 'ES256' = 'RS256'): {
  publicPem: string;
  sign(claims: Record<string, unknown>): string;
} {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: OidcKey = {
    name: 'test',
    algorithm: alg,
    verificationTtlSec: 0,
    allowedClientIds: [],
    privateKey: createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' })),
    kid: randomUUID(),
    publicJwk: {},
  };
  return {
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    sign: (claims) => signJwt(key, claims),
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

/** A throwaway CA and a server certificate for 127.0.0.1, made with openssl. */
export function makeTestCa(dir: string): { caFile: string; caPem: string; key: string; cert: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=keybroker test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]);
  run([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  ]);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
    '-out',
    'server.pem',
  ]);
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    caFile: path.join(dir, 'ca.pem'),
    caPem: read('ca.pem'),
    key: read('server.key'),
    cert: read('server.pem'),
  };
}
