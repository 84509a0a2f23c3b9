/**
 * What the `vault` and `vault-identity` sources share: the connection (address, namespace,
 * CA, TLS verification), authentication (token, approle, kubernetes, jwt) with the login
 * token kept in the source memo, request deadlines, and the mapping of every failure to a
 * typed error. Vault itself is reached only through vault-adapter.ts (node-vault and every
 * workaround it needs), loaded only when a request is about to be made.
 *
 * Nothing here puts a response body or a secret in an error message: Vault's own error text
 * is only inspected (to tell "sealed" from another 503) and the status code is what we show.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { VaultAuthConfig, VaultConnectionConfig } from '../config/types.js';
import { isKeybrokerError, type KeybrokerError } from '../errors.js';
import { createNetClient, type NetClient } from '../net/client.js';
import { deadlineAt } from '../platform/deadline.js';
import { assertPrivateFile } from '../platform/safe-fs.js';
import { isObject } from '../platform/text.js';
import { sourceError } from './failure.js';
import type { SourceDeps, TokenRequest } from './types.js';
import { openVaultAdapter, type VaultAdapter, type VaultRequestOptions } from './vault-adapter.js';

export const DEFAULT_KUBERNETES_JWT_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
const DEFAULT_MOUNTS = { approle: 'approle', kubernetes: 'kubernetes', jwt: 'jwt', cert: 'cert' } as const;

/** A login token is used again until this close to its expiry (a quarter of short leases). */
export const LOGIN_RENEW_MARGIN_MS = 60_000;

/** What a request is about, so that an error can say what failed and what to do. */
export interface VaultOperation {
  kind: 'login' | 'preflight' | 'read' | 'identity';
  /** e.g. `vault kv secret/llm field token`; starts the error message. */
  what: string;
  /** The Vault API path (for policy hints), e.g. `secret/data/llm`. */
  apiPath: string;
}

/** One authenticated connection for one getToken call. */
export interface VaultSession {
  /** GET an API path with the current token; errors are already typed. */
  read(apiPath: string, op: VaultOperation): Promise<unknown>;
  /** Where the token came from, for hints: `VAULT_TOKEN`, `~/.vault-token`, `approle login (role id ...)`. */
  readonly authOrigin: string;
}

export { isObject };

/** The address, checked: exit 2 naming VAULT_ADDR when it is missing or not an http(s) URL. */
export function vaultAddress(config: VaultConnectionConfig): string {
  const address = config.address?.trim();
  if (!address) {
    throw sourceError(
      'config',
      'ERR_VAULT_NO_ADDRESS',
      'vault: no Vault address configured',
      "set VAULT_ADDR or the profile's source.address, e.g. https://vault.example.com:8200",
    );
  }
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    url = new URL('invalid:');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw sourceError(
      'config',
      'ERR_VAULT_BAD_ADDRESS',
      `vault: address ${address} is not an http(s) URL`,
      'set VAULT_ADDR or source.address to a URL such as https://vault.example.com:8200',
    );
  }
  return address.replace(/\/+$/, '');
}

/** `vault at https://vault:8200 (namespace team-a)` — how errors name the server. */
export function vaultAt(config: VaultConnectionConfig): string {
  const ns = config.namespace ? ` (namespace ${config.namespace})` : '';
  return `vault at ${config.address ?? '(no address)'}${ns}`;
}

/** The memo key: a short, stable, non-secret hash naming a memo (the memo is per profile already). */
export function memoKey(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

// ---------------------------------------------------------------------------------------------
// Error mapping

const TLS_CODES =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ERR_SSL|EPROTO|HOSTNAME_MISMATCH|ALTNAME/;

function statusOf(e: unknown): number | undefined {
  if (!isObject(e) || !isObject(e.response)) return undefined;
  const s = e.response.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The Retry-After (seconds) our transport found on the response that failed, if any. */
function retryAfterOf(e: unknown): number | undefined {
  if (!isObject(e) || !isObject(e.response)) return undefined;
  const s = e.response.retryAfterSec;
  return typeof s === 'number' ? s : undefined;
}

function vaultErrorsOf(e: unknown): string[] {
  if (!isObject(e) || !isObject(e.response) || !isObject(e.response.body)) return [];
  const errors = e.response.body.errors;
  return Array.isArray(errors) ? errors.filter((x): x is string => typeof x === 'string') : [];
}

export function timeoutError(config: VaultConnectionConfig, cause?: unknown): KeybrokerError {
  return sourceError(
    'unreachable',
    'ERR_VAULT_TIMEOUT',
    `${vaultAt(config)}: no answer before the deadline`,
    "check VAULT_ADDR and the network, or raise the profile's timeoutMs",
    { cause },
  );
}

export function badResponseError(op: VaultOperation, why: string): KeybrokerError {
  return sourceError(
    'unreachable',
    'ERR_VAULT_BAD_RESPONSE',
    `${op.what}: ${why}`,
    'check that VAULT_ADDR points at Vault itself and not at a proxy or login page',
  );
}

/** Turns whatever node-vault or axios threw into a typed error (or rethrows a bug). */
export function mapVaultError(
  e: unknown,
  op: VaultOperation,
  config: VaultConnectionConfig,
  authOrigin: string,
  net?: Pick<NetClient, 'explain'>,
): KeybrokerError {
  if (isKeybrokerError(e)) return e;
  const fromNet = net && config.address ? net.explain(e, config.address) : undefined;
  if (fromNet) return fromNet;
  const status = statusOf(e);
  if (status !== undefined) {
    return mapStatus(status, vaultErrorsOf(e), op, config, authOrigin, e, retryAfterOf(e));
  }
  const code = isObject(e) && typeof e.code === 'string' ? e.code : undefined;
  const message = e instanceof Error ? e.message : '';
  if (
    code === 'ECONNABORTED' ||
    code === 'ETIMEDOUT' ||
    code === 'ERR_CANCELED' ||
    /timeout/i.test(message)
  ) {
    return timeoutError(config, e);
  }
  if (code && TLS_CODES.test(code)) {
    return sourceError(
      'unreachable',
      'ERR_VAULT_TLS',
      `${vaultAt(config)}: TLS failed (${code})`,
      "set the profile's caCert or VAULT_CACERT to the CA that signed Vault's certificate, and check VAULT_ADDR's host name and scheme",
      { cause: e },
    );
  }
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host name not found'
        : code === 'ECONNRESET' ||
            code === 'EPIPE' ||
            code === 'ERR_BAD_RESPONSE' ||
            /socket hang up|aborted/.test(message)
          ? 'connection closed before a complete answer'
          : code
            ? `network error (${code})`
            : undefined;
  if (why !== undefined || (isObject(e) && e.isAxiosError === true)) {
    return sourceError(
      'unreachable',
      'ERR_VAULT_UNREACHABLE',
      `${vaultAt(config)}: ${why ?? 'network error'}`,
      "check VAULT_ADDR (or the profile's address) and that Vault is running and reachable",
      { cause: e },
    );
  }
  throw e;
}

function mapStatus(
  status: number,
  errors: string[],
  op: VaultOperation,
  config: VaultConnectionConfig,
  authOrigin: string,
  cause: unknown,
  retryAfterSec: number | undefined,
): KeybrokerError {
  const wait = retryAfterSec !== undefined ? { retryAfterSec } : {};
  if (status === 503 && errors.some((m) => /sealed/i.test(m))) {
    return sourceError(
      'unreachable',
      'ERR_VAULT_SEALED',
      `${vaultAt(config)}: Vault is sealed`,
      'ask the Vault operators to unseal it, or point VAULT_ADDR at an unsealed node',
      { cause, ...wait },
    );
  }
  if (status === 429) {
    const after = retryAfterSec !== undefined ? `, Retry-After ${retryAfterSec} s` : '';
    return sourceError(
      'unreachable',
      'ERR_VAULT_RATE_LIMITED',
      `${op.what}: Vault's rate limit refused the request (HTTP 429${after})`,
      `keybroker waits before asking again; if it persists, ask the Vault operators about the rate limit quota on ${op.apiPath}`,
      { cause, ...wait },
    );
  }
  if (status >= 500 || status === 412) {
    return sourceError(
      'unreachable',
      'ERR_VAULT_SERVER_ERROR',
      `${op.what}: Vault answered HTTP ${status}`,
      'retry later, and check that VAULT_ADDR points at a healthy Vault node',
      { cause, ...wait },
    );
  }
  if (op.kind === 'login' && status >= 400 && status < 500) {
    return sourceError(
      'denied',
      'ERR_VAULT_LOGIN_FAILED',
      `${op.what}: login refused (HTTP ${status})`,
      `check the role and the credential (${authOrigin})`,
      { cause },
    );
  }
  if (status === 404) {
    return sourceError(
      'missing',
      'ERR_VAULT_NOT_FOUND',
      `${op.what}: not found at ${op.apiPath} (HTTP 404)`,
      'check the path (and namespace)',
      { cause },
    );
  }
  if (op.kind === 'identity' && status === 400) {
    if (errors.some((m) => /not found|no role/i.test(m))) {
      return sourceError(
        'missing',
        'ERR_VAULT_NOT_FOUND',
        `${op.what}: no such role (HTTP 400)`,
        'create it with vault write identity/oidc/role/<role> key=<key>',
        { cause },
      );
    }
    return sourceError(
      'denied',
      'ERR_VAULT_IDENTITY_REFUSED',
      `${op.what}: Vault refused to mint the token (HTTP 400)`,
      "log in with an auth method that has an identity entity (a root token has none), and allow the role's client_id on its key",
      { cause },
    );
  }
  const why = status === 401 || status === 403 ? 'permission denied' : 'request refused';
  return sourceError(
    'denied',
    'ERR_VAULT_DENIED',
    `${op.what}: ${why} (HTTP ${status})`,
    `the token (${authOrigin}) may have expired, or its policy lacks read on ${op.apiPath}`,
    { cause },
  );
}

// ---------------------------------------------------------------------------------------------
// Credentials read from files and the environment

/**
 * Reads a credential file. A Vault token, an approle secret id or a cert key is checked as ssh checks a
 * private key (yours, no group or other bits: exit 6 otherwise), since anyone who can read it
 * can act as you; a Kubernetes or CI JWT file is not (the kubelet mounts them 0644).
 */
function readCredentialBytes(file: string, what: string, mustBePrivate: boolean): Buffer {
  try {
    if (mustBePrivate) assertPrivateFile(file, fs.statSync(file), `vault: ${what}`);
    return fs.readFileSync(file);
  } catch (e) {
    if (isKeybrokerError(e)) throw e;
    const code = isObject(e) && typeof e.code === 'string' ? e.code : 'error';
    throw sourceError(
      'config',
      'ERR_VAULT_CREDENTIAL_FILE',
      `vault: cannot read ${what} ${file} (${code})`,
      'check the path and its permissions',
    );
  }
}

/** A credential file's text (a token, a secret id, a JWT): exit 2 when it is empty. */
function readCredentialFile(file: string, what: string, deps: SourceDeps, mustBePrivate: boolean): string {
  const text = readCredentialBytes(file, what, mustBePrivate).toString('utf8').trim();
  if (!text) {
    throw sourceError(
      'config',
      'ERR_VAULT_CREDENTIAL_FILE',
      `vault: ${what} ${file} is empty`,
      'write the credential into it',
    );
  }
  deps.logger.addSecret(text);
  return text;
}

interface StaticToken {
  token: string;
  origin: string;
}

/** `token` auth: VAULT_TOKEN, else ~/.vault-token, else auth.tokenFile (contract §3). */
function staticToken(auth: { tokenFile?: string }, deps: SourceDeps): StaticToken {
  const fromEnv = deps.env.VAULT_TOKEN?.trim();
  if (fromEnv) {
    deps.logger.addSecret(fromEnv);
    return { token: fromEnv, origin: 'token from VAULT_TOKEN' };
  }
  const homeFile = path.join(deps.homeDir, '.vault-token');
  if (fs.existsSync(homeFile)) {
    return {
      token: readCredentialFile(homeFile, 'token file', deps, true),
      origin: 'token from ~/.vault-token',
    };
  }
  if (auth.tokenFile) {
    return {
      token: readCredentialFile(auth.tokenFile, 'token file', deps, true),
      origin: `token from ${auth.tokenFile}`,
    };
  }
  throw sourceError(
    'denied',
    'ERR_VAULT_NO_TOKEN',
    'vault: no Vault token found',
    'run vault login, set VAULT_TOKEN, or set source.auth.tokenFile',
  );
}

function loginOrigin(auth: Exclude<VaultAuthConfig, { method: 'token' }>): string {
  const mount = auth.mount ?? DEFAULT_MOUNTS[auth.method];
  if (auth.method === 'approle') {
    const cred = auth.secretIdFile
      ? `secret id from ${auth.secretIdFile}`
      : auth.secretIdEnv
        ? `secret id from ${auth.secretIdEnv}`
        : 'no secret id';
    return `approle login at auth/${mount}, ${cred}`;
  }
  if (auth.method === 'cert') {
    return `cert login at auth/${mount}${auth.name ? ` as ${auth.name}` : ''}, certificate ${auth.certFile}`;
  }
  const file = auth.jwtFile ?? DEFAULT_KUBERNETES_JWT_FILE;
  return `${auth.method} login at auth/${mount} as role ${auth.role}, jwt from ${file}`;
}

// ---------------------------------------------------------------------------------------------
// The session

export interface OpenOptions {
  config: VaultConnectionConfig;
  deps: SourceDeps;
  request: TokenRequest;
}

function loadCaCert(config: VaultConnectionConfig): Buffer | undefined {
  if (!config.caCert) return undefined;
  try {
    return fs.readFileSync(config.caCert);
  } catch (e) {
    const code = isObject(e) && typeof e.code === 'string' ? e.code : 'error';
    throw sourceError(
      'config',
      'ERR_VAULT_CA_CERT',
      `vault: cannot read the CA certificate ${config.caCert} (${code})`,
      "fix the profile's caCert or VAULT_CACERT",
    );
  }
}

/**
 * `cert` auth's device certificate and key. The key is checked as ssh checks a private key
 * (yours, no group or other bits: exit 6); the certificate is public.
 */
function loadClientCert(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  return {
    cert: readCredentialBytes(certFile, 'certificate file', false),
    key: readCredentialBytes(keyFile, 'key file', true),
  };
}

/** The network client for a Vault connection: trust store, caCert, verification, proxy. */
export function vaultNetClient(config: VaultConnectionConfig, deps: SourceDeps): NetClient {
  const ca = loadCaCert(config);
  const auth = config.auth;
  const clientCert = auth?.method === 'cert' ? loadClientCert(auth.certFile, auth.keyFile) : undefined;
  return createNetClient({
    ...(clientCert ? { clientCert } : {}),
    env: deps.env,
    proxy: deps.proxy ?? 'env',
    rejectUnauthorized: config.tlsSkipVerify !== true,
    ...(ca && config.caCert ? { caCerts: [{ file: config.caCert, pem: ca }] } : {}),
    debug: (line) => deps.logger.debug(line),
  });
}

interface LoginMemo {
  token: string;
  leaseMs: number;
}

/**
 * Opens a session: loads node-vault, authenticates (a memoized login token when one is still
 * good), and returns `run`, which executes a sequence of reads and, when a memoized login
 * token meets a 403, logs in once more and runs the sequence again.
 */
export async function openVaultSession(options: OpenOptions): Promise<{
  run<T>(work: (session: VaultSession) => Promise<T>): Promise<T>;
}> {
  const { config, deps, request } = options;
  const address = vaultAddress(config);
  const auth: VaultAuthConfig = config.auth ?? { method: 'token' };
  const net = vaultNetClient(config, deps);
  const vault: VaultAdapter = await openVaultAdapter({
    address,
    namespace: config.namespace,
    net,
    now: request.now,
  });

  // One deadline for the session's requests: each is given the time left as axios's timeout,
  // and the run's signal (or the deadline itself) ends a request axios does not.
  const deadline = deadlineAt(request.deadlineMs, { now: request.now, signal: request.signal });
  const withDeadline = async <T>(start: (requestOptions: VaultRequestOptions) => Promise<T>): Promise<T> => {
    const remainingMs = Math.floor(deadline.remainingMs());
    if (remainingMs <= 0 || deadline.signal.aborted) throw timeoutError(config);
    return deadline.race(start({ timeout: remainingMs }), () => timeoutError(config));
  };

  const loginMemoName =
    auth.method === 'token' ? '' : `vault-login:${memoKey([address, config.namespace ?? '', auth])}`;

  const login = async (): Promise<{ token: string; origin: string }> => {
    if (auth.method === 'token') throw new Error('unreachable: token auth does not log in');
    const origin = loginOrigin(auth);
    const mount = (auth.mount ?? DEFAULT_MOUNTS[auth.method]).replace(/^\/+|\/+$/g, '');
    const op: VaultOperation = {
      kind: 'login',
      what: `vault ${auth.method} login`,
      apiPath: `auth/${mount}/login`,
    };
    let data: Record<string, unknown>;
    if (auth.method === 'approle') {
      data = { role_id: auth.roleId };
      if (auth.secretIdFile)
        data.secret_id = readCredentialFile(auth.secretIdFile, 'secret id file', deps, true);
      else if (auth.secretIdEnv) {
        const v = deps.env[auth.secretIdEnv]?.trim();
        if (!v) {
          throw sourceError(
            'config',
            'ERR_VAULT_CREDENTIAL_ENV',
            `vault: ${auth.secretIdEnv} is not set`,
            `export ${auth.secretIdEnv} with the approle secret id, or use secretIdFile`,
          );
        }
        deps.logger.addSecret(v);
        data.secret_id = v;
      }
    } else if (auth.method === 'cert') {
      // The credential is the TLS client certificate the network client presents.
      data = auth.name ? { name: auth.name } : {};
    } else {
      const jwtFile = auth.jwtFile ?? DEFAULT_KUBERNETES_JWT_FILE;
      data = { role: auth.role, jwt: readCredentialFile(jwtFile, 'jwt file', deps, false) };
    }
    vault.setToken(undefined);
    deps.logger.debug(`vault: ${origin}`);
    let body: unknown;
    try {
      body = await withDeadline((requestOptions) => vault.login(auth.method, mount, data, requestOptions));
    } catch (e) {
      throw mapVaultError(e, op, config, origin, net);
    }
    const authBlock = isObject(body) && isObject(body.auth) ? body.auth : undefined;
    const token = authBlock?.client_token;
    if (typeof token !== 'string' || !token) throw badResponseError(op, 'the answer holds no client token');
    deps.logger.addSecret(token);
    const leaseSec = typeof authBlock?.lease_duration === 'number' ? authBlock.lease_duration : 0;
    const leaseMs = Math.max(0, leaseSec) * 1000;
    const memo: LoginMemo = { token, leaseMs };
    await deps.memo.set(
      loginMemoName,
      JSON.stringify(memo),
      leaseMs > 0 ? request.now() + leaseMs : undefined,
    );
    return { token, origin };
  };

  const memoizedLogin = async (): Promise<{ token: string; origin: string } | undefined> => {
    if (request.forceFresh || auth.method === 'token') return undefined;
    const entry = await deps.memo.get(loginMemoName);
    if (!entry) return undefined;
    let memo: LoginMemo | undefined;
    try {
      const parsed = JSON.parse(entry.value) as unknown;
      if (isObject(parsed) && typeof parsed.token === 'string' && typeof parsed.leaseMs === 'number')
        memo = { token: parsed.token, leaseMs: parsed.leaseMs };
    } catch {
      memo = undefined;
    }
    if (!memo) {
      await deps.memo.delete(loginMemoName);
      return undefined;
    }
    if (entry.expiresAtMs !== undefined) {
      const margin = Math.min(LOGIN_RENEW_MARGIN_MS, memo.leaseMs / 4);
      const remaining = entry.expiresAtMs - request.now();
      if (remaining <= margin || remaining <= deadline.remainingMs()) return undefined;
    }
    deps.logger.addSecret(memo.token);
    deps.logger.debug('vault: using the login token kept from an earlier run');
    return { token: memo.token, origin: `${loginOrigin(auth)} (kept token)` };
  };

  const makeSession = (origin: string): VaultSession => ({
    authOrigin: origin,
    async read(apiPath, op) {
      try {
        return await withDeadline((requestOptions) => vault.read(apiPath, requestOptions));
      } catch (e) {
        throw mapVaultError(e, op, config, origin, net);
      }
    },
  });

  const authenticatedRun = async <T>(work: (session: VaultSession) => Promise<T>): Promise<T> => {
    if (auth.method === 'token') {
      const st = staticToken(auth, deps);
      vault.setToken(st.token);
      return work(makeSession(st.origin));
    }
    const kept = await memoizedLogin();
    if (kept) {
      vault.setToken(kept.token);
      try {
        return await work(makeSession(kept.origin));
      } catch (e) {
        if (!(isKeybrokerError(e) && e.code === 'ERR_VAULT_DENIED')) throw e;
        deps.logger.debug('vault: the kept login token was refused; logging in again');
        await deps.memo.delete(loginMemoName);
      }
    }
    const fresh = await login();
    vault.setToken(fresh.token);
    return work(makeSession(fresh.origin));
  };

  return {
    async run(work) {
      try {
        return await authenticatedRun(work);
      } finally {
        deadline.clear();
      }
    },
  };
}

/** Vault's KV and identity answers put their payload under `data`. */
export function dataOf(body: unknown): Record<string, unknown> | undefined {
  return isObject(body) && isObject(body.data) ? body.data : undefined;
}
