/**
 * The JWT auth method: a JWT signed by one of `jwt_validation_pubkeys`, unexpired, for one of
 * the role's `bound_audiences`, naming its user in the role's `user_claim` (default `sub`).
 */

import type { Login } from './auth.js';
import { loginReply } from './auth-token.js';
import { badRequest } from './http.js';
import { entityFor } from './identity.js';
import { verifyJwt } from './jwt.js';
import { asStringList } from './values.js';

/** The `role` and `jwt` of a login body (jwt and kubernetes logins). */
export function roleAndJwt(body: Record<string, unknown>): { roleName: string; jwt: string } {
  const roleName = body.role;
  const jwt = body.jwt;
  if (typeof roleName !== 'string' || !roleName) throw badRequest('missing role');
  if (typeof jwt !== 'string' || !jwt) throw badRequest('missing jwt');
  return { roleName, jwt };
}

export const jwtLogin: Login = (vault, { ns, body }, mount) => {
  const { roleName, jwt } = roleAndJwt(body);
  const role = mount.roles.get(roleName);
  if (!role) throw badRequest(`role "${roleName}" could not be found`);
  const claims = verifyJwt(jwt, asStringList(mount.config.jwt_validation_pubkeys));
  if (!claims) throw badRequest('error validating token: failed to verify id token signature');
  if (typeof claims.exp === 'number' && claims.exp * 1000 < vault.now()) {
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
  return loginReply(vault, ns, role, entity, { role: roleName });
};
