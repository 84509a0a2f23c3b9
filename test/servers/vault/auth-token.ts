/** The token auth method: issuing tokens (every login), `auth/token/lookup-self|create|revoke`. */

import { randomBytes } from 'node:crypto';
import { envelope, ok, type Route } from './http.js';
import {
  DEFAULT_MAX_LEASE_SEC,
  type Entity,
  type Namespace,
  type RoleCommon,
  type Token,
  type VaultState,
} from './state.js';
import { asStringList, isObject, parseDuration } from './values.js';

/** A new service token in `ns`; returns the response's `auth` block. */
export function issueToken(
  vault: VaultState,
  ns: Namespace,
  policies: string[],
  ttlSec: number,
  entityId: string,
  meta: Record<string, string> | null,
) {
  const id = `hvs.${randomBytes(18).toString('base64url')}`;
  const token: Token = {
    id,
    accessor: randomBytes(12).toString('base64url'),
    namespace: ns.name,
    policies: ['default', ...policies.filter((p) => p !== 'default')],
    root: false,
    ttlSec,
    ...(ttlSec > 0 ? { expiresAtMs: vault.now() + ttlSec * 1000 } : {}),
    entityId,
    meta,
  };
  vault.tokens.set(id, token);
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
}

/** A login's answer: a new token with the role's policies and ttl, for the alias's entity. */
export function loginReply(
  vault: VaultState,
  ns: Namespace,
  role: RoleCommon,
  entity: Entity,
  meta: Record<string, string>,
) {
  return envelope(null, { auth: issueToken(vault, ns, role.policies, role.ttlSec, entity.id, meta) });
}

/** Revokes every token that is not a root token (as if leases ran out). */
export function revokeLoginTokens(vault: VaultState): void {
  for (const [id, t] of vault.tokens)
    if (!t.root && t.ttlSec !== DEFAULT_MAX_LEASE_SEC) vault.tokens.delete(id);
}

/** `auth/token/lookup-self`: any valid token may look itself up (no ACL check). */
export const lookupSelf: Route = (vault, { method, path: p, token }) => {
  if (p !== 'auth/token/lookup-self' || method !== 'GET') return undefined;
  const ttl = token.expiresAtMs ? Math.max(0, Math.floor((token.expiresAtMs - vault.now()) / 1000)) : 0;
  return ok({
    accessor: token.accessor,
    entity_id: token.entityId,
    id: token.id,
    meta: token.meta,
    policies: token.policies,
    ttl,
    type: 'service',
  });
};

/** `auth/token/revoke` and `auth/token/create` (behind the ACL check). */
export const tokenRoutes: Route = (vault, { method, path: p, ns, body }) => {
  if (p === 'auth/token/revoke' && (method === 'POST' || method === 'PUT')) {
    const t = vault.tokens.get(String(body.token));
    if (t && t.namespace === ns.name && !t.root) vault.tokens.delete(t.id);
    return { status: 204 };
  }
  if (p === 'auth/token/create' && method === 'POST') {
    const policies = asStringList(body.policies);
    const ttlSec = parseDuration(body.ttl, DEFAULT_MAX_LEASE_SEC);
    return ok(null, {
      auth: issueToken(vault, ns, policies, ttlSec, '', isObject(body.meta) ? (body.meta as never) : null),
    });
  }
  return undefined;
};
