/**
 * The typed, validated, template-resolved configuration. Produced once at start by
 * config/load.ts; nothing after that reads the environment or the files again.
 * Shapes follow contract §3 exactly; optional keys are optional here too, and defaults
 * are applied by the code that uses them (sources, cache policy) from `DEFAULTS`.
 */

export type CacheStorage = 'file' | 'keychain' | 'none';

export interface CacheConfig {
  storage: CacheStorage;
  refreshMarginMs: number;
  staleIfErrorMs: number;
  minRefreshIntervalMs: number;
}

export interface AuditConfig {
  enabled: boolean;
  file: string | null;
}

export type JwtAlgorithm = 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA' | 'HS256';

export type KeyRef = { file: string } | { env: string } | { keychain: { service: string; account?: string } };

export interface JwtSourceConfig {
  type: 'jwt';
  algorithm?: JwtAlgorithm;
  signingKey?: KeyRef;
  keyId?: string;
  issuer?: string;
  audience?: string | string[];
  subject?: string;
  lifetimeSec?: number;
  claims?: Record<string, unknown>;
  notBeforeSkewSec?: number;
}

export type VaultAuthConfig =
  | { method: 'token'; tokenFile?: string }
  | { method: 'approle'; mount?: string; roleId: string; secretIdFile?: string; secretIdEnv?: string }
  | { method: 'kubernetes'; mount?: string; role: string; jwtFile?: string }
  | { method: 'jwt'; mount?: string; role: string; jwtFile: string }
  | { method: 'cert'; mount?: string; name?: string; certFile: string; keyFile: string };

export interface VaultConnectionConfig {
  address?: string;
  namespace?: string;
  caCert?: string;
  tlsSkipVerify?: boolean;
  auth?: VaultAuthConfig;
}

export interface VaultSourceConfig extends VaultConnectionConfig {
  type: 'vault';
  path: string;
  field: string;
}

export interface VaultIdentitySourceConfig extends VaultConnectionConfig {
  type: 'vault-identity';
  role: string;
}

export interface AwsSecretsManagerSourceConfig {
  type: 'aws-secrets-manager';
  secretId: string;
  region?: string;
  profile?: string;
  versionStage?: string;
  versionId?: string;
  jsonKey?: string;
  endpoint?: string;
}

export interface KeychainSourceConfig {
  type: 'keychain';
  service: string;
  account?: string;
}

/** A secret given by reference only (contract §3 `oidc` clientSecret). */
export type SecretRef =
  | { env: string }
  | { file: string }
  | { keychain: { service: string; account?: string } };

export interface OidcSourceConfig {
  type: 'oidc';
  issuer: string;
  clientId: string;
  clientSecret?: SecretRef;
  scopes?: string[];
  token?: 'id_token' | 'access_token';
  audience?: string;
  exchange?: { audience?: string; scope?: string };
  flow?: 'browser' | 'device';
  redirectPort?: number;
  requireClaims?: string[];
  caCert?: string;
}

export type SourceConfig =
  | JwtSourceConfig
  | OidcSourceConfig
  | VaultSourceConfig
  | VaultIdentitySourceConfig
  | AwsSecretsManagerSourceConfig
  | KeychainSourceConfig;

export interface ProfileConfig {
  proxy?: string;
  ttlMs?: number;
  timeoutMs?: number;
  source: SourceConfig;
}

export interface KeybrokerConfig {
  defaultProfile?: string;
  proxy?: string;
  allowUserConfig?: boolean;
  /** Managed only: under allowUserConfig false, still take connection settings from the environment. */
  environmentDefaults?: boolean;
  /** Managed only: the cap on every lifetime keybroker derives (default 86400). */
  maxLifetimeSec?: number;
  /** Managed only: the company's own page for error hints. */
  docsUrl?: string;
  /** Who `${identity}` is (default `${user}`, the OS login). */
  identity?: string;
  cache?: Partial<CacheConfig>;
  audit?: Partial<AuditConfig>;
  profiles?: Record<string, ProfileConfig>;
}

export const DEFAULTS = {
  profile: 'default',
  ttlMs: 300_000,
  timeoutMs: 8_000,
  cache: {
    storage: 'file',
    refreshMarginMs: 120_000,
    staleIfErrorMs: 3_600_000,
    minRefreshIntervalMs: 10_000,
  } satisfies CacheConfig,
  maxLifetimeSec: 86_400,
  audit: { enabled: true, file: null } satisfies AuditConfig,
} as const;

/** Where each config layer came from; `config path` and `doctor` show these. */
export interface ConfigLayer {
  kind: 'managed' | 'user';
  path: string;
  /** How the path was chosen: 'KEYBROKER_CONFIG', '--config', 'default', ... */
  origin: string;
  exists: boolean;
  /** True when the user layer was skipped because the managed layer set allowUserConfig: false. */
  ignored?: boolean;
  raw?: unknown;
  /**
   * Managed layer only: the file stopped validating, and `raw` is the last copy that did
   * (contract §3, a bad managed push). `error` says what is wrong with the file.
   */
  fallback?: { error: { code: string; message: string }; savedAtMs: number };
}

/** What the managed layer decides for everyone (contract §3, "what the managed layer protects"). */
export interface ManagedPolicy {
  /** The managed file sets allowUserConfig: false. */
  lockdown: boolean;
  /** Connection settings may come from the environment (not under lockdown, unless environmentDefaults). */
  environmentDefaults: boolean;
  /** Cap on every derived lifetime, seconds. */
  maxLifetimeSec: number;
  /** The company's own troubleshooting page, when the managed file names one. */
  docsUrl?: string;
}

/** Everything the token path needs, resolved for one profile. */
export interface ResolvedProfile {
  name: string;
  /** The profile's source with templates and `~` resolved and env defaults applied. */
  source: SourceConfig;
  ttlMs: number;
  ttlOrigin: 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS' | 'profile' | 'default';
  timeoutMs: number;
  cache: CacheConfig;
  audit: AuditConfig;
  /** Profile name + hash of the effective resolved configuration (contract §2, cache key). */
  cacheKey: string;
  /** Who `${identity}` expanded to (the OS login unless the config sets `identity`). */
  identity: string;
  /** The managed policy in force (lockdown, lifetime cap, docsUrl). */
  policy: ManagedPolicy;
  /** The cache directory for this run (KEYBROKER_CACHE_DIR only when the policy allows it). */
  cacheDir: string;
  /** The `"proxy"` setting in force (contract §3a): `"env"`, `"none"` or a proxy URL. */
  proxy?: string;
  /** Non-fatal problems found while resolving (e.g. a malformed TTL variable), printed as warnings. */
  warnings: string[];
}
