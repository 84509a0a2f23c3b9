/** The TLS certificates auth method: login with the client certificate presented over TLS. */

import { X509Certificate } from 'node:crypto';
import type { Login } from './auth.js';
import { loginReply } from './auth-token.js';
import { badRequest } from './http.js';
import { entityFor } from './identity.js';

/**
 * The certificate presented over TLS must be issued by the role's `certificate` (a CA, or the
 * certificate itself); `name` picks one role, else every role is tried.
 */
export const certLogin: Login = (vault, { ns, body, clientCert }, mount) => {
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
    return loginReply(vault, ns, role, entity, { cert_name: name });
  }
  throw badRequest('invalid certificate or no client certificate supplied');
};
