/**
 * The Kubernetes auth method: a service account JWT checked against the mount's `pem_keys`,
 * its service account and namespace bound by the role.
 */

import type { Login } from './auth.js';
import { roleAndJwt } from './auth-jwt.js';
import { loginReply } from './auth-token.js';
import { badRequest, denied, HttpError } from './http.js';
import { entityFor } from './identity.js';
import { verifyJwt } from './jwt.js';
import { asStringList, isObject } from './values.js';

export const kubernetesLogin: Login = (vault, { ns, body }, mount) => {
  const { roleName, jwt } = roleAndJwt(body);
  const role = mount.roles.get(roleName);
  if (!role) throw badRequest(`invalid role name "${roleName}"`);
  const claims = verifyJwt(jwt, asStringList(mount.config.pem_keys));
  if (!claims) throw denied();
  // Bound service account tokens carry a `kubernetes.io` claim; legacy secret-based ones flat claims.
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
  return loginReply(vault, ns, role, entity, {
    role: roleName,
    service_account_name: saName,
    service_account_namespace: saNs,
  });
};
