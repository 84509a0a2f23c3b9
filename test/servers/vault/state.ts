/**
 * The test Vault server's state: namespaces with their mounts, policies, roles, entities and
 * OIDC keys; the token store; the request log; and what the test has set (faults, sealed, clock).
 * Every route family reads and writes this one object.
 */

import { generateKeyPairSync, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import type { VaultFault } from './faults.js';
import { publicJwk } from './jwt.js';

export interface Token {
  id: string;
  accessor: string;
  namespace: string;
  policies: string[];
  root: boolean;
  expiresAtMs?: number;
  ttlSec: number;
  entityId: string;
  meta: Record<string, string> | null;
}

export interface KvVersion {
  data: Record<string, unknown> | null;
  created_time: string;
  deletion_time: string;
  destroyed: boolean;
  version: number;
}

export interface SecretMount {
  path: string;
  type: string;
  version: 1 | 2;
  accessor: string;
  uuid: string;
  v1: Map<string, Record<string, unknown>>;
  v2: Map<string, KvVersion[]>;
}

export interface RoleCommon {
  policies: string[];
  ttlSec: number;
}

export interface AuthMount {
  path: string;
  type: string;
  accessor: string;
  config: Record<string, unknown>;
  roles: Map<string, Record<string, unknown> & RoleCommon>;
  /** approle: secret ids per role name. */
  secretIds: Map<string, Set<string>>;
}

export interface Entity {
  id: string;
  name: string;
  metadata: Record<string, string>;
  /** `${mountAccessor}:${aliasName}` */
  aliases: Set<string>;
}

export interface OidcKey {
  name: string;
  algorithm: 'RS256' | 'ES256';
  verificationTtlSec: number;
  allowedClientIds: string[];
  privateKey: KeyObject;
  kid: string;
  publicJwk: Record<string, unknown>;
}

export interface OidcRole {
  name: string;
  key: string;
  template: string;
  ttlSec: number;
  clientId: string;
}

export interface Namespace {
  name: string;
  mounts: Map<string, SecretMount>;
  auths: Map<string, AuthMount>;
  policies: Map<string, string>;
  entities: Map<string, Entity>;
  oidcKeys: Map<string, OidcKey>;
  oidcRoles: Map<string, OidcRole>;
}

export interface RecordedVaultRequest {
  method: string;
  /** API path without `/v1/` and query. */
  path: string;
  namespace: string;
  hadToken: boolean;
  status: number;
}

export interface VaultState {
  rootToken: string;
  /** By name; the root namespace is ''. */
  namespaces: Map<string, Namespace>;
  tokens: Map<string, Token>;
  requests: RecordedVaultRequest[];
  faults: VaultFault[];
  sealed: boolean;
  /** The server's clock (token expiry, KV times, JWT iat). */
  now: () => number;
  /** The server's base URL, set once it listens (the OIDC issuer names it). */
  url: string;
}

/** 768h, Vault's default max lease: KV v1 reads, and tokens and roles without a ttl. */
export const DEFAULT_MAX_LEASE_SEC = 2_764_800;

export function newNamespace(name: string): Namespace {
  return {
    name,
    mounts: new Map(),
    auths: new Map(),
    policies: new Map(),
    entities: new Map(),
    oidcKeys: new Map(),
    oidcRoles: new Map(),
  };
}

export function newSecretMount(p: string, version: 1 | 2): SecretMount {
  return {
    path: p,
    type: 'kv',
    version,
    accessor: `kv_${randomBytes(4).toString('hex')}`,
    uuid: randomUUID(),
    v1: new Map(),
    v2: new Map(),
  };
}

export function newOidcKey(
  name: string,
  algorithm: 'RS256' | 'ES256',
  verificationTtlSec: number,
  allowed: string[],
): OidcKey {
  const { privateKey } =
    algorithm === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomUUID();
  return {
    name,
    algorithm,
    verificationTtlSec,
    allowedClientIds: allowed,
    privateKey,
    kid,
    publicJwk: publicJwk(privateKey, kid, algorithm),
  };
}

/** A fresh server's state, as `vault server -dev` starts. */
export function createState(rootToken: string): VaultState {
  const namespaces = new Map<string, Namespace>([['', newNamespace('')]]);
  const root = namespaces.get('')!;
  // As `vault server -dev`: a KV v2 engine at secret/ and the default OIDC key.
  root.mounts.set('secret/', newSecretMount('secret/', 2));
  root.oidcKeys.set('default', newOidcKey('default', 'RS256', 86_400, ['*']));
  const tokens = new Map<string, Token>();
  tokens.set(rootToken, {
    id: rootToken,
    accessor: randomBytes(8).toString('hex'),
    namespace: '',
    policies: ['root'],
    root: true,
    ttlSec: 0,
    entityId: '',
    meta: null,
  });
  return {
    rootToken,
    namespaces,
    tokens,
    requests: [],
    faults: [],
    sealed: false,
    now: () => Date.now(),
    url: '',
  };
}
