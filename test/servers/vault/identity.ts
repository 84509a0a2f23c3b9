/**
 * The identity secrets engine: entities and aliases with metadata, and its OIDC provider
 * (`identity/oidc/key|role|token` minting RS256/ES256 JWTs from the role's template,
 * `.well-known/keys` and `.well-known/openid-configuration`).
 */

import { randomBytes, randomUUID } from 'node:crypto';
import { badRequest, notFound, ok, type Route, type VaultRequest } from './http.js';
import { signJwt } from './jwt.js';
import { type AuthMount, type Entity, type Namespace, newOidcKey, type VaultState } from './state.js';
import { asStringList, isObject, parseDuration } from './values.js';

/** Finds or creates the entity for an alias, as Vault does on login. */
export function entityFor(ns: Namespace, mount: AuthMount, aliasName: string): Entity {
  const key = `${mount.accessor}:${aliasName}`;
  for (const e of ns.entities.values()) if (e.aliases.has(key)) return e;
  const id = randomUUID();
  const entity: Entity = { id, name: `entity_${id.slice(0, 8)}`, metadata: {}, aliases: new Set([key]) };
  ns.entities.set(id, entity);
  return entity;
}

const issuer = (vault: VaultState, ns: Namespace) =>
  `${vault.url}/v1/${ns.name ? `${ns.name}/` : ''}identity/oidc`;

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

/** The OIDC provider's public documents (no token needed). */
export const wellKnown: Route<VaultRequest> = (vault, { method, path: p, ns }) => {
  if (p === 'identity/oidc/.well-known/keys' && method === 'GET') {
    return { status: 200, body: { keys: [...ns.oidcKeys.values()].map((k) => k.publicJwk) } };
  }
  if (p === 'identity/oidc/.well-known/openid-configuration' && method === 'GET') {
    const iss = issuer(vault, ns);
    return {
      status: 200,
      body: {
        issuer: iss,
        jwks_uri: `${iss}/.well-known/keys`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      },
    };
  }
  return undefined;
};

/** Entities, aliases, OIDC keys, roles and tokens (behind the ACL check). */
export const identityRoutes: Route = (vault, { method, path: p, ns, token, body }) => {
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
  let m: RegExpExecArray | null;
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
    const iat = Math.floor(vault.now() / 1000);
    const claims = {
      ...renderTemplate(role.template, entity),
      aud: role.clientId,
      exp: iat + role.ttlSec,
      iat,
      iss: issuer(vault, ns),
      namespace: ns.name || 'root',
      sub: entity.id,
    };
    return ok({ client_id: role.clientId, token: signJwt(key, claims), ttl: role.ttlSec });
  }
  return undefined;
};
