/** The AppRole auth method: login with role_id and secret_id; a role's role-id and secret-id. */

import { randomUUID } from 'node:crypto';
import type { Login } from './auth.js';
import { loginReply } from './auth-token.js';
import { badRequest, ok, type Reply } from './http.js';
import { entityFor } from './identity.js';
import type { AuthMount, RoleCommon } from './state.js';

export const approleLogin: Login = (vault, { ns, body }, mount) => {
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
  return loginReply(vault, ns, role, entity, { role_name: name });
};

/** An AppRole role gets its role_id when it is first written. */
export function withRoleId(mount: AuthMount, role: Record<string, unknown> & RoleCommon): void {
  if (mount.type === 'approle' && typeof role.role_id !== 'string') role.role_id = randomUUID();
}

/** `auth/<mount>/role/<name>/role-id` (GET) and `.../secret-id` (POST or PUT). */
export function roleIdAndSecretId(
  mount: AuthMount,
  name: string,
  role: Record<string, unknown> & RoleCommon,
  sub: string | undefined,
  method: string,
): Reply | undefined {
  if (sub === '/role-id' && method === 'GET') return ok({ role_id: role.role_id });
  if (sub === '/secret-id' && (method === 'POST' || method === 'PUT')) {
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
  return undefined;
}
