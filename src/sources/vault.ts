/**
 * `vault` source: one field of a KV secret, like `vault kv get -field=FIELD PATH`.
 *
 * The KV version and mount come from `sys/internal/ui/mounts/<path>`, as the vault CLI finds
 * them (a 404 there means an old Vault: version 1). The CLI gives up when that lookup is
 * denied; we instead try the version 2 layout under the first path segment, then version 1,
 * since a policy may grant the secret without granting the lookup. What was found is kept in
 * the source memo (`kv-mount:<path>`) and forgotten when a read at the kept place says 404.
 */
import type { VaultSourceConfig } from '../config/types.js';
import { deniedError, isKeybrokerError, type KeybrokerError, missingError, seeDocs } from '../errors.js';
import type { FetchedToken, Source, SourceDeps, TokenRequest } from './types.js';
import {
  badResponseError,
  dataOf,
  isObject,
  openVaultSession,
  type VaultOperation,
  type VaultSession,
} from './vault-client.js';

/** Mount facts change only when an operator remounts; look again after a day. */
const KV_MOUNT_MEMO_MS = 24 * 3600_000;

interface KvLocation {
  /** Mount path with its trailing slash (`secret/`), or '' when unknown (read the path as is). */
  mount: string;
  version: 1 | 2;
}

export function createVaultSource(config: VaultSourceConfig, deps: SourceDeps): Source {
  const kvPath = config.path.replace(/^\/+|\/+$/g, '');
  const field = config.field;
  const what = `vault kv ${kvPath} field ${field}`;
  const memoName = `kv-mount:${config.namespace ? `${config.namespace}:` : ''}${kvPath}`;

  const op = (kind: VaultOperation['kind'], apiPath: string): VaultOperation => ({ kind, what, apiPath });

  const readMemo = async (): Promise<KvLocation | undefined> => {
    const entry = await deps.memo.get(memoName);
    if (!entry) return undefined;
    try {
      const v = JSON.parse(entry.value) as unknown;
      if (isObject(v) && typeof v.mount === 'string' && (v.version === 1 || v.version === 2)) {
        return { mount: v.mount, version: v.version };
      }
    } catch {
      // fall through: a corrupt memo is dropped
    }
    await deps.memo.delete(memoName);
    return undefined;
  };

  const remember = (loc: KvLocation, request: TokenRequest) =>
    deps.memo.set(memoName, JSON.stringify(loc), request.now() + KV_MOUNT_MEMO_MS);

  /** The mount lookup; undefined when it was denied (the caller guesses). */
  const preflight = async (s: VaultSession): Promise<KvLocation | undefined> => {
    const apiPath = `sys/internal/ui/mounts/${kvPath}`;
    let body: unknown;
    try {
      body = await s.read(apiPath, op('preflight', apiPath));
    } catch (e) {
      if (isKeybrokerError(e) && e.code === 'ERR_VAULT_NOT_FOUND') return { mount: '', version: 1 };
      if (isKeybrokerError(e) && e.code === 'ERR_VAULT_DENIED') {
        deps.logger.debug(`vault: mount lookup for ${kvPath} denied; trying the KV v2 then v1 layout`);
        return undefined;
      }
      throw e;
    }
    const data = dataOf(body);
    if (!data) throw badResponseError(op('preflight', apiPath), 'the mount lookup answered without data');
    let mount = typeof data.path === 'string' ? data.path : '';
    if (mount && !mount.endsWith('/')) mount += '/';
    if (mount && !`${kvPath}/`.startsWith(mount)) mount = '';
    const version = isObject(data.options) && String(data.options.version) === '2' ? 2 : 1;
    if (version === 2 && !mount)
      throw badResponseError(op('preflight', apiPath), 'the mount lookup named no mount');
    return { mount, version };
  };

  const apiPathOf = (loc: KvLocation) =>
    loc.version === 2 ? `${loc.mount}data/${kvPath.slice(loc.mount.length)}` : kvPath;

  /** The secret's key/value map at a location. */
  const readAt = async (s: VaultSession, loc: KvLocation): Promise<Record<string, unknown>> => {
    const apiPath = apiPathOf(loc);
    const body = await s.read(apiPath, op('read', apiPath));
    const data = dataOf(body);
    if (!data) throw badResponseError(op('read', apiPath), 'the answer holds no data');
    if (loc.version === 1) return data;
    if (data.data === null) {
      throw missingError('ERR_VAULT_NOT_FOUND', `${what}: the latest version at ${apiPath} is deleted`, {
        hint: `undelete it or write a new version; ${seeDocs('ERR_VAULT_NOT_FOUND')}`,
      });
    }
    if (!isObject(data.data)) throw badResponseError(op('read', apiPath), 'the answer holds no data.data');
    return data.data;
  };

  /** Preflight denied: try v2 under the first segment, then v1, and keep what worked. */
  const guess = async (
    s: VaultSession,
    request: TokenRequest,
  ): Promise<[KvLocation, Record<string, unknown>]> => {
    const slash = kvPath.indexOf('/');
    let v2Error: KeybrokerError | undefined;
    if (slash > 0) {
      const loc: KvLocation = { mount: kvPath.slice(0, slash + 1), version: 2 };
      try {
        const kv = await readAt(s, loc);
        await remember(loc, request);
        return [loc, kv];
      } catch (e) {
        if (!isKeybrokerError(e) || (e.code !== 'ERR_VAULT_NOT_FOUND' && e.code !== 'ERR_VAULT_DENIED'))
          throw e;
        v2Error = e;
      }
    }
    const loc: KvLocation = { mount: '', version: 1 };
    try {
      const kv = await readAt(s, loc);
      await remember(loc, request);
      return [loc, kv];
    } catch (e) {
      if (v2Error?.code !== 'ERR_VAULT_DENIED' || !isKeybrokerError(e)) throw e;
      if (e.code === 'ERR_VAULT_NOT_FOUND') throw v2Error;
      if (e.code !== 'ERR_VAULT_DENIED') throw e;
      throw deniedError('ERR_VAULT_DENIED', `${what}: permission denied (HTTP 403)`, {
        hint: `the token (${s.authOrigin}) may have expired, or its policy lacks read on ${apiPathOf({ mount: kvPath.slice(0, slash + 1), version: 2 })} (KV v2) or ${kvPath} (KV v1); ${seeDocs('ERR_VAULT_DENIED')}`,
        cause: e,
      });
    }
  };

  const fetchKv = async (
    s: VaultSession,
    request: TokenRequest,
  ): Promise<[KvLocation, Record<string, unknown>]> => {
    const kept = request.forceFresh ? undefined : await readMemo();
    if (kept) {
      try {
        return [kept, await readAt(s, kept)];
      } catch (e) {
        if (!(isKeybrokerError(e) && (e.code === 'ERR_VAULT_NOT_FOUND' || e.code === 'ERR_VAULT_DENIED')))
          throw e;
        // Perhaps remounted (v1 upgraded to v2, policies moved to data/): look the mount up
        // again before believing it.
        await deps.memo.delete(memoName);
      }
    }
    const loc = await preflight(s);
    if (!loc) return guess(s, request);
    await remember(loc, request);
    return [loc, await readAt(s, loc)];
  };

  const pick = (kv: Record<string, unknown>): string => {
    if (!Object.hasOwn(kv, field)) {
      throw missingError('ERR_VAULT_FIELD_MISSING', `${what}: the secret has no field ${field}`, {
        hint: `check the field name (vault kv get ${kvPath} lists them); ${seeDocs('ERR_VAULT_FIELD_MISSING')}`,
      });
    }
    const value = kv[field];
    if (typeof value !== 'string') {
      const kind = value === null ? 'null' : Array.isArray(value) ? 'a list' : `a ${typeof value}`;
      throw missingError('ERR_VAULT_FIELD_NOT_STRING', `${what}: the value is ${kind}, not a string`, {
        hint: `store the token as a string; ${seeDocs('ERR_VAULT_FIELD_NOT_STRING')}`,
      });
    }
    if (value.trim() === '') {
      throw missingError('ERR_VAULT_FIELD_EMPTY', `${what}: the value is empty`, {
        hint: `write the token into the field; ${seeDocs('ERR_VAULT_FIELD_EMPTY')}`,
      });
    }
    deps.logger.addSecret(value);
    deps.logger.addSecret(value.trim());
    return value;
  };

  return {
    type: 'vault',
    describe() {
      const ns = config.namespace ? ` namespace ${config.namespace}` : '';
      const method = config.auth?.method ?? 'token';
      return `vault kv ${kvPath} field=${field} at ${config.address ?? '(no address)'}${ns} (auth ${method})`;
    },
    async getToken(request: TokenRequest): Promise<FetchedToken> {
      const session = await openVaultSession({ config, deps, request });
      return session.run(async (s) => {
        const [loc, kv] = await fetchKv(s, request);
        const value = pick(kv);
        deps.logger.debug(`vault: read ${apiPathOf(loc)} (KV v${loc.version})`);
        return { value, meta: { kvVersion: loc.version, kvMount: loc.mount } };
      });
    },
  };
}
