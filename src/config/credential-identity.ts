/**
 * The identity of the credential a source will use, for the cache key (contract §2): switching
 * VAULT_TOKEN or AWS credentials must never serve what another identity fetched. What the
 * resolved config already names (an AppRole role id, a secret-id file, an AWS profile, a
 * keychain account) is in the key through the source itself; this adds what comes from outside
 * it: a Vault token, AWS keys from the environment, a signing key's file or variable.
 *
 * Never the credential itself: a SHA-256 of it, and only 16 hex digits of the key's hash of
 * everything reach a file name. Synchronous, node:fs and the small sha256 only: the first
 * stage computes the cache key on every hit. Never throws: what cannot be read is its own
 * identity, and the source reports the problem when it fetches.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../platform/sha256.js';
import { oidcCredentialIdentity } from '../sources/oidc-login.js';

export interface IdentityContext {
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  /** The resolved cache directory and profile: where `keybroker login` keeps who signed in. */
  cacheDir?: string;
  profile?: string;
}

/** One per source type; undefined when the resolved config names the credential entirely. */
export type CredentialIdentity = (
  source: Record<string, unknown>,
  ctx: IdentityContext,
) => string | undefined;

const digest = (s: string) => sha256Hex(s).slice(0, 32);

/** A file's identity without reading it: replaced or rewritten, it is another credential. */
function fileIdentity(file: string): string {
  try {
    const st = statSync(file);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch (e) {
    return `absent:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

function fileContentIdentity(file: string): string {
  try {
    return digest(readFileSync(file, 'utf8').trim());
  } catch (e) {
    return `unreadable:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

/** Vault `token` auth: VAULT_TOKEN, else ~/.vault-token, else tokenFile (vault-client's order). */
const vaultIdentity: CredentialIdentity = (source, { env, homeDir }) => {
  const auth = source.auth as { method?: string; tokenFile?: string } | undefined;
  if (auth?.method !== undefined && auth.method !== 'token') return undefined; // a login named by the config
  const fromEnv = env.VAULT_TOKEN?.trim();
  if (fromEnv) return `vault-token:${digest(fromEnv)}`;
  const homeFile = join(homeDir, '.vault-token');
  const home = fileContentIdentity(homeFile);
  if (!home.startsWith('unreadable:ENOENT')) return `vault-token-file:${home}`;
  if (auth?.tokenFile) return `vault-token-file:${fileContentIdentity(auth.tokenFile)}`;
  return 'vault-token:none';
};

/** AWS: keys or a role from the environment; a profile is in the resolved source already. */
const awsIdentity: CredentialIdentity = (source, { env }) => {
  if (source.profile !== undefined) return undefined;
  const parts = [
    env.AWS_ACCESS_KEY_ID ? `akid:${digest(env.AWS_ACCESS_KEY_ID)}` : '',
    env.AWS_ROLE_ARN ? `role:${env.AWS_ROLE_ARN}` : '',
    env.AWS_WEB_IDENTITY_TOKEN_FILE ? `web-identity:${env.AWS_WEB_IDENTITY_TOKEN_FILE}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(',') : undefined;
};

/** jwt: another key (rewritten file, another variable value) mints for another signer. */
const jwtIdentity: CredentialIdentity = (source, { env }) => {
  const key = source.signingKey as { file?: string; env?: string } | undefined;
  if (typeof key?.file === 'string') return `key-file:${fileIdentity(key.file)}`;
  if (typeof key?.env === 'string') return `key-env:${digest(env[key.env] ?? '')}`;
  return undefined;
};

/** oidc: the subject (and issuer) of the stored login, from its 0600 identity record. */
const oidcIdentity: CredentialIdentity = (source, { cacheDir, profile }) => {
  if (cacheDir === undefined || profile === undefined) return undefined;
  const config = { issuer: String(source.issuer), clientId: String(source.clientId) };
  return oidcCredentialIdentity(cacheDir, profile, config) || 'oidc:nobody';
};

/**
 * Per source type. A new source adds its entry here (the `oidc` source: the subject of the
 * stored login, read from wherever `keybroker login` keeps it).
 */
const CREDENTIAL_IDENTITY: Record<string, CredentialIdentity> = {
  vault: vaultIdentity,
  'vault-identity': vaultIdentity,
  'aws-secrets-manager': awsIdentity,
  jwt: jwtIdentity,
  oidc: oidcIdentity,
};

export function credentialIdentity(
  source: Record<string, unknown>,
  ctx: IdentityContext,
): string | undefined {
  const type = String(source.type);
  const fn = Object.hasOwn(CREDENTIAL_IDENTITY, type) ? CREDENTIAL_IDENTITY[type] : undefined;
  try {
    return fn?.(source, ctx);
  } catch {
    return 'unknown';
  }
}
