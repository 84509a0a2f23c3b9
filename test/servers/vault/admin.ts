/**
 * Seeding through the HTTP API: the same calls work against this server and against
 * `vault server -dev`, so tests can run against either.
 */

import * as http from 'node:http';
import * as https from 'node:https';

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
