/**
 * Auth method mounts: `auth/<mount>/login` handed to the mount's method, and the routes every
 * method shares: `auth/<mount>/role/<name>` (`certs/<name>` for cert) and `auth/<mount>/config`.
 */

import { approleLogin, roleIdAndSecretId, withRoleId } from './auth-approle.js';
import { certLogin } from './auth-cert.js';
import { jwtLogin } from './auth-jwt.js';
import { kubernetesLogin } from './auth-kubernetes.js';
import { HttpError, notFound, ok, type Route, unsupported, type VaultRequest } from './http.js';
import { type AuthMount, DEFAULT_MAX_LEASE_SEC, type RoleCommon, type VaultState } from './state.js';
import { asStringList, parseDuration } from './values.js';

/** One auth method's login; returns the response body (with `auth`) or throws HttpError. */
export type Login = (vault: VaultState, req: VaultRequest, mount: AuthMount) => unknown;

const logins: Record<string, Login> = {
  cert: certLogin,
  approle: approleLogin,
  kubernetes: kubernetesLogin,
  jwt: jwtLogin,
};

/** `auth/<mount>/login` (no token needed). */
export const loginRoute: Route<VaultRequest> = (vault, req) => {
  const loginMatch = /^auth\/(.+)\/login$/.exec(req.path);
  if (!loginMatch || req.method !== 'POST') return undefined;
  const mount = req.ns.auths.get(`${loginMatch[1]}/`);
  if (!mount) throw new HttpError(400, ['no handler for route "' + req.path + '". route entry not found.']);
  const login = logins[mount.type] ?? jwtLogin;
  return { status: 200, body: login(vault, req, mount) };
};

/** Roles and config of any auth mount (behind the ACL check). */
export const authRoutes: Route = (_vault, { method, path: p, ns, body }) => {
  let m: RegExpExecArray | null;
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
        ttlSec: parseDuration(body.token_ttl ?? body.ttl, DEFAULT_MAX_LEASE_SEC),
      };
      withRoleId(mount, role);
      mount.roles.set(name, role);
      return { status: 204 };
    }
    const role = mount.roles.get(name);
    if (!role) throw notFound();
    if (!m[3] && method === 'GET') {
      return ok({ token_policies: role.policies, token_ttl: role.ttlSec });
    }
    const reply = roleIdAndSecretId(mount, name, role, m[3], method);
    if (reply) return reply;
    throw unsupported();
  }
  m = /^auth\/(.+)\/config$/.exec(p);
  if (m && (method === 'POST' || method === 'PUT')) {
    const mount = ns.auths.get(`${m[1]}/`);
    if (!mount) throw unsupported();
    mount.config = { ...mount.config, ...body };
    return { status: 204 };
  }
  return undefined;
};
