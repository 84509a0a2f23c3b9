/**
 * The one definition of the config file format (contract §3). It is a plain JSON Schema
 * (draft 2020-12) object, limited to the keywords that ./validate.ts implements, so that
 * `keybroker config schema` and the validator can never disagree.
 *
 * Conventions the validator relies on: a union of objects told apart by one key (`type` for
 * sources, `method` for Vault auth) is a `oneOf` whose branches each give that key a `const`;
 * a union told apart by which key is present (signingKey: file/env/keychain) is a `oneOf`
 * whose branches each require their own key.
 */
import { PROFILE_NAME_PATTERN } from './load.js';

export type SchemaType = 'object' | 'string' | 'integer' | 'boolean' | 'array' | 'null';

export interface Schema {
  type?: SchemaType | SchemaType[];
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: false | Schema;
  propertyNames?: Schema;
  const?: string;
  enum?: (string | number | boolean | null)[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
  items?: Schema;
  minItems?: number;
  oneOf?: Schema[];
  not?: Schema;
  default?: unknown;
}

const str = (description: string, extra: Partial<Schema> = {}): Schema => ({
  type: 'string',
  description,
  ...extra,
});
const required = (description: string): Schema => str(description, { minLength: 1 });
const int = (description: string, minimum: number, extra: Partial<Schema> = {}): Schema => ({
  type: 'integer',
  description,
  minimum,
  ...extra,
});
const bool = (description: string): Schema => ({ type: 'boolean', description });
const obj = (
  properties: Record<string, Schema>,
  req: string[] = [],
  extra: Partial<Schema> = {},
): Schema => ({
  type: 'object',
  properties,
  ...(req.length > 0 ? { required: req } : {}),
  additionalProperties: false,
  ...extra,
});
const URL_PATTERN = '^https?://';
/**
 * Bounds for the durations that make a token's expiry (2 × TTL + margin, or lifetimeSec): far
 * beyond any real use, and well inside what a Date can hold (an expiry past the year 275760
 * made toISOString() throw a RangeError, exit 1).
 */
const HUNDRED_YEARS_SEC = 3_153_600_000;

const mount = str('auth mount path (default: the method name)');
const vaultAuth: Schema = {
  description: 'how to log in to Vault (default {"method": "token"})',
  oneOf: [
    obj(
      {
        method: { const: 'token' },
        tokenFile: str('file holding a Vault token, used when VAULT_TOKEN and ~/.vault-token are absent'),
      },
      ['method'],
    ),
    obj(
      {
        method: { const: 'approle' },
        mount,
        roleId: required('AppRole role_id'),
        secretIdFile: str('file holding the secret_id'),
        secretIdEnv: str('environment variable holding the secret_id'),
      },
      ['method', 'roleId'],
      { not: { required: ['secretIdFile', 'secretIdEnv'] } },
    ),
    obj(
      {
        method: { const: 'kubernetes' },
        mount,
        role: required('Vault role'),
        jwtFile: str('service account token (default /var/run/secrets/kubernetes.io/serviceaccount/token)'),
      },
      ['method', 'role'],
    ),
    obj(
      {
        method: { const: 'jwt' },
        mount,
        role: required('Vault role'),
        jwtFile: required('file holding the JWT to log in with'),
      },
      ['method', 'role', 'jwtFile'],
    ),
    obj(
      {
        method: { const: 'cert' },
        mount,
        name: str('certificate role (auth/<mount>/certs/<name>); default: any role the certificate matches'),
        certFile: required('PEM file of the device certificate (and its chain) presented over TLS'),
        keyFile: required('PEM file of its private key, mode 0600 or stricter'),
      },
      ['method', 'certFile', 'keyFile'],
    ),
  ],
};

const vaultConnection: Record<string, Schema> = {
  address: str('Vault address (default VAULT_ADDR)', { pattern: URL_PATTERN }),
  namespace: str('Vault namespace (default VAULT_NAMESPACE)'),
  caCert: str("PEM file of the CA that signed Vault's certificate (default VAULT_CACERT)"),
  tlsSkipVerify: bool('skip TLS verification (default VAULT_SKIP_VERIFY); never in production'),
  auth: vaultAuth,
};

/** Top-level keys read from the managed layer only (contract §3). */
export const MANAGED_ONLY_KEYS = ['environmentDefaults', 'maxLifetimeSec', 'docsUrl'];

const REGISTERED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'];

const signingKey: Schema = {
  description: 'where the signing key is: a file, an environment variable or a keychain item',
  oneOf: [
    obj({ file: required('PEM PKCS#8 or JWK JSON file, mode 0600 or stricter') }, ['file']),
    obj({ env: required('environment variable holding a PEM, a JWK JSON or (HS256) the raw secret') }, [
      'env',
    ]),
    obj(
      {
        keychain: obj(
          { service: required('keychain service'), account: str(`keychain account (default \${user})`) },
          ['service'],
        ),
      },
      ['keychain'],
    ),
  ],
};

const jwtSource = obj(
  {
    type: { const: 'jwt' },
    algorithm: {
      type: 'string',
      description: 'signing algorithm',
      enum: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'HS256'],
      default: 'ES256',
    },
    signingKey,
    keyId: str('kid header (default the RFC 7638 thumbprint of the public key)'),
    issuer: str('iss claim'),
    audience: {
      description: 'aud claim',
      oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
    },
    subject: str(`sub claim (default \${identity})`),
    lifetimeSec: int('token lifetime (default 2 x TTL + refresh margin); at least TTL + margin', 1, {
      maximum: HUNDRED_YEARS_SEC,
    }),
    claims: {
      type: 'object',
      description: `custom claims (default {"user": "\${identity}"}); registered claims cannot be overwritten`,
      propertyNames: {
        description: 'registered claims come from issuer, audience, subject and lifetimeSec',
        not: { enum: REGISTERED_CLAIMS },
      },
    },
    notBeforeSkewSec: int('iat and nbf are set this far in the past (default 30)', 0, { maximum: 3600 }),
  },
  ['type'],
);

const vaultSource = obj(
  {
    type: { const: 'vault' },
    ...vaultConnection,
    path: required('KV secret path, as for `vault kv get` (mount/path)'),
    field: required('field of the secret to print'),
  },
  ['type', 'path', 'field'],
);

const vaultIdentitySource = obj(
  {
    type: { const: 'vault-identity' },
    ...vaultConnection,
    role: required('identity token role (identity/oidc/token/<role>)'),
  },
  ['type', 'role'],
);

const awsSource = obj(
  {
    type: { const: 'aws-secrets-manager' },
    secretId: required('secret name or ARN'),
    region: str('AWS region (default AWS_REGION, AWS_DEFAULT_REGION)'),
    profile: str('AWS shared-config profile (default AWS_PROFILE)'),
    versionStage: str('version stage (default AWSCURRENT)'),
    versionId: str('version id'),
    jsonKey: str('key of a JSON SecretString to print'),
    endpoint: str('endpoint URL (default AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL)', {
      pattern: URL_PATTERN,
    }),
  },
  ['type', 'secretId'],
);

const keychainSource = obj(
  {
    type: { const: 'keychain' },
    service: required('keychain service'),
    account: str(`keychain account (default \${user})`),
  },
  ['type', 'service'],
);

const oidcSource = obj(
  {
    type: { const: 'oidc' },
    issuer: str('OpenID provider issuer URL; discovery at <issuer>/.well-known/openid-configuration', {
      minLength: 1,
      pattern: URL_PATTERN,
    }),
    clientId: required('client id of a public (PKCE) client registered at the provider'),
    clientSecret: {
      description: 'client secret, by reference only (confidential clients; public clients need none)',
      oneOf: [
        obj({ env: required('environment variable holding the client secret') }, ['env']),
        obj({ file: required('file holding the client secret, mode 0600 or stricter') }, ['file']),
        obj(
          {
            keychain: obj(
              { service: required('keychain service'), account: str(`keychain account (default \${user})`) },
              ['service'],
            ),
          },
          ['keychain'],
        ),
      ],
    },
    scopes: {
      type: 'array',
      description: 'scopes asked for (default ["openid", "profile", "email", "offline_access"])',
      items: { type: 'string', minLength: 1 },
      minItems: 1,
    },
    token: {
      type: 'string',
      description: 'which token to print (default id_token)',
      enum: ['id_token', 'access_token'],
      default: 'id_token',
    },
    audience: str('audience of the access token, sent as audience and resource where the provider needs it'),
    exchange: obj({
      audience: str('RFC 8693 token exchange: audience of the exchanged token'),
      scope: str('RFC 8693 token exchange: scope of the exchanged token'),
    }),
    flow: {
      type: 'string',
      description: 'how keybroker login signs in (default browser when a display is available, else device)',
      enum: ['browser', 'device'],
    },
    redirectPort: int('loopback port for the browser sign-in (default a random free port)', 1, {
      maximum: 65535,
    }),
    requireClaims: {
      type: 'array',
      description: 'claims the printed token must carry, e.g. ["email", "groups"]',
      items: { type: 'string', minLength: 1 },
    },
    caCert: str("PEM file of the CA that signed the provider's certificate"),
  },
  ['type', 'issuer', 'clientId'],
);

const proxySetting = str(
  'proxy for this profile\'s requests: "env" (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; the default), "none", or a proxy URL',
  { pattern: '^(env|none|https?://.+)$' },
);

const profile = obj(
  {
    ttlMs: int('how long Claude Code holds the token, unless CLAUDE_CODE_API_KEY_HELPER_TTL_MS is set', 1, {
      maximum: HUNDRED_YEARS_SEC * 1000,
      default: 300000,
    }),
    timeoutMs: int('deadline for the whole run', 1, { maximum: 600000, default: 8000 }),
    source: {
      description: 'where the token comes from',
      oneOf: [jwtSource, vaultSource, vaultIdentitySource, awsSource, keychainSource, oidcSource],
    },
    proxy: proxySetting,
  },
  ['source'],
);

export const CONFIG_SCHEMA: Schema = obj(
  {
    $schema: str('URI of this schema, for editors'),
    defaultProfile: str('profile used when neither --profile nor KEYBROKER_PROFILE is given', {
      pattern: PROFILE_NAME_PATTERN,
      default: 'default',
    }),
    allowUserConfig: {
      ...bool('managed layer only in effect: false ignores the user config file'),
      default: true,
    },
    environmentDefaults: {
      ...bool(
        'managed only: with allowUserConfig false, still take VAULT_ADDR, VAULT_CACERT, VAULT_SKIP_VERIFY, VAULT_NAMESPACE, AWS_ENDPOINT_URL* and KEYBROKER_CACHE_DIR from the environment',
      ),
      default: false,
    },
    maxLifetimeSec: int(
      'managed only: cap on every lifetime keybroker derives (a minted JWT, the TTL), whatever CLAUDE_CODE_API_KEY_HELPER_TTL_MS says',
      60,
      { maximum: HUNDRED_YEARS_SEC, default: 86400 },
    ),
    docsUrl: str("managed only: the company's own troubleshooting page, named in error hints", {
      pattern: '^https://',
    }),
    identity: str(
      `who \${identity} is, and the default jwt subject and user claim (default \${user}, the OS login), e.g. "\${env:CORP_USER}" or "\${user}@example.com"`,
      { minLength: 1 },
    ),
    cache: obj({
      storage: { type: 'string', enum: ['file', 'keychain', 'none'], default: 'file' },
      refreshMarginMs: int('room for clock skew and request time', 0, {
        maximum: HUNDRED_YEARS_SEC * 1000,
        default: 120000,
      }),
      staleIfErrorMs: int('how long a secret without expiry may be served when the source is down', 0, {
        default: 3600000,
      }),
      minRefreshIntervalMs: int('minimum interval between forced (rejected-token) refreshes', 0, {
        default: 10000,
      }),
    }),
    audit: obj({
      enabled: { ...bool('write the audit log'), default: true },
      file: {
        type: ['string', 'null'],
        description: 'audit log file (default $XDG_STATE_HOME/keybroker/audit.log)',
        default: null,
      },
    }),
    profiles: {
      type: 'object',
      description: 'profiles by name',
      propertyNames: {
        description:
          "a profile name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
        pattern: PROFILE_NAME_PATTERN,
      },
      additionalProperties: profile,
    },
    proxy: {
      ...proxySetting,
      description:
        'proxy for every profile without its own (a managed file with "allowUserConfig": false makes it win over profiles): "env", "none" or a proxy URL',
    },
  },
  [],
  { description: 'keybroker configuration (managed and user layers merge, later winning)' },
);
