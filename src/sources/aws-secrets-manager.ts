/**
 * `aws-secrets-manager` source: one GetSecretValue through the AWS SDK's default credential
 * chain (environment, shared config and SSO profiles, web identity, container, instance
 * metadata). The SDK costs about 100 ms to load, so it is imported only inside getToken.
 *
 * The config arrives resolved: profile, region and endpoint already carry the AWS_PROFILE,
 * AWS_REGION / AWS_DEFAULT_REGION and AWS_ENDPOINT_URL[_SECRETS_MANAGER] defaults.
 */

import type { AwsSecretsManagerSourceConfig } from '../config/types.js';
import { isKeybrokerError, type KeybrokerError } from '../errors.js';
import { createNetClient } from '../net/client.js';
import { deadlineAt } from '../platform/deadline.js';
import { isObject, isTokenText, MAX_TOKEN_CHARS } from '../platform/text.js';
import { type FailureKind, sourceError } from './failure.js';
import type { FetchedToken, Source, SourceDeps, TokenRequest } from './types.js';

/** The SDK's own per-attempt limits never exceed these, however long the profile's timeoutMs. */
const MAX_CONNECT_MS = 3_000;
const MIN_ATTEMPT_MS = 250;

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'ECONNABORTED',
  'EPROTO',
  'UND_ERR_SOCKET',
]);
const THROTTLING = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'Throttling',
  'RequestThrottled',
]);

export function createAwsSecretsManagerSource(
  config: AwsSecretsManagerSourceConfig,
  deps: SourceDeps,
): Source {
  // A full ARN names its region: use it when nothing else does (the SDK would otherwise fail).
  const region = config.region ?? regionFromArn(config.secretId);
  const where = describeTarget(config, region);
  const profileName = config.profile ?? 'default';

  return {
    type: 'aws-secrets-manager',
    describe() {
      const parts = [`aws-secrets-manager ${config.secretId}`];
      if (config.jsonKey !== undefined) parts.push(`jsonKey=${config.jsonKey}`);
      if (config.versionId !== undefined) parts.push(`versionId=${config.versionId}`);
      if (config.versionStage !== undefined) parts.push(`versionStage=${config.versionStage}`);
      parts.push(`in ${region ?? '(region from AWS config)'}`);
      if (config.profile !== undefined) parts.push(`profile ${config.profile}`);
      if (config.endpoint !== undefined) parts.push(`at ${config.endpoint}`);
      return parts.join(' ');
    },

    async getToken(request: TokenRequest): Promise<FetchedToken> {
      const budgetMs = request.deadlineMs - request.now();
      if (budgetMs <= 0 || request.signal.aborted) throw timeoutError(where, Math.max(0, budgetMs));

      const sdk = await loadSdk();
      // Explicit TLS settings and routing (contract §3a): the OS trust store, verification
      // always on (NODE_TLS_REJECT_UNAUTHORIZED=0 changes nothing), HTTPS_PROXY / NO_PROXY /
      // the profile's "proxy" through CONNECT. The SDK's credential providers (SSO, IMDS,
      // container) keep their own clients: IMDS and container endpoints are link-local.
      const net = createNetClient({
        env: deps.env,
        proxy: deps.proxy ?? 'env',
        rejectUnauthorized: true,
        debug: (line) => deps.logger.debug(line),
      });
      // Our own deadline, so that the call ends even where the SDK ignores abortSignal
      // (credential providers such as SSO or IMDS run before the request is sent).
      const deadline = deadlineAt(request.deadlineMs, { now: request.now, signal: request.signal });
      const signal = deadline.signal;

      const client = withoutSdkNodeVersionWarning(
        () =>
          new sdk.SecretsManagerClient({
            ...(region === undefined ? {} : { region }),
            ...(config.profile === undefined ? {} : { profile: config.profile }),
            ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
            // AWS_ENDPOINT_URL* reach config.endpoint through the config's own rules (a managed
            // lockdown drops them; plain http only for loopback). When they were dropped, the
            // SDK must not read them from the environment behind the config's back.
            ...(config.endpoint === undefined && endpointFromEnvDropped(deps.env)
              ? { ignoreConfiguredEndpointUrls: true }
              : {}),
            maxAttempts: 3,
            requestHandler: {
              httpsAgent: net.httpsAgent,
              httpAgent: net.httpAgent,
              // Two attempts fit in the budget even when the first one hangs; the deadline
              // above bounds the whole call, backoff included.
              requestTimeout: Math.max(MIN_ATTEMPT_MS, Math.floor(budgetMs / 2)),
              connectionTimeout: Math.max(MIN_ATTEMPT_MS, Math.min(MAX_CONNECT_MS, Math.floor(budgetMs / 3))),
              throwOnRequestTimeout: true,
            },
            logger: sdkLogger(deps),
          }),
        deps,
      );
      try {
        deps.logger.debug(`aws: GetSecretValue ${where}`);
        const command = new sdk.GetSecretValueCommand({
          SecretId: config.secretId,
          ...(config.versionId === undefined ? {} : { VersionId: config.versionId }),
          ...(config.versionStage === undefined ? {} : { VersionStage: config.versionStage }),
        });
        const out = await deadline.race(client.send(command, { abortSignal: signal }), () =>
          timeoutError(where, budgetMs, signal.reason),
        );
        const value = secretValue(out, config, where);
        deps.logger.addSecret(value);
        deps.logger.debug(`aws: got version ${out.VersionId ?? '(unknown)'}`);
        return { value, meta: out.VersionId ? { versionId: out.VersionId } : {} };
      } catch (e) {
        if (isKeybrokerError(e)) throw e;
        if (signal.aborted) throw timeoutError(where, budgetMs, e);
        const endpoint = config.endpoint ?? `https://secretsmanager.${region ?? 'us-east-1'}.amazonaws.com`;
        throw (
          net.explain(e, endpoint) ??
          classifyAwsError(e, {
            where,
            profileName,
            config,
            region,
            keysFromEnv: credentialsFromEnv(config, deps.env),
          })
        );
      } finally {
        deadline.clear();
        client.destroy();
        net.close();
      }
    },
  };
}

type SecretsManagerSdk = typeof import('@aws-sdk/client-secrets-manager');

/** The SDK is CommonJS: bundled into an ES module, its exports arrive under `default`. */
async function loadSdk(): Promise<SecretsManagerSdk> {
  const mod = (await import('@aws-sdk/client-secrets-manager')) as SecretsManagerSdk & {
    default?: SecretsManagerSdk;
  };
  return typeof mod.SecretsManagerClient === 'function' ? mod : (mod.default ?? mod);
}

/** `"prod/llm" in us-east-1` style, for messages: names only, never values. */
function describeTarget(config: AwsSecretsManagerSourceConfig, region: string | undefined): string {
  let s = `secret "${config.secretId}"`;
  if (config.versionId !== undefined) s += ` version ${config.versionId}`;
  else if (config.versionStage !== undefined) s += ` stage ${config.versionStage}`;
  return region === undefined ? s : `${s} in ${region}`;
}

export function regionFromArn(secretId: string): string | undefined {
  const m = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):/.exec(secretId);
  return m?.[1];
}

/**
 * The SDK warns once per process, through process.emitWarning, that its 2027 releases need
 * Node 22: on Node 20 that breaks "stderr is silent on success". Drop exactly that warning
 * while the client is built (it is emitted from the constructor, synchronously) and let
 * every other warning through.
 */
export function withoutSdkNodeVersionWarning<T>(build: () => T, deps?: Pick<SourceDeps, 'logger'>): T {
  const original = process.emitWarning;
  const filtered = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === 'string' ? warning : warning?.message;
    if (
      typeof text === 'string' &&
      text.startsWith('NodeVersionSupportWarning: The AWS SDK for JavaScript')
    ) {
      deps?.logger.debug('aws: SDK Node.js version notice suppressed');
      return;
    }
    return (original as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  process.emitWarning = filtered;
  try {
    return build();
  } finally {
    if (process.emitWarning === filtered) process.emitWarning = original;
  }
}

/** The SDK never writes to the console; its warnings become --debug lines, its info is dropped. */
function sdkLogger(deps: SourceDeps) {
  // Objects (the failed command's input and error) are left out: only plain messages pass.
  const toDebug = (...args: unknown[]) => {
    const text = args.filter((a) => typeof a === 'string').join(' ');
    if (text) deps.logger.debug(`aws sdk: ${text}`);
  };
  const drop = () => {};
  return { trace: drop, debug: drop, info: drop, warn: toDebug, error: toDebug };
}

interface SecretOutput {
  SecretString?: string | undefined;
  SecretBinary?: Uint8Array | undefined;
}

/** The token inside a GetSecretValue answer; exit 5 naming the field or key, never the value. */
export function secretValue(out: SecretOutput, config: AwsSecretsManagerSourceConfig, where: string): string {
  let text: string;
  let field: 'SecretString' | 'SecretBinary';
  if (typeof out.SecretString === 'string') {
    text = out.SecretString;
    field = 'SecretString';
  } else if (out.SecretBinary instanceof Uint8Array) {
    field = 'SecretBinary';
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(out.SecretBinary);
    } catch {
      throw sourceError(
        'missing',
        'ERR_AWS_SECRET_BINARY',
        `AWS Secrets Manager ${where}: SecretBinary is not UTF-8 text`,
        'store the token as SecretString (aws secretsmanager put-secret-value --secret-string)',
      );
    }
  } else {
    throw sourceError(
      'missing',
      'ERR_AWS_SECRET_EMPTY',
      `AWS Secrets Manager ${where}: the version has no SecretString or SecretBinary`,
      'store the token with aws secretsmanager put-secret-value',
    );
  }

  if (config.jsonKey !== undefined) text = pickJsonKey(text, field, config.jsonKey, where);
  else if (field === 'SecretBinary' && !usableToken(text)) {
    throw sourceError(
      'missing',
      'ERR_AWS_SECRET_BINARY',
      `AWS Secrets Manager ${where}: SecretBinary does not hold a usable token (printable ASCII, at most ${MAX_TOKEN_CHARS} characters)`,
      'store the token as SecretString (aws secretsmanager put-secret-value --secret-string)',
    );
  }
  return text;
}

function usableToken(text: string): boolean {
  return isTokenText(text.trim());
}

function pickJsonKey(text: string, field: string, key: string, where: string): string {
  const hint =
    "set jsonKey to a key of the secret's JSON whose value is the token as a string, or remove jsonKey";
  const fail = (message: string) => sourceError('missing', 'ERR_AWS_JSON_KEY', message, hint);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!isObject(parsed)) {
    throw fail(
      `AWS Secrets Manager ${where}: ${field} is not a JSON object, so jsonKey "${key}" cannot be read`,
    );
  }
  if (!Object.hasOwn(parsed, key)) {
    throw fail(`AWS Secrets Manager ${where}: ${field} has no key "${key}"`);
  }
  const value = parsed[key];
  if (typeof value !== 'string') {
    throw fail(
      `AWS Secrets Manager ${where}: key "${key}" of ${field} is ${value === null ? 'null' : `a ${typeof value}`}, not a string`,
    );
  }
  return value;
}

function timeoutError(where: string, budgetMs: number, cause?: unknown): KeybrokerError {
  return sourceError(
    'unreachable',
    'ERR_AWS_TIMEOUT',
    `AWS Secrets Manager ${where}: no answer within ${Math.round(budgetMs)} ms (timeoutMs)`,
    "check the network path to Secrets Manager (VPN, proxy, VPC endpoint) or raise the profile's timeoutMs",
    { cause },
  );
}

interface ClassifyContext {
  where: string;
  profileName: string;
  config: AwsSecretsManagerSourceConfig;
  region: string | undefined;
  /** The SDK signed with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not a profile's credentials. */
  keysFromEnv?: boolean;
}

/**
 * Whether the SDK's default chain takes its credentials from AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY: both set and no profile named (a profile, from the config or
 * AWS_PROFILE, makes the SDK skip the environment keys).
 */
export function credentialsFromEnv(
  config: AwsSecretsManagerSourceConfig,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  return !(config.profile || env.AWS_PROFILE) && Boolean(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY);
}

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
  cause?: unknown;
}

/** Maps an SDK, credential-chain or network error to a typed error. Matches names and codes; the SDK's message text is only read to tell SSO problems apart and is never shown. */
export function classifyAwsError(e: unknown, ctx: ClassifyContext): KeybrokerError {
  const err = (e ?? {}) as SdkErrorShape;
  const name = err.name ?? '';
  const status = err.$metadata?.httpStatusCode ?? err.$response?.statusCode;
  const code = networkCode(e);
  const { where, profileName } = ctx;
  const what = `AWS Secrets Manager ${where}`;
  const profileHint =
    ctx.config.profile === undefined ? 'the default AWS profile' : `AWS profile "${profileName}"`;
  // Whose credentials were used: a profile's, or the keys in the environment.
  const keys = ctx.keysFromEnv === true;
  const identity = keys ? 'the access key in AWS_ACCESS_KEY_ID' : profileHint;
  const ENV_KEYS = 'AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in the environment';
  const fail = (kind: FailureKind, code: string, message: string, hint: string) =>
    sourceError(kind, code, message, hint, { cause: e });

  switch (name) {
    case 'ResourceNotFoundException': {
      const version =
        ctx.config.versionId !== undefined
          ? ` (and versionId ${ctx.config.versionId})`
          : ctx.config.versionStage !== undefined
            ? ` (and versionStage ${ctx.config.versionStage})`
            : '';
      return fail(
        'missing',
        'ERR_AWS_SECRET_NOT_FOUND',
        `${what}: not found`,
        `check secretId and region${version}`,
      );
    }
    case 'InvalidRequestException':
      return fail(
        'missing',
        'ERR_AWS_SECRET_UNAVAILABLE',
        `${what}: the secret cannot be read (scheduled for deletion or otherwise unavailable)`,
        'restore the secret (aws secretsmanager restore-secret) or point secretId at another one',
      );
    case 'InvalidParameterException':
      return fail(
        'config',
        'ERR_AWS_INVALID_PARAMETER',
        `${what}: Secrets Manager rejected the request parameters`,
        'check secretId, versionId and versionStage in the profile',
      );
    case 'AccessDeniedException':
    case 'AccessDenied':
      return fail(
        'denied',
        'ERR_AWS_DENIED',
        `${what}: access denied`,
        `allow secretsmanager:GetSecretValue on this secret (and kms:Decrypt on its KMS key) for the identity of ${identity}`,
      );
    case 'DecryptionFailure':
      return fail(
        'denied',
        'ERR_AWS_KMS_DENIED',
        `${what}: Secrets Manager could not decrypt the secret with its KMS key`,
        `allow kms:Decrypt on the secret's KMS key for the identity of ${identity}`,
      );
    case 'UnrecognizedClientException':
    case 'InvalidClientTokenId':
      return fail(
        'denied',
        'ERR_AWS_BAD_CREDENTIALS',
        `${what}: AWS does not recognize the access key`,
        keys
          ? `check ${ENV_KEYS} (they are used before any AWS profile)`
          : `check the credentials of ${profileHint}, or run aws sso login --profile ${profileName}`,
      );
    case 'InvalidSignatureException':
    case 'SignatureDoesNotMatch':
    case 'IncompleteSignatureException':
      return fail(
        'denied',
        'ERR_AWS_BAD_SIGNATURE',
        `${what}: AWS rejected the request signature`,
        `check ${keys ? 'AWS_SECRET_ACCESS_KEY in the environment' : `the secret access key of ${profileHint}`}, the region and the system clock`,
      );
    case 'ExpiredTokenException':
    case 'ExpiredToken':
    case 'RequestExpired':
      return fail(
        'denied',
        'ERR_AWS_CREDENTIALS_EXPIRED',
        `${what}: the AWS session credentials have expired`,
        keys
          ? `refresh ${ENV_KEYS}`
          : `run aws sso login --profile ${profileName}, or refresh the session credentials`,
      );
  }
  if (/^(InvalidIdentityToken|IDPRejectedClaim)(Exception)?$/.test(name)) {
    return fail(
      'denied',
      'ERR_AWS_WEB_IDENTITY',
      `${what}: AWS STS refused the web identity token`,
      "check AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN and the role's trust policy",
    );
  }
  if (name === 'CredentialsProviderError' || name === 'TokenProviderError') {
    const message = err.message ?? '';
    // A provider that could not reach its service (SSO portal, STS, IMDS) wraps the network
    // error into its message: that is "unreachable" (3, so a cached token may still serve).
    const net =
      /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|TimeoutError)\b/.exec(
        message,
      );
    if (net) {
      return fail(
        'unreachable',
        'ERR_AWS_UNREACHABLE',
        `${what}: cannot reach the AWS credential service for ${profileHint} (${net[1]})`,
        'check the network, VPN or proxy',
      );
    }
    if (/\bSSO\b|UnauthorizedException/i.test(message) || name === 'TokenProviderError') {
      return fail(
        'denied',
        'ERR_AWS_SSO_LOGIN',
        `${what}: the AWS SSO session of ${profileHint} is missing or expired`,
        `run aws sso login --profile ${profileName}`,
      );
    }
    return fail(
      'denied',
      'ERR_AWS_NO_CREDENTIALS',
      `${what}: no AWS credentials found for ${profileHint}`,
      `run aws sso login --profile ${profileName} or aws configure --profile ${profileName}, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
    );
  }
  if (/^Region is missing/.test(err.message ?? '')) {
    return fail(
      'config',
      'ERR_AWS_REGION_MISSING',
      `AWS Secrets Manager ${where}: no region configured`,
      `set source.region, AWS_REGION, or region in ~/.aws/config for ${profileHint}`,
    );
  }
  if (THROTTLING.has(name)) {
    return fail(
      'unreachable',
      'ERR_AWS_THROTTLED',
      `${what}: throttled by Secrets Manager after retries`,
      "try again shortly; many callers share this account's GetSecretValue quota",
    );
  }
  if (
    code !== undefined &&
    (NETWORK_CODES.has(code) || /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED)/.test(code))
  ) {
    return fail(
      'unreachable',
      'ERR_AWS_UNREACHABLE',
      `${what}: cannot reach Secrets Manager${ctx.config.endpoint ? ` at ${ctx.config.endpoint}` : ''} (${code})`,
      'check the network, VPN or proxy, and the endpoint and region settings',
    );
  }
  if (name === 'TimeoutError' || code === 'ETIMEDOUT' || name === 'AbortError') {
    return fail(
      'unreachable',
      'ERR_AWS_TIMEOUT',
      `${what}: the request timed out`,
      "check the network path to Secrets Manager (VPN, proxy, VPC endpoint) or raise the profile's timeoutMs",
    );
  }
  if (err.$fault === 'server' || (status !== undefined && status >= 500)) {
    return fail(
      'unreachable',
      'ERR_AWS_UNAVAILABLE',
      `${what}: Secrets Manager failed${status !== undefined ? ` (HTTP ${status}${name ? `, ${name}` : ''})` : ''}`,
      'try again shortly; see the AWS Health Dashboard',
    );
  }
  if (status === 401 || status === 403) {
    return fail(
      'denied',
      'ERR_AWS_DENIED',
      `${what}: access denied (HTTP ${status}${name ? `, ${name}` : ''})`,
      `check the credentials and IAM policy of ${identity}`,
    );
  }
  if (status !== undefined && status >= 200 && status < 300) {
    return fail(
      'unreachable',
      'ERR_AWS_BAD_RESPONSE',
      `${what}: the answer was not a Secrets Manager response (HTTP ${status})`,
      'check the endpoint setting and any proxy in between',
    );
  }
  return fail(
    'unreachable',
    'ERR_AWS_REQUEST_FAILED',
    `${what}: the request failed${status !== undefined ? ` (HTTP ${status}${name ? `, ${name}` : ''})` : name ? ` (${safeName(name)})` : ''}`,
    'rerun with --debug; check the endpoint, region and network',
  );
}

/** A network error code from the error or its causes (the SDK wraps some). */
function networkCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur && typeof cur === 'object'; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function safeName(name: string): string {
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(name) ? name : 'unknown error';
}

/** AWS_ENDPOINT_URL* set in the environment (the config did not take it: lockdown). */
function endpointFromEnvDropped(env: Readonly<Record<string, string | undefined>>): boolean {
  return Boolean(env.AWS_ENDPOINT_URL || env.AWS_ENDPOINT_URL_SECRETS_MANAGER);
}
