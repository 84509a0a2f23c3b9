/** The KV secrets engine, version 1 and 2 (`<mount>/data/<path>`, versions, soft delete). */

import { badRequest, envelope, HttpError, notFound, type Route, unsupported } from './http.js';
import { DEFAULT_MAX_LEASE_SEC, type KvVersion, type Namespace, type SecretMount } from './state.js';
import { isObject } from './values.js';

/** The secret engine mount that holds `p` (the longest mount path that prefixes it). */
export function mountFor(ns: Namespace, p: string): SecretMount | undefined {
  let best: SecretMount | undefined;
  for (const m of ns.mounts.values()) {
    if (`${p}/`.startsWith(m.path) && (!best || m.path.length > best.path.length)) best = m;
  }
  return best;
}

/** Any path under a KV mount (behind the ACL check); undefined when no mount holds the path. */
export const kvRoutes: Route = (vault, { method, path: p, ns, body }) => {
  const m = mountFor(ns, p);
  if (!m) return undefined;
  const rest = p.slice(m.path.length);
  if (m.version === 1) {
    if (method === 'GET') {
      const data = m.v1.get(rest);
      if (!data) throw notFound();
      return {
        status: 200,
        body: envelope(data, { lease_duration: DEFAULT_MAX_LEASE_SEC, mount_type: 'kv' }),
      };
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
      created_time: new Date(vault.now()).toISOString(),
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
      latest.deletion_time = new Date(vault.now()).toISOString();
    }
    return { status: 204 };
  }
  throw unsupported();
};
