// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config strings hold ${...} templates
/**
 * The failure table (contract §1): bad inputs across config, environment, cache files,
 * filesystem permissions and upstream answers, each run through dist/keybroker as Claude Code
 * runs it. For each: nothing on stdout, the exact exit code, exactly one stderr line (the
 * exact line, with the sandbox path and server addresses put back as $SB, $VAULT, $AWS), and
 * no stack trace. Three rows are not failures but belong here because a bad input must not
 * fail them: a malformed TTL variable, a corrupt cache entry and an audit log that cannot be
 * written are each one warning line, exit 0, and the token on stdout.
 *
 * Rows run concurrently in small batches; each has its own sandbox, Vault KV path and, where
 * a fault is global, its own Secrets Manager server.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtConfig, writeJwtKey } from '../helpers/jwt-profile.js';
import { makeSandbox, type RunResult, runKeybroker, type Sandbox } from '../helpers/run.js';
import {
  DEFAULT_CREDENTIALS,
  type Fault,
  type SecretsManagerServer,
  startSecretsManagerServer,
} from '../servers/secrets-manager-server.js';
import { startVaultServer, type VaultAdmin, type VaultServer, vaultAdmin } from '../servers/vault-server.js';

const TOKEN = 'sk-ant-failure-table-0001';
const IS_ROOT = process.getuid?.() === 0;
const BATCH = 6;

interface RowContext {
  sb: Sandbox;
  /** An ES256 key file (0600) in the sandbox. */
  keyFile: string;
  /** This row's own Vault KV key (`secret/<kvKey>`), holding {token: TOKEN}. */
  kvKey: string;
  /** This row's own Secrets Manager secret name in the shared server. */
  secretName: string;
  /** A Secrets Manager server of this row's own (for global faults). */
  ownAws?: SecretsManagerServer;
  /** The cache entry file, once primeCache has written it. */
  entryFile?: string;
}

interface Row {
  name: string;
  /** Prepares the sandbox; the default writes a jwt profile. */
  setup?: (c: RowContext) => unknown;
  args?: string[];
  env?: (c: RowContext) => Record<string, string | undefined>;
  /** Start a Secrets Manager server for this row only, with this fault. */
  awsFault?: Fault;
  /** Fails faster where the row waits for a timeout. */
  exit: number;
  /** The one stderr line, with $SB for the sandbox directory, $VAULT and $AWS for the servers. */
  line: string;
  /** Only for exit 0 rows: stdout is the token. */
  stdout?: RegExp;
  /** Gives a file to another user (uid 65534): only root can. */
  needsRoot?: boolean;
  /** Parts of the line that vary from run to run (a remaining budget in ms), shown as <n>. */
  mask?: RegExp;
}

let vault: VaultServer;
let admin: VaultAdmin;
let aws: SecretsManagerServer;
let refusedPort: number;
let rowCount = 0;

const writeProfile = (c: RowContext, source: Record<string, unknown>, profile = {}, top = {}) =>
  c.sb.writeConfig({ ...top, profiles: { default: { ...profile, source } } });
const kv = (c: RowContext, extra: Record<string, unknown> = {}) => ({
  type: 'vault',
  path: `secret/${c.kvKey}`,
  field: 'token',
  ...extra,
});
const sm = (c: RowContext, extra: Record<string, unknown> = {}) => ({
  type: 'aws-secrets-manager',
  secretId: c.secretName,
  ...extra,
});
const vaultEnv = () => ({ VAULT_ADDR: vault.url, VAULT_TOKEN: vault.rootToken });
const awsEnv = (c: RowContext) => ({
  AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIALS.secretAccessKey,
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL_SECRETS_MANAGER: (c.ownAws ?? aws).url,
  AWS_EC2_METADATA_DISABLED: 'true',
});
/** A Vault fault for this row's KV read only (the mount lookup still answers). */
const vaultFault = (c: RowContext, fault: Record<string, unknown>) => {
  vault.faults.push({ ...fault, match: new RegExp(`^secret/data/${c.kvKey}$`) } as never);
};
/** Writes the cache entry once with a good run, then returns its path. */
const primeCache = async (c: RowContext): Promise<string> => {
  const r = await runKeybroker([], c.sb);
  if (r.code !== 0) throw new Error(`priming the cache failed: ${r.stderr}`);
  const name = fs.readdirSync(c.sb.cacheDir).find((f) => f.endsWith('.json'))!;
  c.entryFile = path.join(c.sb.cacheDir, name);
  return c.entryFile;
};

const ROWS: Row[] = [
  // ---- config
  {
    name: 'config: invalid JSON',
    setup: (c) => fs.writeFileSync(c.sb.writeConfig({}), '{"profiles": {"default": ', { mode: 0o600 }),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: invalid JSON at line 1, column 26: unexpected end of file, expected a value (fix the syntax there; run keybroker explain ERR_CONFIG_JSON)',
  },
  {
    name: 'config: empty file',
    setup: (c) => fs.writeFileSync(c.sb.writeConfig({}), '', { mode: 0o600 }),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: invalid JSON at line 1, column 1: unexpected end of file, expected a value (fix the syntax there; run keybroker explain ERR_CONFIG_JSON)',
  },
  {
    name: 'config: unknown top-level key',
    setup: (c) => c.sb.writeConfig({ ...jwtConfig(c.keyFile), profile: {} }),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profile: unknown key (allowed here: $schema, defaultProfile, allowUserConfig, environmentDefaults, maxLifetimeSec, docsUrl, identity, cache, audit, profiles, proxy; run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'config: unknown source key',
    setup: (c) => c.sb.writeConfig(jwtConfig(c.keyFile, { algorithmn: 'ES256' })),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profiles/default/source/algorithmn: unknown key (allowed here: type, algorithm, signingKey, keyId, issuer, audience, subject, lifetimeSec, claims, notBeforeSkewSec; run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'config: ttlMs is a string',
    setup: (c) => c.sb.writeConfig(jwtConfig(c.keyFile, {}, { ttlMs: '300000' })),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profiles/default/ttlMs: must be an integer (how long Claude Code holds the token, unless CLAUDE_CODE_API_KEY_HELPER_TTL_MS is set; run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'config: cache.storage not one of file, keychain, none',
    setup: (c) => c.sb.writeConfig({ ...jwtConfig(c.keyFile), cache: { storage: 'disk' } }),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /cache/storage: must be one of "file", "keychain", "none" (run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'config: unknown source type',
    setup: (c) => writeProfile(c, { type: 'gcp-secret-manager' }),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profiles/default/source/type: must be one of "jwt", "vault", "vault-identity", "aws-secrets-manager", "keychain", "oidc" (where the token comes from; run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'config: source without type',
    setup: (c) => c.sb.writeConfig({ profiles: { default: { ttlMs: 300000 } } }),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profiles/default/source: required key missing (run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'config: unknown template',
    setup: (c) => c.sb.writeConfig(jwtConfig(c.keyFile, { issuer: 'kb-${team}' })),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profiles/default/source/issuer: unknown template ${team} (use ${user}, ${identity}, ${hostname}, ${profile} or ${env:NAME}; run keybroker explain ERR_CONFIG_TEMPLATE)',
  },
  {
    name: 'config: ${env:X} unset',
    setup: (c) => c.sb.writeConfig(jwtConfig(c.keyFile, { audience: '${env:KB_GATEWAY_AUDIENCE}' })),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profiles/default/source/audience: environment variable KB_GATEWAY_AUDIENCE is not set (used as ${env:KB_GATEWAY_AUDIENCE}) (set KB_GATEWAY_AUDIENCE or change that value; run keybroker explain ERR_CONFIG_ENV_UNSET)',
  },
  {
    name: 'config: claims overwrite a registered claim',
    setup: (c) => c.sb.writeConfig(jwtConfig(c.keyFile, { claims: { iss: 'me' } })),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profiles/default/source/claims/iss: key cannot be set here (reserved: iss, sub, aud, exp, nbf, iat, jti) (registered claims come from issuer, audience, subject and lifetimeSec; run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'config: jwt lifetimeSec under TTL + margin',
    setup: (c) => c.sb.writeConfig(jwtConfig(c.keyFile, { lifetimeSec: 60 })),
    exit: 2,
    line: 'keybroker: jwt source: lifetimeSec 60 is shorter than the TTL plus the refresh margin (300 s + 120 s = 420 s) (set lifetimeSec to at least 420 or remove it for the default 2 x TTL + margin = 720; run keybroker explain ERR_JWT_LIFETIME_TOO_SHORT)',
  },
  {
    name: 'config: defaultProfile names no profile',
    setup: (c) => c.sb.writeConfig({ ...jwtConfig(c.keyFile), defaultProfile: 'work' }),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /defaultProfile: names profile "work", which is not defined (define profiles.work or change defaultProfile; run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'config: unknown profile from --profile',
    args: ['--profile', 'work'],
    exit: 2,
    line: 'keybroker: profile "work" (from --profile): not defined in $SB/home/.config/keybroker/config.json (available: default; run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE)',
  },
  {
    name: 'config: unknown profile from KEYBROKER_PROFILE',
    env: () => ({ KEYBROKER_PROFILE: 'staging' }),
    exit: 2,
    line: 'keybroker: profile "staging" (from KEYBROKER_PROFILE): not defined in $SB/home/.config/keybroker/config.json (available: default; run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE)',
  },
  {
    name: 'config: invalid profile name',
    args: ['--profile', '../etc'],
    exit: 2,
    line: "keybroker: profile \"../etc\" (from --profile): not a valid profile name (use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit; run keybroker explain ERR_CONFIG_PROFILE_NAME)",
  },
  {
    name: 'config: --config names a directory',
    setup: (c) => fs.mkdirSync(path.join(c.sb.home, 'conf.d'), { mode: 0o700 }),
    args: ['--config', '$SB/home/conf.d'],
    exit: 2,
    line: 'keybroker: config $SB/home/conf.d: cannot read it (EISDIR) (check that the file is readable by you; run keybroker explain ERR_CONFIG_UNREADABLE)',
  },
  {
    name: 'config: vault address is not a URL',
    setup: (c) => writeProfile(c, kv(c, { address: 'vault.example.com:8200' })),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profiles/default/source/address: must match ^https?:// (Vault address (default VAULT_ADDR); run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'config: approle with both secretIdFile and secretIdEnv',
    setup: (c) =>
      writeProfile(
        c,
        kv(c, { auth: { method: 'approle', roleId: 'r', secretIdFile: '~/sid', secretIdEnv: 'SID' } }),
      ),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: /profiles/default/source/auth: "secretIdFile" and "secretIdEnv" cannot both be set (run keybroker explain ERR_CONFIG_INVALID)',
  },
  {
    name: 'usage: unknown flag',
    args: ['--bogus'],
    exit: 2,
    line: 'keybroker: usage: Unknown argument: bogus (run keybroker --help)',
  },
  {
    name: 'config: world-writable user config',
    setup: (c) => fs.chmodSync(c.sb.configPath, 0o666),
    exit: 6,
    line: "keybroker: config file $SB/home/.config/keybroker/config.json: writable by others (mode 0666) (run chmod go-w '$SB/home/.config/keybroker/config.json'; run keybroker explain ERR_UNSAFE_PERMISSIONS)",
  },
  {
    name: 'config: group-writable config directory',
    setup: (c) => fs.chmodSync(path.dirname(c.sb.configPath), 0o770),
    exit: 6,
    line: "keybroker: config directory $SB/home/.config/keybroker: writable by others (mode 0770) (run chmod go-w '$SB/home/.config/keybroker'; run keybroker explain ERR_UNSAFE_PERMISSIONS)",
  },
  {
    name: 'config: world-writable managed config',
    setup: (c) => {
      fs.writeFileSync(c.sb.env.KEYBROKER_MANAGED_CONFIG!, '{}', { mode: 0o666 });
      fs.chmodSync(c.sb.env.KEYBROKER_MANAGED_CONFIG!, 0o666);
    },
    exit: 6,
    line: "keybroker: managed config file $SB/managed.json: writable by others (mode 0666) (run chmod go-w '$SB/managed.json'; run keybroker explain ERR_UNSAFE_PERMISSIONS)",
  },
  {
    name: 'config: user config owned by another user',
    needsRoot: true,
    setup: (c) => fs.chownSync(c.sb.configPath, 65534, 65534),
    exit: 6,
    line: 'keybroker: config file $SB/home/.config/keybroker/config.json: owned by uid 65534, not by you (uid 0) (chown it to yourself or remove it; run keybroker explain ERR_UNSAFE_OWNER)',
  },
  {
    name: 'config: nested 20,000 levels deep',
    setup: (c) =>
      fs.writeFileSync(
        c.sb.configPath,
        `{"profiles":{"default":{"source":{"type":"jwt","claims":{"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}}}}}`,
      ),
    exit: 2,
    line: 'keybroker: config $SB/home/.config/keybroker/config.json: nested more than 64 levels deep (no config needs that; fix the file; run keybroker explain ERR_CONFIG_JSON)',
  },
  {
    name: 'config: audit file is a directory (a warning, exit 0)',
    setup: (c) => {
      fs.mkdirSync(path.join(c.sb.home, 'audit.d'), { mode: 0o700 });
      c.sb.writeConfig({ ...jwtConfig(c.keyFile), audit: { file: '~/audit.d' } });
    },
    exit: 0,
    stdout: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/,
    line: 'keybroker: warning: audit record not written: audit log $SB/home/audit.d: not a regular file (replace it with a regular file; run keybroker explain ERR_UNSAFE_FILE_TYPE)',
  },
  {
    name: 'config: audit directory cannot be created (a warning, exit 0)',
    setup: (c) => {
      fs.writeFileSync(path.join(c.sb.home, 'not-a-dir'), '');
      c.sb.writeConfig({ ...jwtConfig(c.keyFile), audit: { file: '~/not-a-dir/audit.log' } });
    },
    exit: 0,
    stdout: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/,
    line: 'keybroker: warning: could not write the audit log $SB/home/not-a-dir/audit.log: ENOTDIR (check that its directory is writable, or set audit.enabled to false)',
  },
  // finding 7 (issue 11): an audit file planted by someone else gets no record.
  {
    name: 'audit: file is a symlink to another file (a warning, exit 0, target untouched)',
    setup: (c) => {
      fs.writeFileSync(path.join(c.sb.home, 'victim'), '', { mode: 0o600 });
      fs.symlinkSync(path.join(c.sb.home, 'victim'), path.join(c.sb.home, 'audit.log'));
      c.sb.writeConfig({ ...jwtConfig(c.keyFile), audit: { file: '~/audit.log' } });
    },
    exit: 0,
    stdout: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/,
    line: 'keybroker: warning: audit record not written: audit log $SB/home/audit.log: is a symbolic link (replace the link with the file itself; run keybroker explain ERR_UNSAFE_SYMLINK)',
  },
  {
    name: 'audit: file pre-created 0666 by another user (a warning, exit 0)',
    needsRoot: true,
    setup: (c) => {
      const file = path.join(c.sb.home, 'audit.log');
      fs.writeFileSync(file, '');
      fs.chmodSync(file, 0o666);
      fs.chownSync(file, 65534, 65534);
      c.sb.writeConfig({ ...jwtConfig(c.keyFile), audit: { file: '~/audit.log' } });
    },
    exit: 0,
    stdout: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/,
    line: 'keybroker: warning: audit record not written: audit log $SB/home/audit.log: owned by uid 65534, not by you (uid 0) (chown it to yourself; run keybroker explain ERR_UNSAFE_OWNER)',
  },
  // ---- environment
  {
    name: 'environment: malformed CLAUDE_CODE_API_KEY_HELPER_TTL_MS (a warning, exit 0)',
    env: () => ({ CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1h' }),
    exit: 0,
    stdout: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/,
    line: 'keybroker: warning: CLAUDE_CODE_API_KEY_HELPER_TTL_MS="1h" is not a positive integer; using 300000 ms',
  },
  {
    name: 'environment: VAULT_ADDR unset',
    setup: (c) => writeProfile(c, kv(c)),
    env: () => ({ VAULT_TOKEN: vault.rootToken }),
    exit: 2,
    line: "keybroker: vault: no Vault address configured (set VAULT_ADDR or the profile's source.address, e.g. https://vault.example.com:8200; run keybroker explain ERR_VAULT_NO_ADDRESS)",
  },
  {
    name: 'environment: VAULT_ADDR not an http(s) URL',
    setup: (c) => writeProfile(c, kv(c)),
    env: () => ({ VAULT_ADDR: 'vault.example.com:8200', VAULT_TOKEN: vault.rootToken }),
    exit: 2,
    line: 'keybroker: vault: address vault.example.com:8200 is not an http(s) URL (set VAULT_ADDR or source.address to a URL such as https://vault.example.com:8200; run keybroker explain ERR_VAULT_BAD_ADDRESS)',
  },
  {
    name: 'environment: no VAULT_TOKEN and no ~/.vault-token',
    setup: (c) => writeProfile(c, kv(c)),
    env: () => ({ VAULT_ADDR: vault.url }),
    exit: 4,
    line: 'keybroker: vault: no Vault token found (run vault login, set VAULT_TOKEN, or set source.auth.tokenFile; run keybroker explain ERR_VAULT_NO_TOKEN)',
  },
  {
    name: 'environment: VAULT_TOKEN wrong',
    setup: (c) => writeProfile(c, kv(c)),
    env: () => ({ VAULT_ADDR: vault.url, VAULT_TOKEN: 'hvs.not-a-real-token' }),
    exit: 4,
    line: 'keybroker: vault kv secret/$KV field token: permission denied (HTTP 403) (the token (token from VAULT_TOKEN) may have expired, or its policy lacks read on secret/data/$KV (KV v2) or secret/$KV (KV v1); run keybroker explain ERR_VAULT_DENIED)',
  },
  {
    name: 'environment: approle secret id variable unset',
    setup: (c) =>
      writeProfile(c, kv(c, { auth: { method: 'approle', roleId: 'r-1', secretIdEnv: 'KB_SECRET_ID' } })),
    env: () => ({ VAULT_ADDR: vault.url }),
    exit: 2,
    line: 'keybroker: vault: KB_SECRET_ID is not set (export KB_SECRET_ID with the approle secret id, or use secretIdFile; run keybroker explain ERR_VAULT_CREDENTIAL_ENV)',
  },
  {
    name: 'environment: VAULT_CACERT names a missing file',
    setup: (c) => writeProfile(c, kv(c)),
    env: (c) => ({ ...vaultEnv(), VAULT_CACERT: `${c.sb.dir}/no-ca.pem` }),
    exit: 2,
    line: "keybroker: vault: cannot read the CA certificate $SB/no-ca.pem (ENOENT) (fix the profile's caCert or VAULT_CACERT; run keybroker explain ERR_VAULT_CA_CERT)",
  },
  {
    name: 'environment: no AWS region',
    setup: (c) => writeProfile(c, sm(c)),
    env: (c) => ({ ...awsEnv(c), AWS_REGION: undefined }),
    exit: 2,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET": no region configured (set source.region, AWS_REGION, or region in ~/.aws/config for the default AWS profile; run keybroker explain ERR_AWS_REGION_MISSING)',
  },
  {
    name: 'environment: unknown AWS access key',
    setup: (c) => writeProfile(c, sm(c)),
    env: (c) => ({ ...awsEnv(c), AWS_ACCESS_KEY_ID: 'AKIAUNKNOWNKEY000000' }),
    exit: 4,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: AWS does not recognize the access key (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in the environment (they are used before any AWS profile); run keybroker explain ERR_AWS_BAD_CREDENTIALS)',
  },
  {
    name: 'environment: wrong AWS secret access key',
    setup: (c) => writeProfile(c, sm(c)),
    env: (c) => ({ ...awsEnv(c), AWS_SECRET_ACCESS_KEY: 'wrong/secret/access/key/0000000000000000' }),
    exit: 4,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: AWS rejected the request signature (check AWS_SECRET_ACCESS_KEY in the environment, the region and the system clock; run keybroker explain ERR_AWS_BAD_SIGNATURE)',
  },
  {
    name: 'environment: no AWS credentials at all',
    setup: (c) => writeProfile(c, sm(c)),
    env: (c) => ({ ...awsEnv(c), AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined }),
    exit: 4,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: no AWS credentials found for the default AWS profile (run aws sso login --profile default or aws configure --profile default, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; run keybroker explain ERR_AWS_NO_CREDENTIALS)',
  },
  {
    name: 'environment: AWS region that signs for another region',
    setup: (c) => writeProfile(c, sm(c)),
    env: (c) => ({ ...awsEnv(c), AWS_REGION: 'eu-west-3' }),
    exit: 4,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in eu-west-3: AWS rejected the request signature (check AWS_SECRET_ACCESS_KEY in the environment, the region and the system clock; run keybroker explain ERR_AWS_BAD_SIGNATURE)',
  },
  {
    name: 'environment: HS256 secret variable unset',
    setup: (c) =>
      writeProfile(c, { type: 'jwt', algorithm: 'HS256', signingKey: { env: 'KB_HS256_SECRET' } }),
    exit: 2,
    line: 'keybroker: jwt signing key: environment variable KB_HS256_SECRET is not set (set KB_HS256_SECRET to the key (a PKCS#8 PEM, a JWK JSON, or for HS256 the secret), or point signingKey elsewhere; run keybroker explain ERR_JWT_KEY_ENV_UNSET)',
  },
  {
    name: 'environment: KEYBROKER_CACHE_DIR is a file',
    setup: (c) => fs.writeFileSync(path.join(c.sb.dir, 'cache-file'), ''),
    env: (c) => ({ KEYBROKER_CACHE_DIR: `${c.sb.dir}/cache-file` }),
    exit: 6,
    line: 'keybroker: cache directory $SB/cache-file: not a plain directory (remove it or set KEYBROKER_CACHE_DIR to a private directory; run keybroker explain ERR_UNSAFE_CACHE_DIR)',
  },
  // ---- cache files
  {
    name: 'cache: corrupt entry (a warning, exit 0)',
    setup: async (c) => {
      fs.writeFileSync(await primeCache(c), '{"v":1,"key":', { mode: 0o600 });
    },
    exit: 0,
    stdout: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/,
    line: 'keybroker: warning: discarded a corrupt cache entry $SB/home/.cache/keybroker/$ENTRY; fetching anew',
  },
  {
    name: 'cache: symlinked entry',
    setup: async (c) => {
      const entry = await primeCache(c);
      const elsewhere = path.join(c.sb.dir, 'elsewhere.json');
      fs.renameSync(entry, elsewhere);
      fs.symlinkSync(elsewhere, entry);
    },
    exit: 6,
    line: 'keybroker: cache entry $SB/home/.cache/keybroker/$ENTRY: is a symbolic link (remove it (keybroker cache clear); run keybroker explain ERR_UNSAFE_SYMLINK)',
  },
  {
    name: 'cache: entry readable by others (0644)',
    setup: async (c) => fs.chmodSync(await primeCache(c), 0o644),
    exit: 6,
    line: "keybroker: cache entry $SB/home/.cache/keybroker/$ENTRY: permissions 0644 are too open (run chmod 600 '$SB/home/.cache/keybroker/$ENTRY'; run keybroker explain ERR_UNSAFE_PERMISSIONS)",
  },
  {
    name: 'cache: entry owned by another user',
    needsRoot: true,
    setup: async (c) => fs.chownSync(await primeCache(c), 65534, 65534),
    exit: 6,
    line: "keybroker: cache entry $SB/home/.cache/keybroker/$ENTRY: owned by uid 65534, not by you (uid 0) (run sudo chown -R 0 '$SB/home/.cache/keybroker' (a sudo -E run leaves it owned by root); run keybroker explain ERR_UNSAFE_OWNER)",
  },
  {
    name: 'cache: entry is a directory',
    setup: async (c) => {
      const entry = await primeCache(c);
      fs.rmSync(entry);
      fs.mkdirSync(entry, { mode: 0o700 });
    },
    exit: 6,
    line: 'keybroker: cache entry $SB/home/.cache/keybroker/$ENTRY: not a regular file (replace it with a regular file; run keybroker explain ERR_UNSAFE_FILE_TYPE)',
  },
  {
    name: 'cache: directory writable by others (0777)',
    setup: (c) => {
      fs.mkdirSync(c.sb.cacheDir, { recursive: true });
      fs.chmodSync(c.sb.cacheDir, 0o777);
    },
    exit: 6,
    line: "keybroker: cache directory $SB/home/.cache/keybroker: writable by others (mode 0777) (run chmod go-w '$SB/home/.cache/keybroker'; run keybroker explain ERR_UNSAFE_PERMISSIONS)",
  },
  {
    name: 'cache: directory is a symlink',
    setup: (c) => {
      const real = path.join(c.sb.dir, 'real-cache');
      fs.mkdirSync(real, { mode: 0o700 });
      fs.mkdirSync(path.dirname(c.sb.cacheDir), { recursive: true, mode: 0o700 });
      fs.symlinkSync(real, c.sb.cacheDir);
    },
    exit: 6,
    line: 'keybroker: cache directory $SB/home/.cache/keybroker: not a plain directory (remove it or set KEYBROKER_CACHE_DIR to a private directory; run keybroker explain ERR_UNSAFE_CACHE_DIR)',
  },
  {
    name: 'cache: directory owned by another user',
    needsRoot: true,
    setup: (c) => {
      fs.mkdirSync(c.sb.cacheDir, { recursive: true, mode: 0o700 });
      fs.chownSync(c.sb.cacheDir, 65534, 65534);
    },
    exit: 6,
    line: "keybroker: cache directory $SB/home/.cache/keybroker: owned by uid 65534, not by you (uid 0) (run sudo chown -R 0 '$SB/home/.cache/keybroker' (a sudo -E run leaves it owned by root); run keybroker explain ERR_UNSAFE_OWNER)",
  },
  // ---- filesystem permissions
  {
    name: 'permissions: signing key file 0644',
    setup: (c) => fs.chmodSync(c.keyFile, 0o644),
    exit: 6,
    line: "keybroker: signing key file $SB/home/key.pem: permissions 0644 are too open (run chmod 600 '$SB/home/key.pem'; run keybroker explain ERR_UNSAFE_PERMISSIONS)",
  },
  {
    name: 'permissions: signing key file missing',
    setup: (c) => fs.rmSync(c.keyFile),
    exit: 2,
    line: "keybroker: jwt signing key file $SB/home/key.pem: does not exist (create it with keybroker keygen --algorithm ES256 --out '$SB/home/key.pem', or fix signingKey.file; run keybroker explain ERR_JWT_KEY_FILE_MISSING)",
  },
  {
    name: 'permissions: signing key file owned by another user',
    needsRoot: true,
    setup: (c) => fs.chownSync(c.keyFile, 65534, 65534),
    exit: 6,
    line: 'keybroker: signing key file $SB/home/key.pem: owned by uid 65534, not by you (uid 0) (chown it to yourself, or to root with mode 0640 or stricter; run keybroker explain ERR_UNSAFE_OWNER)',
  },
  {
    name: 'permissions: approle secret id file missing',
    setup: (c) =>
      writeProfile(c, kv(c, { auth: { method: 'approle', roleId: 'r-1', secretIdFile: '~/secret-id' } })),
    env: () => ({ VAULT_ADDR: vault.url }),
    exit: 2,
    line: 'keybroker: vault: cannot read secret id file $SB/home/secret-id (ENOENT) (check the path and its permissions; run keybroker explain ERR_VAULT_CREDENTIAL_FILE)',
  },
  {
    name: 'permissions: approle secret id file 0644',
    setup: (c) => {
      writeProfile(c, kv(c, { auth: { method: 'approle', roleId: 'r-1', secretIdFile: '~/secret-id' } }));
      fs.writeFileSync(`${c.sb.home}/secret-id`, 'sid-world-readable\n', { mode: 0o644 });
    },
    env: () => ({ VAULT_ADDR: vault.url }),
    exit: 6,
    line: "keybroker: vault: secret id file $SB/home/secret-id: permissions 0644 are too open (run chmod 600 '$SB/home/secret-id'; run keybroker explain ERR_UNSAFE_PERMISSIONS)",
  },
  {
    name: 'permissions: ~/.vault-token readable by the group',
    setup: (c) => {
      writeProfile(c, kv(c));
      fs.writeFileSync(`${c.sb.home}/.vault-token`, 'hvs.group-readable\n', { mode: 0o640 });
    },
    env: () => ({ VAULT_ADDR: vault.url }),
    exit: 6,
    line: "keybroker: vault: token file $SB/home/.vault-token: permissions 0640 are too open (run chmod 600 '$SB/home/.vault-token'; run keybroker explain ERR_UNSAFE_PERMISSIONS)",
  },
  {
    name: 'environment: keychain source with no session bus',
    setup: (c) => writeProfile(c, { type: 'keychain', service: 'kb-failure-table', account: 'llm' }),
    env: (c) => ({ DBUS_SESSION_BUS_ADDRESS: `unix:path=${c.sb.dir}/no-bus` }),
    exit: 3,
    line: 'keybroker: keychain (Secret Service): session bus at $SB/no-bus: ENOENT (start a Secret Service in your session (gnome-keyring-daemon, KWallet or KeePassXC) and unlock it, or set cache.storage to "file" or "none"; run keybroker explain ERR_KEYCHAIN_UNAVAILABLE)',
  },
  // ---- upstream answers: Vault
  {
    name: 'vault: 403 permission denied',
    setup: (c) => {
      writeProfile(c, kv(c));
      vaultFault(c, { kind: 'status', status: 403 });
    },
    env: vaultEnv,
    exit: 4,
    line: 'keybroker: vault kv secret/$KV field token: permission denied (HTTP 403) (the token (token from VAULT_TOKEN) may have expired, or its policy lacks read on secret/data/$KV; run keybroker explain ERR_VAULT_DENIED)',
  },
  {
    name: 'vault: 404 no such secret',
    setup: (c) => writeProfile(c, kv(c, { path: `secret/${c.kvKey}-missing` })),
    env: vaultEnv,
    exit: 5,
    line: 'keybroker: vault kv secret/$KV-missing field token: not found at secret/data/$KV-missing (HTTP 404) (check the path (and namespace); run keybroker explain ERR_VAULT_NOT_FOUND)',
  },
  {
    name: 'vault: the secret has no such field',
    setup: (c) => writeProfile(c, kv(c, { field: 'apiKey' })),
    env: vaultEnv,
    exit: 5,
    line: 'keybroker: vault kv secret/$KV field apiKey: the secret has no field apiKey (check the field name (vault kv get secret/$KV lists them); run keybroker explain ERR_VAULT_FIELD_MISSING)',
  },
  {
    name: 'vault: the field is empty',
    setup: async (c) => {
      await admin.putKv('secret', 2, c.kvKey, { token: '' });
      writeProfile(c, kv(c));
    },
    env: vaultEnv,
    exit: 5,
    line: 'keybroker: vault kv secret/$KV field token: the value is empty (write the token into the field; run keybroker explain ERR_VAULT_FIELD_EMPTY)',
  },
  {
    name: 'vault: the field is not a string',
    setup: async (c) => {
      await admin.putKv('secret', 2, c.kvKey, { token: 42 });
      writeProfile(c, kv(c));
    },
    env: vaultEnv,
    exit: 5,
    line: 'keybroker: vault kv secret/$KV field token: the value is a number, not a string (store the token as a string; run keybroker explain ERR_VAULT_FIELD_NOT_STRING)',
  },
  {
    name: 'vault: the value holds whitespace',
    setup: async (c) => {
      await admin.putKv('secret', 2, c.kvKey, { token: 'sk-ant two words' });
      writeProfile(c, kv(c));
    },
    env: vaultEnv,
    exit: 5,
    line: 'keybroker: vault source of profile default: the value holds whitespace or characters that are not printable ASCII (Claude Code accepts one printable-ASCII token; check what is stored at the source; run keybroker explain ERR_TOKEN_INVALID)',
  },
  {
    name: 'vault: 500',
    setup: (c) => {
      writeProfile(c, kv(c));
      vaultFault(c, { kind: 'status', status: 500 });
    },
    env: vaultEnv,
    exit: 3,
    line: 'keybroker: vault kv secret/$KV field token: Vault answered HTTP 500 (retry later, and check that VAULT_ADDR points at a healthy Vault node; run keybroker explain ERR_VAULT_SERVER_ERROR)',
  },
  {
    name: 'vault: 503 sealed',
    setup: (c) => {
      writeProfile(c, kv(c));
      vaultFault(c, { kind: 'sealed' });
    },
    env: vaultEnv,
    exit: 3,
    line: 'keybroker: vault at $VAULT: Vault is sealed (ask the Vault operators to unseal it, or point VAULT_ADDR at an unsealed node; run keybroker explain ERR_VAULT_SEALED)',
  },
  {
    name: 'vault: an HTML login page',
    setup: (c) => {
      writeProfile(c, kv(c));
      vaultFault(c, { kind: 'html' });
    },
    env: vaultEnv,
    exit: 3,
    line: 'keybroker: vault kv secret/$KV field token: the answer holds no data (check that VAULT_ADDR points at Vault itself and not at a proxy or login page; run keybroker explain ERR_VAULT_BAD_RESPONSE)',
  },
  {
    name: 'vault: truncated JSON',
    setup: (c) => {
      writeProfile(c, kv(c));
      vaultFault(c, { kind: 'truncated' });
    },
    env: vaultEnv,
    exit: 3,
    line: 'keybroker: vault kv secret/$KV field token: the answer holds no data (check that VAULT_ADDR points at Vault itself and not at a proxy or login page; run keybroker explain ERR_VAULT_BAD_RESPONSE)',
  },
  {
    name: 'vault: connection reset mid-answer',
    setup: (c) => {
      writeProfile(c, kv(c));
      vaultFault(c, { kind: 'reset' });
    },
    env: vaultEnv,
    exit: 3,
    line: "keybroker: vault at $VAULT: connection closed before a complete answer (check VAULT_ADDR (or the profile's address) and that Vault is running and reachable; run keybroker explain ERR_VAULT_UNREACHABLE)",
  },
  {
    name: 'vault: no answer before timeoutMs',
    setup: (c) => {
      writeProfile(c, kv(c), { timeoutMs: 1500 });
      vaultFault(c, { kind: 'hang' });
    },
    env: vaultEnv,
    exit: 3,
    line: "keybroker: vault at $VAULT: no answer before the deadline (check VAULT_ADDR and the network, or raise the profile's timeoutMs; run keybroker explain ERR_VAULT_TIMEOUT)",
  },
  {
    name: 'vault: connection refused',
    setup: (c) => writeProfile(c, kv(c, { address: `http://127.0.0.1:${refusedPort}` })),
    env: vaultEnv,
    exit: 3,
    line: "keybroker: vault at http://$REFUSED: connection refused (check VAULT_ADDR (or the profile's address) and that Vault is running and reachable; run keybroker explain ERR_VAULT_UNREACHABLE)",
  },
  {
    name: 'vault: inside the backoff window with nothing cached',
    mask: /(?<=not asking it again before )\S+/,
    setup: async (c) => {
      writeProfile(c, kv(c));
      vaultFault(c, { kind: 'status', status: 503 });
      const first = await runKeybroker([], c.sb, { env: vaultEnv() });
      if (first.code !== 3) throw new Error(`the first run should have met the 503: ${first.stderr}`);
    },
    env: vaultEnv,
    exit: 3,
    line: 'keybroker: the vault source failed on its last attempt: not asking it again before <n> (wait until then, or run keybroker --refresh to ask at once; run keybroker explain ERR_SOURCE_BACKOFF)',
  },
  {
    name: 'vault-identity: no such role',
    setup: (c) => writeProfile(c, { type: 'vault-identity', role: `nope-${c.kvKey}` }),
    env: vaultEnv,
    exit: 5,
    line: 'keybroker: vault identity token for role nope-$KV: no such role (HTTP 400) (create it with vault write identity/oidc/role/<role> key=<key>; run keybroker explain ERR_VAULT_NOT_FOUND)',
  },
  // ---- upstream answers: Secrets Manager
  {
    name: 'aws: no such secret',
    setup: (c) => writeProfile(c, sm(c, { secretId: `${c.secretName}-missing` })),
    env: awsEnv,
    exit: 5,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET-missing" in us-east-1: not found (check secretId and region; run keybroker explain ERR_AWS_SECRET_NOT_FOUND)',
  },
  {
    name: 'aws: access denied',
    setup: (c) => {
      aws.secret(c.secretName).deniedKeys.add(DEFAULT_CREDENTIALS.accessKeyId);
      writeProfile(c, sm(c));
    },
    env: awsEnv,
    exit: 4,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: access denied (allow secretsmanager:GetSecretValue on this secret (and kms:Decrypt on its KMS key) for the identity of the access key in AWS_ACCESS_KEY_ID; run keybroker explain ERR_AWS_DENIED)',
  },
  {
    name: 'aws: KMS cannot decrypt',
    setup: (c) => {
      aws.secret(c.secretName).kmsBroken = true;
      writeProfile(c, sm(c));
    },
    env: awsEnv,
    exit: 4,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: Secrets Manager could not decrypt the secret with its KMS key (allow kms:Decrypt on the secret\'s KMS key for the identity of the access key in AWS_ACCESS_KEY_ID; run keybroker explain ERR_AWS_KMS_DENIED)',
  },
  {
    name: 'aws: secret scheduled for deletion',
    setup: (c) => {
      aws.secret(c.secretName).deleted = true;
      writeProfile(c, sm(c));
    },
    env: awsEnv,
    exit: 5,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: the secret cannot be read (scheduled for deletion or otherwise unavailable) (restore the secret (aws secretsmanager restore-secret) or point secretId at another one; run keybroker explain ERR_AWS_SECRET_UNAVAILABLE)',
  },
  {
    name: 'aws: jsonKey on a secret that is not JSON',
    setup: (c) => writeProfile(c, sm(c, { jsonKey: 'apiKey' })),
    env: awsEnv,
    exit: 5,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: SecretString is not a JSON object, so jsonKey "apiKey" cannot be read (set jsonKey to a key of the secret\'s JSON whose value is the token as a string, or remove jsonKey; run keybroker explain ERR_AWS_JSON_KEY)',
  },
  {
    name: 'aws: the secret is an empty string',
    setup: (c) => {
      aws.putSecret(c.secretName, '   ');
      writeProfile(c, sm(c));
    },
    env: awsEnv,
    exit: 5,
    line: 'keybroker: aws-secrets-manager source of profile default: the value is empty (store a non-empty token at the source; run keybroker explain ERR_TOKEN_EMPTY)',
  },
  {
    name: 'aws: throttled after retries',
    awsFault: 'throttle',
    setup: (c) => writeProfile(c, sm(c)),
    env: awsEnv,
    exit: 3,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: throttled by Secrets Manager after retries (try again shortly; many callers share this account\'s GetSecretValue quota; run keybroker explain ERR_AWS_THROTTLED)',
  },
  {
    name: 'aws: 503 after retries',
    awsFault: '503',
    setup: (c) => writeProfile(c, sm(c)),
    env: awsEnv,
    exit: 3,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: Secrets Manager failed (HTTP 503, ServiceUnavailable) (try again shortly; see the AWS Health Dashboard; run keybroker explain ERR_AWS_UNAVAILABLE)',
  },
  {
    name: 'aws: garbage answer',
    awsFault: 'garbage',
    setup: (c) => writeProfile(c, sm(c)),
    env: awsEnv,
    exit: 3,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: the answer was not a Secrets Manager response (HTTP 200) (check the endpoint setting and any proxy in between; run keybroker explain ERR_AWS_BAD_RESPONSE)',
  },
  {
    name: 'aws: no answer before timeoutMs',
    awsFault: 'hang',
    mask: /(?<=no answer within )\d+(?= ms)/,
    setup: (c) => writeProfile(c, sm(c), { timeoutMs: 1500 }),
    env: awsEnv,
    exit: 3,
    line: 'keybroker: AWS Secrets Manager secret "$SECRET" in us-east-1: no answer within <n> ms (timeoutMs) (check the network path to Secrets Manager (VPN, proxy, VPC endpoint) or raise the profile\'s timeoutMs; run keybroker explain ERR_AWS_TIMEOUT)',
  },
];

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  vault = await startVaultServer();
  admin = vaultAdmin(vault.url, vault.rootToken);
  aws = await startSecretsManagerServer({ region: 'us-east-1' });
  // A port nobody listens on: bind, note it, close.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  refusedPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
});
afterAll(async () => {
  vault.faults = [];
  await vault?.close();
  await aws?.close();
});

interface Outcome {
  row: Row;
  result: RunResult;
  line: string;
}

async function runRow(row: Row): Promise<Outcome> {
  const n = ++rowCount;
  const sb = makeSandbox();
  try {
    const c: RowContext = { sb, keyFile: writeJwtKey(sb), kvKey: `ft-${n}`, secretName: `ft/secret-${n}` };
    await admin.putKv('secret', 2, c.kvKey, { token: TOKEN });
    aws.putSecret(c.secretName, TOKEN);
    if (row.awsFault) {
      c.ownAws = await startSecretsManagerServer({ region: 'us-east-1' });
      c.ownAws.putSecret(c.secretName, TOKEN);
      c.ownAws.setFault(row.awsFault, 1000);
    }
    try {
      sb.writeConfig(jwtConfig(c.keyFile));
      await row.setup?.(c);
      const args = (row.args ?? []).map((a) => a.replace('$SB', sb.dir));
      const result = await runKeybroker(args, sb, { env: row.env?.(c) ?? {} });
      // Longest first: the entry path and server URLs hold the sandbox path or the row's names.
      const names: [string, string][] = [
        ['$ENTRY', c.entryFile ? path.basename(c.entryFile) : '\0'],
        ['$SB', sb.dir],
        ['$VAULT', vault.url],
        ['$AWS', (c.ownAws ?? aws).url],
        ['$REFUSED', `127.0.0.1:${refusedPort}`],
        ['$SECRET', c.secretName],
        ['$KV', c.kvKey],
      ];
      let line = result.stderr;
      for (const [k, v] of names) line = line.split(v).join(k);
      if (row.mask) line = line.replace(row.mask, '<n>');
      return { row, result, line };
    } finally {
      await c.ownAws?.close();
    }
  } finally {
    // Files chowned to another user or made unreadable are still removable by their owner dir.
    sb.cleanup();
  }
}

/** The rows this run can set up: the wrong-owner rows need root. */
const RUNNABLE = ROWS.filter((r) => !r.needsRoot || IS_ROOT);

describe('the failure table', () => {
  it(`has at least 40 rows this run can check (${RUNNABLE.length} of ${ROWS.length})`, () => {
    expect(RUNNABLE.length).toBeGreaterThanOrEqual(40);
    expect(new Set(ROWS.map((r) => r.name)).size).toBe(ROWS.length);
  });

  const outcomes = new Map<string, Promise<Outcome>>();
  /** Rows start in batches of BATCH as the table is walked; each test awaits its own row. */
  const start = () => {
    let chain = Promise.resolve();
    for (let i = 0; i < RUNNABLE.length; i += BATCH) {
      const batch = RUNNABLE.slice(i, i + BATCH);
      const ready = chain.then(() =>
        Promise.all(batch.map((r) => runRow(r).catch((e) => ({ row: r, error: e })))),
      );
      for (const r of batch) {
        outcomes.set(
          r.name,
          ready.then((all) => {
            const o = all.find((x) => x.row === r)!;
            if ('error' in o) throw o.error;
            return o as Outcome;
          }),
        );
      }
      chain = ready.then(() => undefined);
    }
  };

  const check = async (row: Row) => {
    if (outcomes.size === 0) start();
    const o = await outcomes.get(row.name)!;
    if (process.env.FAILURE_TABLE_CAPTURE) {
      fs.appendFileSync(
        process.env.FAILURE_TABLE_CAPTURE,
        `${JSON.stringify({ name: row.name, code: o.result.code, stdout: o.result.stdout, line: o.line })}\n`,
      );
      return;
    }
    if (row.stdout) expect(o.result.stdout).toMatch(row.stdout);
    else expect(o.result.stdout).toBe('');
    expect(o.line).not.toMatch(/\n {4}at |Error: |\bstack\b/);
    expect(o.line).toBe(`${row.line}\n`);
    expect(o.result.code).toBe(row.exit);
  };

  const rows = (needsRoot: boolean) =>
    ROWS.filter((r) => Boolean(r.needsRoot) === needsRoot).map((r) => [r.name, r] as const);
  it.each(rows(false))('%s', { timeout: 300_000 }, (_name, row) => check(row));
  // Files owned by another user can only be made by root (uid 0 is in these lines too).
  it.skipIf(!IS_ROOT).each(rows(true))('%s (as root)', { timeout: 300_000 }, (_name, row) => check(row));
});
