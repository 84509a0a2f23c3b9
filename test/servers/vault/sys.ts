/**
 * `sys/`: seal status and health, the vault CLI's mount preflight
 * (`sys/internal/ui/mounts/<path>`), secret engine and auth method mounts, ACL policies and
 * namespaces.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import { parsePolicy } from './acl.js';
import { badRequest, HttpError, ok, type Reply, type Route } from './http.js';
import { mountFor } from './kv.js';
import { newNamespace, newSecretMount, type SecretMount, type VaultState } from './state.js';
import { isObject } from './values.js';

/** `sys/seal-status` and `sys/health`, which answer whether or not Vault is sealed. */
export function sealStatus(vault: VaultState, p: string): Reply | undefined {
  if (p !== 'sys/seal-status' && p !== 'sys/health') return undefined;
  const sealStatus = {
    type: 'shamir',
    initialized: true,
    sealed: vault.sealed,
    t: 1,
    n: 1,
    progress: 0,
    nonce: '',
    version: '1.18.0',
    build_date: '2024-10-01T00:00:00Z',
    migration: false,
    recovery_seal: false,
    storage_type: 'inmem',
    ...(vault.sealed ? {} : { cluster_name: 'vault-cluster-test', cluster_id: 'test' }),
  };
  if (p === 'sys/seal-status') return { status: 200, body: sealStatus };
  return {
    status: vault.sealed ? 503 : 200,
    body: {
      initialized: true,
      sealed: vault.sealed,
      standby: false,
      version: '1.18.0',
      server_time_utc: Math.floor(Date.now() / 1000),
    },
  };
}

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

/** The mount preflight: any token whose policies name a path in the mount (no ACL check). */
export const uiMounts: Route = (_vault, { method, path: p, ns, token }) => {
  if (!p.startsWith('sys/internal/ui/mounts/') || method !== 'GET') return undefined;
  const target = p.slice('sys/internal/ui/mounts/'.length);
  const m = mountFor(ns, target);
  const refuse = () =>
    new HttpError(403, [
      `preflight capability check returned 403, please ensure client's policies grant access to path "${target}/"`,
    ]);
  if (!m) throw refuse();
  if (!token.root) {
    const rules = token.policies.flatMap((n) => parsePolicy(ns.policies.get(n) ?? ''));
    const any = rules.some((r) => !r.caps.includes('deny') && r.caps.length > 0 && r.path.startsWith(m.path));
    if (!any) throw refuse();
  }
  return ok(mountInfo(m));
};

/** Mounts, auth methods, policies and namespaces (behind the ACL check). */
export const sysRoutes: Route = (vault, { method, path: p, ns, body }) => {
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
    for (const a of ns.auths.values()) data[a.path] = { accessor: a.accessor, type: a.type, description: '' };
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
    if (!vault.namespaces.has(name)) vault.namespaces.set(name, newNamespace(name));
    return ok({ id: randomUUID(), path: `${name}/`, custom_metadata: {} });
  }
  return undefined;
};
