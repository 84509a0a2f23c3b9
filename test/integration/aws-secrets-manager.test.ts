/**
 * The aws-secrets-manager source with the real AWS SDK against the local Secrets Manager
 * (test/servers/secrets-manager-server.ts), which verifies every request's SigV4 signature.
 * The SDK reads its credentials from process.env and the shared files under HOME, so each
 * test sets those and restores them.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AwsSecretsManagerSourceConfig } from '../../src/config/types.js';
import { formatErrorLine, isKeybrokerError } from '../../src/errors.js';
import { createLogger } from '../../src/output/logger.js';
import {
  createAwsSecretsManagerSource,
  credentialsFromEnv,
  regionFromArn,
  withoutSdkNodeVersionWarning,
} from '../../src/sources/aws-secrets-manager.js';
import type { SourceDeps } from '../../src/sources/types.js';
import {
  CONTAINER_CREDENTIALS_PATH,
  DEFAULT_CREDENTIALS,
  type SecretsManagerServer,
  startSecretsManagerServer,
} from '../servers/secrets-manager-server.js';

const TOKEN = 'sk-ant-api03-kbtest-CURRENT-0123456789';
const OLD_TOKEN = 'sk-ant-api03-kbtest-PREVIOUS-98765';
const JSON_SECRET = JSON.stringify({ apiKey: 'sk-json-token-abcdef', port: 5432, nothing: null });

let server: SecretsManagerServer;
let home: string;
const savedEnv = { ...process.env };
const debugLines: string[] = [];

function deps(): SourceDeps {
  return {
    logger: createLogger({ debug: true, write: (l) => debugLines.push(l) }),
    memo: { get: async () => undefined, set: async () => {}, delete: async () => {} },
    env: process.env,
    homeDir: home,
    ttlMs: 300_000,
    refreshMarginMs: 120_000,
  };
}

function source(config: Partial<AwsSecretsManagerSourceConfig>) {
  return createAwsSecretsManagerSource(
    {
      type: 'aws-secrets-manager',
      secretId: 'prod/llm',
      region: 'us-east-1',
      endpoint: server.url,
      ...config,
    },
    deps(),
  );
}

function request(budgetMs = 5_000, signal = new AbortController().signal) {
  return { signal, now: () => Date.now(), deadlineMs: Date.now() + budgetMs, forceFresh: false };
}

async function fetchValue(config: Partial<AwsSecretsManagerSourceConfig>, budgetMs?: number) {
  return (await source(config).getToken(request(budgetMs))).value;
}

/** The stderr line main.ts would print, and the exit code, for a failing fetch. */
async function failure(config: Partial<AwsSecretsManagerSourceConfig>, budgetMs?: number) {
  try {
    await source(config).getToken(request(budgetMs));
  } catch (e) {
    if (!isKeybrokerError(e)) throw e;
    return { line: formatErrorLine(e), exitCode: e.exitCode, code: e.code };
  }
  throw new Error('expected the fetch to fail');
}

function useEnvCredentials(c: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) {
  process.env.AWS_ACCESS_KEY_ID = c.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = c.secretAccessKey;
  if (c.sessionToken) process.env.AWS_SESSION_TOKEN = c.sessionToken;
  else delete process.env.AWS_SESSION_TOKEN;
}

function writeAwsFile(name: 'credentials' | 'config', text: string) {
  fs.mkdirSync(path.join(home, '.aws'), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(home, '.aws', name), text, { mode: 0o600 });
}

beforeAll(async () => {
  server = await startSecretsManagerServer({ region: 'us-east-1' });
  server.putSecret('prod/llm', OLD_TOKEN, { versionId: 'v-old-0001' });
  server.putSecret('prod/llm', TOKEN, { versionId: 'v-current-0002' });
  server.putSecret('prod/json', JSON_SECRET);
  server.putSecret('prod/json-array', '["not", "an", "object"]');
  server.putSecret('prod/not-json', 'plain-token-not-json');
  server.putSecret('prod/binary', { binary: new TextEncoder().encode(`  ${TOKEN}\n`) });
  server.putSecret('prod/binary-json', { binary: new TextEncoder().encode(JSON_SECRET) });
  server.putSecret('prod/binary-bad-utf8', { binary: new Uint8Array([0xff, 0xfe, 0x41, 0x80]) });
  server.putSecret('prod/binary-unprintable', { binary: new Uint8Array([0x41, 0x00, 0x42, 0x07]) });
  server.putSecret('prod/denied', TOKEN);
  server.secret('prod/denied').deniedKeys.add(DEFAULT_CREDENTIALS.accessKeyId);
  server.putSecret('prod/kms', TOKEN);
  server.secret('prod/kms').kmsBroken = true;
  server.putSecret('prod/deleted', TOKEN);
  server.secret('prod/deleted').deleted = true;
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-aws-'));
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
  process.env.HOME = home;
  // Never let the credential chain reach for the real instance metadata address.
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  useEnvCredentials(DEFAULT_CREDENTIALS);
  server.setFault(undefined);
  server.requests.length = 0;
  debugLines.length = 0;
});

afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
  fs.rmSync(home, { recursive: true, force: true });
});

describe('values', () => {
  it('returns the AWSCURRENT SecretString with its version id, in one signed request', async () => {
    const got = await source({}).getToken(request());
    expect(got).toEqual({ value: TOKEN, meta: { versionId: 'v-current-0002' } });
    expect(server.requests).toEqual([
      {
        target: 'secretsmanager.GetSecretValue',
        secretId: 'prod/llm',
        accessKeyId: DEFAULT_CREDENTIALS.accessKeyId,
        outcome: 'ok',
      },
    ]);
  });

  it('picks a version by versionStage and by versionId', async () => {
    expect(await fetchValue({ versionStage: 'AWSPREVIOUS' })).toBe(OLD_TOKEN);
    expect(await fetchValue({ versionId: 'v-old-0001' })).toBe(OLD_TOKEN);
    expect(await fetchValue({ versionId: 'v-current-0002', versionStage: 'AWSCURRENT' })).toBe(TOKEN);
  });

  it('finds the secret by its full ARN and takes the region from it when none is set', async () => {
    const arn = server.secret('prod/llm').arn;
    expect(regionFromArn(arn)).toBe('us-east-1');
    const src = createAwsSecretsManagerSource(
      { type: 'aws-secrets-manager', secretId: arn, endpoint: server.url },
      deps(),
    );
    expect((await src.getToken(request())).value).toBe(TOKEN);
  });

  it('picks a jsonKey of a JSON SecretString', async () => {
    expect(await fetchValue({ secretId: 'prod/json', jsonKey: 'apiKey' })).toBe('sk-json-token-abcdef');
  });

  it('refuses jsonKey on a SecretString that is not JSON, naming the key and never the value (exit 5)', async () => {
    const f = await failure({ secretId: 'prod/not-json', jsonKey: 'apiKey' });
    expect(f).toEqual({
      exitCode: 5,
      code: 'ERR_AWS_JSON_KEY',
      line: 'keybroker: AWS Secrets Manager secret "prod/not-json" in us-east-1: SecretString is not a JSON object, so jsonKey "apiKey" cannot be read (set jsonKey to a key of the secret\'s JSON whose value is the token as a string, or remove jsonKey; run keybroker explain ERR_AWS_JSON_KEY)',
    });
    expect(f.line).not.toContain('plain-token');
  });

  it('refuses jsonKey on a JSON array (exit 5)', async () => {
    const f = await failure({ secretId: 'prod/json-array', jsonKey: '0' });
    expect(f.code).toBe('ERR_AWS_JSON_KEY');
    expect(f.line).toContain('SecretString is not a JSON object, so jsonKey "0" cannot be read');
  });

  it('refuses a jsonKey the JSON does not have (exit 5)', async () => {
    const f = await failure({ secretId: 'prod/json', jsonKey: 'token' });
    expect(f).toEqual({
      exitCode: 5,
      code: 'ERR_AWS_JSON_KEY',
      line: 'keybroker: AWS Secrets Manager secret "prod/json" in us-east-1: SecretString has no key "token" (set jsonKey to a key of the secret\'s JSON whose value is the token as a string, or remove jsonKey; run keybroker explain ERR_AWS_JSON_KEY)',
    });
    expect(f.line).not.toContain('sk-json-token');
  });

  it('refuses a jsonKey whose value is not a string (exit 5)', async () => {
    expect((await failure({ secretId: 'prod/json', jsonKey: 'port' })).line).toContain(
      'in us-east-1: key "port" of SecretString is a number, not a string (',
    );
  });

  it('refuses a jsonKey whose value is null (exit 5)', async () => {
    const f = await failure({ secretId: 'prod/json', jsonKey: 'nothing' });
    expect(f.exitCode).toBe(5);
    expect(f.line).toContain(': key "nothing" of SecretString is null, not a string (');
  });

  it('uses a SecretBinary that decodes to a usable token (the broker trims it)', async () => {
    expect(await fetchValue({ secretId: 'prod/binary' })).toBe(`  ${TOKEN}\n`);
    expect(await fetchValue({ secretId: 'prod/binary-json', jsonKey: 'apiKey' })).toBe(
      'sk-json-token-abcdef',
    );
  });

  it('refuses a SecretBinary that is not UTF-8 (exit 5)', async () => {
    expect(await failure({ secretId: 'prod/binary-bad-utf8' })).toEqual({
      exitCode: 5,
      code: 'ERR_AWS_SECRET_BINARY',
      line: 'keybroker: AWS Secrets Manager secret "prod/binary-bad-utf8" in us-east-1: SecretBinary is not UTF-8 text (store the token as SecretString (aws secretsmanager put-secret-value --secret-string); run keybroker explain ERR_AWS_SECRET_BINARY)',
    });
  });

  it('refuses a SecretBinary that holds control characters (exit 5)', async () => {
    expect(await failure({ secretId: 'prod/binary-unprintable' })).toEqual({
      exitCode: 5,
      code: 'ERR_AWS_SECRET_BINARY',
      line: 'keybroker: AWS Secrets Manager secret "prod/binary-unprintable" in us-east-1: SecretBinary does not hold a usable token (printable ASCII, at most 16384 characters) (store the token as SecretString (aws secretsmanager put-secret-value --secret-string); run keybroker explain ERR_AWS_SECRET_BINARY)',
    });
  });
});

describe('errors from Secrets Manager', () => {
  it('ResourceNotFoundException → exit 5', async () => {
    expect(await failure({ secretId: 'prod/nope' })).toEqual({
      exitCode: 5,
      code: 'ERR_AWS_SECRET_NOT_FOUND',
      line: 'keybroker: AWS Secrets Manager secret "prod/nope" in us-east-1: not found (check secretId and region; run keybroker explain ERR_AWS_SECRET_NOT_FOUND)',
    });
  });

  it('an unknown versionStage → exit 5 naming the stage', async () => {
    expect((await failure({ versionStage: 'AWSPENDING' })).line).toBe(
      'keybroker: AWS Secrets Manager secret "prod/llm" stage AWSPENDING in us-east-1: not found (check secretId and region (and versionStage AWSPENDING); run keybroker explain ERR_AWS_SECRET_NOT_FOUND)',
    );
  });

  it('an unknown versionId → exit 5', async () => {
    const f = await failure({ versionId: 'v-missing' });
    expect(f.exitCode).toBe(5);
    expect(f.code).toBe('ERR_AWS_SECRET_NOT_FOUND');
  });

  it('a secret scheduled for deletion (InvalidRequestException) → exit 5', async () => {
    expect(await failure({ secretId: 'prod/deleted' })).toEqual({
      exitCode: 5,
      code: 'ERR_AWS_SECRET_UNAVAILABLE',
      line: 'keybroker: AWS Secrets Manager secret "prod/deleted" in us-east-1: the secret cannot be read (scheduled for deletion or otherwise unavailable) (restore the secret (aws secretsmanager restore-secret) or point secretId at another one; run keybroker explain ERR_AWS_SECRET_UNAVAILABLE)',
    });
  });

  it('AccessDeniedException → exit 4 with the IAM/KMS hint', async () => {
    expect(await failure({ secretId: 'prod/denied' })).toEqual({
      exitCode: 4,
      code: 'ERR_AWS_DENIED',
      line: 'keybroker: AWS Secrets Manager secret "prod/denied" in us-east-1: access denied (allow secretsmanager:GetSecretValue on this secret (and kms:Decrypt on its KMS key) for the identity of the access key in AWS_ACCESS_KEY_ID; run keybroker explain ERR_AWS_DENIED)',
    });
  });

  it('DecryptionFailure → exit 4 with the kms:Decrypt hint', async () => {
    expect(await failure({ secretId: 'prod/kms' })).toEqual({
      exitCode: 4,
      code: 'ERR_AWS_KMS_DENIED',
      line: 'keybroker: AWS Secrets Manager secret "prod/kms" in us-east-1: Secrets Manager could not decrypt the secret with its KMS key (allow kms:Decrypt on the secret\'s KMS key for the identity of the access key in AWS_ACCESS_KEY_ID; run keybroker explain ERR_AWS_KMS_DENIED)',
    });
  });
});

describe('credentials and signatures', () => {
  it('an access key AWS does not know (UnrecognizedClientException) → exit 4', async () => {
    useEnvCredentials({ accessKeyId: 'AKIAUNKNOWNKEY000000', secretAccessKey: 'whatever' });
    expect(await failure({})).toEqual({
      exitCode: 4,
      code: 'ERR_AWS_BAD_CREDENTIALS',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: AWS does not recognize the access key (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in the environment (they are used before any AWS profile); run keybroker explain ERR_AWS_BAD_CREDENTIALS)',
    });
  });

  it('a wrong secret access key fails the signature check → exit 4', async () => {
    useEnvCredentials({
      accessKeyId: DEFAULT_CREDENTIALS.accessKeyId,
      secretAccessKey: 'not-the-right-secret-key',
    });
    expect(await failure({})).toEqual({
      exitCode: 4,
      code: 'ERR_AWS_BAD_SIGNATURE',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: AWS rejected the request signature (check AWS_SECRET_ACCESS_KEY in the environment, the region and the system clock; run keybroker explain ERR_AWS_BAD_SIGNATURE)',
    });
    expect(server.requests.map((r) => r.outcome)).toEqual(['InvalidSignatureException']);
  });

  it('a request signed for another region fails the signature check → exit 4', async () => {
    const f = await failure({ region: 'eu-west-1' });
    expect(f.exitCode).toBe(4);
    expect(f.line).toBe(
      'keybroker: AWS Secrets Manager secret "prod/llm" in eu-west-1: AWS rejected the request signature (check AWS_SECRET_ACCESS_KEY in the environment, the region and the system clock; run keybroker explain ERR_AWS_BAD_SIGNATURE)',
    );
  });

  it('expired session credentials from the environment (ExpiredTokenException) → exit 4 naming the variables', async () => {
    const expired = {
      accessKeyId: 'ASIAEXPIREDKEY000001',
      secretAccessKey: 'expired-secret',
      sessionToken: 'expired-session-token',
      expired: true,
    };
    server.addCredentials(expired);
    useEnvCredentials(expired);
    expect(await failure({})).toEqual({
      exitCode: 4,
      code: 'ERR_AWS_CREDENTIALS_EXPIRED',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: the AWS session credentials have expired (refresh AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in the environment; run keybroker explain ERR_AWS_CREDENTIALS_EXPIRED)',
    });
  });

  it('session credentials from the environment are signed with their token', async () => {
    const session = {
      accessKeyId: 'ASIASESSIONKEY000001',
      secretAccessKey: 'session-secret',
      sessionToken: 'tok-123',
    };
    server.addCredentials(session);
    useEnvCredentials(session);
    expect(await fetchValue({})).toBe(TOKEN);
    useEnvCredentials({ ...session, sessionToken: 'another-token' });
    expect((await failure({})).code).toBe('ERR_AWS_BAD_CREDENTIALS');
  });

  it('no credentials anywhere → exit 4 naming the profile', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    expect(await failure({ profile: 'team' })).toEqual({
      exitCode: 4,
      code: 'ERR_AWS_NO_CREDENTIALS',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: no AWS credentials found for AWS profile "team" (run aws sso login --profile team or aws configure --profile team, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; run keybroker explain ERR_AWS_NO_CREDENTIALS)',
    });
    expect(server.requests).toEqual([]);
  });

  it('reads a profile from the shared credentials file, with its region from ~/.aws/config', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    writeAwsFile(
      'credentials',
      `[default]\naws_access_key_id = AKIAWRONGDEFAULT0000\naws_secret_access_key = nope\n\n[team]\naws_access_key_id = ${DEFAULT_CREDENTIALS.accessKeyId}\naws_secret_access_key = ${DEFAULT_CREDENTIALS.secretAccessKey}\n`,
    );
    writeAwsFile('config', '[profile team]\nregion = us-east-1\n');
    const src = createAwsSecretsManagerSource(
      { type: 'aws-secrets-manager', secretId: 'prod/llm', profile: 'team', endpoint: server.url },
      deps(),
    );
    expect((await src.getToken(request())).value).toBe(TOKEN);
    expect(server.requests[0]?.accessKeyId).toBe(DEFAULT_CREDENTIALS.accessKeyId);
  });

  it('an unknown key from a profile names that profile, not the environment (issue 16)', async () => {
    // (With keys in the environment too the SDK would skip them for the profile, and say so
    // once per process: credentialsFromEnv below holds that rule.)
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    writeAwsFile(
      'credentials',
      '[team]\naws_access_key_id = AKIAUNKNOWNKEY000000\naws_secret_access_key = nope\n',
    );
    expect(await failure({ profile: 'team' })).toEqual({
      exitCode: 4,
      code: 'ERR_AWS_BAD_CREDENTIALS',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: AWS does not recognize the access key (check the credentials of AWS profile "team", or run aws sso login --profile team; run keybroker explain ERR_AWS_BAD_CREDENTIALS)',
    });
    expect(server.requests[0]?.accessKeyId).toBe('AKIAUNKNOWNKEY000000');
  });

  it('the keys in the environment are the credentials only while no profile is named', () => {
    const cfg = { type: 'aws-secrets-manager' as const, secretId: 'x' };
    const keys = { AWS_ACCESS_KEY_ID: 'AKIA1', AWS_SECRET_ACCESS_KEY: 's' };
    expect(credentialsFromEnv(cfg, keys)).toBe(true);
    expect(credentialsFromEnv(cfg, { AWS_ACCESS_KEY_ID: 'AKIA1' })).toBe(false);
    expect(credentialsFromEnv(cfg, { ...keys, AWS_PROFILE: 'team' })).toBe(false);
    expect(credentialsFromEnv({ ...cfg, profile: 'team' }, keys)).toBe(false);
  });

  it('an SSO profile without a valid cached login → exit 4 with aws sso login --profile', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    writeAwsFile(
      'config',
      '[profile dev-sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Developer\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n',
    );
    expect(await failure({ profile: 'dev-sso' })).toEqual({
      exitCode: 4,
      code: 'ERR_AWS_SSO_LOGIN',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: the AWS SSO session of AWS profile "dev-sso" is missing or expired (run aws sso login --profile dev-sso; run keybroker explain ERR_AWS_SSO_LOGIN)',
    });
    expect(server.requests).toEqual([]);
  });

  function writeSsoProfile(accessToken: string | undefined, expiresAtMs = Date.now() + 3_600_000) {
    writeAwsFile(
      'config',
      '[profile dev-sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Developer\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n',
    );
    if (accessToken === undefined) return;
    // What `aws sso login` leaves behind: ~/.aws/sso/cache/<sha1 of the session name>.json
    const dir = path.join(home, '.aws', 'sso', 'cache');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(
      path.join(dir, `${createHash('sha1').update('corp').digest('hex')}.json`),
      JSON.stringify({
        startUrl: 'https://corp.awsapps.com/start',
        region: 'us-east-1',
        accessToken,
        expiresAt: new Date(expiresAtMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      }),
      { mode: 0o600 },
    );
  }

  it('signs with the role credentials of a valid `aws sso login` (SSO GetRoleCredentials)', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    server.addSsoLogin('sso-access-token-1', {
      accessKeyId: 'ASIASSOROLE000000001',
      secretAccessKey: 'sso-role-secret',
      sessionToken: 'sso-role-session',
    });
    writeSsoProfile('sso-access-token-1');
    process.env.AWS_ENDPOINT_URL_SSO = server.url;
    expect(await fetchValue({ profile: 'dev-sso' })).toBe(TOKEN);
    expect(server.requests.map((r) => [r.outcome, r.accessKeyId])).toEqual([
      ['sso-credentials', undefined],
      ['ok', 'ASIASSOROLE000000001'],
    ]);
  });

  it('an SSO login the portal no longer accepts → exit 4 with aws sso login --profile', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    writeSsoProfile('revoked-token');
    process.env.AWS_ENDPOINT_URL_SSO = server.url;
    const f = await failure({ profile: 'dev-sso' });
    expect([f.exitCode, f.code]).toEqual([4, 'ERR_AWS_SSO_LOGIN']);
    expect(server.requests.map((r) => r.outcome)).toEqual(['UnauthorizedException']);
  });

  it('an SSO login that has expired → exit 4 without any request', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    writeSsoProfile('sso-access-token-1', Date.now() - 60_000);
    process.env.AWS_ENDPOINT_URL_SSO = server.url;
    expect((await failure({ profile: 'dev-sso' })).code).toBe('ERR_AWS_SSO_LOGIN');
    expect(server.requests).toEqual([]);
  });

  it('an SSO portal that cannot be reached → exit 3 (so a cached token may still serve)', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    writeSsoProfile('sso-access-token-1');
    process.env.AWS_ENDPOINT_URL_SSO = 'http://127.0.0.1:9';
    expect(await failure({ profile: 'dev-sso' })).toEqual({
      exitCode: 3,
      code: 'ERR_AWS_UNREACHABLE',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: cannot reach the AWS credential service for AWS profile "dev-sso" (ECONNREFUSED) (check the network, VPN or proxy; run keybroker explain ERR_AWS_UNREACHABLE)',
    });
  });

  it('assumes a role with a web identity token file (STS AssumeRoleWithWebIdentity)', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    const tokenFile = path.join(home, 'web-identity-token');
    fs.writeFileSync(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.web-identity.sig');
    server.addWebIdentity('eyJhbGciOiJSUzI1NiJ9.web-identity.sig', {
      accessKeyId: 'ASIAWEBIDENTITY00001',
      secretAccessKey: 'web-identity-secret',
      sessionToken: 'web-identity-session',
    });
    process.env.AWS_WEB_IDENTITY_TOKEN_FILE = tokenFile;
    process.env.AWS_ROLE_ARN = `arn:aws:iam::123456789012:role/keybroker`;
    process.env.AWS_ENDPOINT_URL_STS = server.url;
    expect(await fetchValue({})).toBe(TOKEN);
    expect(server.requests.map((r) => [r.outcome, r.accessKeyId])).toEqual([
      ['sts-web-identity', undefined],
      ['ok', 'ASIAWEBIDENTITY00001'],
    ]);
  });

  it('a web identity token STS refuses → exit 4', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    const tokenFile = path.join(home, 'web-identity-token');
    fs.writeFileSync(tokenFile, 'not-a-token-sts-knows');
    process.env.AWS_WEB_IDENTITY_TOKEN_FILE = tokenFile;
    process.env.AWS_ROLE_ARN = `arn:aws:iam::123456789012:role/keybroker`;
    process.env.AWS_ENDPOINT_URL_STS = server.url;
    expect(await failure({})).toEqual({
      exitCode: 4,
      code: 'ERR_AWS_WEB_IDENTITY',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: AWS STS refused the web identity token (check AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN and the role\'s trust policy; run keybroker explain ERR_AWS_WEB_IDENTITY)',
    });
  });

  it('takes credentials from a container credential endpoint on loopback', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    server.serveContainerCredentials({
      accessKeyId: 'ASIACONTAINER0000001',
      secretAccessKey: 'container-secret',
      sessionToken: 'container-session',
    });
    process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = `${server.url}${CONTAINER_CREDENTIALS_PATH}`;
    expect(await fetchValue({})).toBe(TOKEN);
    expect(server.requests.map((r) => r.outcome)).toEqual(['container-credentials', 'ok']);
    expect(server.requests[1]?.accessKeyId).toBe('ASIACONTAINER0000001');
  });

  it('no region anywhere → exit 2', async () => {
    const src = createAwsSecretsManagerSource(
      { type: 'aws-secrets-manager', secretId: 'prod/llm', endpoint: server.url },
      deps(),
    );
    const e = await src.getToken(request()).catch((x: unknown) => x);
    expect(isKeybrokerError(e) && e.exitCode).toBe(2);
    expect(formatErrorLine(e)).toBe(
      'keybroker: AWS Secrets Manager secret "prod/llm": no region configured (set source.region, AWS_REGION, or region in ~/.aws/config for the default AWS profile; run keybroker explain ERR_AWS_REGION_MISSING)',
    );
  });
});

describe('unreachable, throttled, failing (exit 3) and retries within the deadline', () => {
  it("ThrottlingException on every attempt → exit 3 after the SDK's 3 attempts", async () => {
    server.setFault('throttle');
    expect(await failure({})).toEqual({
      exitCode: 3,
      code: 'ERR_AWS_THROTTLED',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: throttled by Secrets Manager after retries (try again shortly; many callers share this account\'s GetSecretValue quota; run keybroker explain ERR_AWS_THROTTLED)',
    });
    expect(server.getSecretValueCount()).toBe(3);
  });

  it('one throttled answer is retried and the value still arrives', async () => {
    server.setFault('throttle', 1);
    expect(await fetchValue({})).toBe(TOKEN);
    expect(server.requests.map((r) => r.outcome)).toEqual(['ThrottlingException', 'ok']);
  });

  it('HTTP 500 on every attempt → exit 3', async () => {
    server.setFault('500');
    expect(await failure({})).toEqual({
      exitCode: 3,
      code: 'ERR_AWS_UNAVAILABLE',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: Secrets Manager failed (HTTP 500, InternalServiceError) (try again shortly; see the AWS Health Dashboard; run keybroker explain ERR_AWS_UNAVAILABLE)',
    });
    expect(server.getSecretValueCount()).toBe(3);
  });

  it('HTTP 503 → exit 3', async () => {
    server.setFault('503');
    expect((await failure({})).line).toContain(': Secrets Manager failed (HTTP 503, ServiceUnavailable) (');
  });

  it('a 200 answer that is not JSON → exit 3, without the body', async () => {
    server.setFault('garbage');
    const f = await failure({});
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_AWS_BAD_RESPONSE',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: the answer was not a Secrets Manager response (HTTP 200) (check the endpoint setting and any proxy in between; run keybroker explain ERR_AWS_BAD_RESPONSE)',
    });
    expect(f.line).not.toContain('Proxy login');
  });

  it('connections reset → exit 3', async () => {
    server.setFault('reset');
    expect(await failure({})).toEqual({
      exitCode: 3,
      code: 'ERR_AWS_UNREACHABLE',
      line: `keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: cannot reach Secrets Manager at ${server.url} (ECONNRESET) (check the network, VPN or proxy, and the endpoint and region settings; run keybroker explain ERR_AWS_UNREACHABLE)`,
    });
  });

  it('nothing listening → exit 3', async () => {
    const f = await failure({ endpoint: 'http://127.0.0.1:9' });
    expect(f.code).toBe('ERR_AWS_UNREACHABLE');
    expect(f.line).toContain('cannot reach Secrets Manager at http://127.0.0.1:9 (ECONNREFUSED)');
  });

  it('a server that never answers → exit 3 once the deadline passes', async () => {
    server.setFault('hang');
    expect(await failure({}, 1_500)).toEqual({
      exitCode: 3,
      code: 'ERR_AWS_TIMEOUT',
      line: 'keybroker: AWS Secrets Manager secret "prod/llm" in us-east-1: no answer within 1500 ms (timeoutMs) (check the network path to Secrets Manager (VPN, proxy, VPC endpoint) or raise the profile\'s timeoutMs; run keybroker explain ERR_AWS_TIMEOUT)',
    });
    // The per-attempt timeout is half the budget: a hung first attempt leaves room for a second.
    expect(server.getSecretValueCount()).toBe(2);
  });

  it('the broker aborting the request (its signal) ends the fetch as a timeout', async () => {
    server.setFault('hang');
    const controller = new AbortController();
    const pending = source({}).getToken(request(30_000, controller.signal));
    setTimeout(() => controller.abort(), 200);
    const e = await pending.catch((x: unknown) => x);
    expect(isKeybrokerError(e) && e.code).toBe('ERR_AWS_TIMEOUT');
  });

  it('a deadline already passed → exit 3 without loading anything', async () => {
    const e = await source({})
      .getToken({
        signal: new AbortController().signal,
        now: () => 10_000,
        deadlineMs: 9_000,
        forceFresh: false,
      })
      .catch((x: unknown) => x);
    expect(isKeybrokerError(e) && [e.code, e.exitCode]).toEqual(['ERR_AWS_TIMEOUT', 3]);
    expect(server.requests).toEqual([]);
  });
});

describe('quiet and secret-safe', () => {
  it('debug lines never carry the token; describe() names the target', async () => {
    await fetchValue({});
    expect(debugLines.join('\n')).not.toContain(TOKEN);
    expect(source({ jsonKey: 'k', versionStage: 'AWSPREVIOUS', profile: 'team' }).describe()).toBe(
      `aws-secrets-manager prod/llm jsonKey=k versionStage=AWSPREVIOUS in us-east-1 profile team at ${server.url}`,
    );
  });

  it("AWS_PROFILE and static keys together: the SDK's warning goes to --debug, not the console", async () => {
    writeAwsFile(
      'credentials',
      `[team]\naws_access_key_id = ${DEFAULT_CREDENTIALS.accessKeyId}\naws_secret_access_key = ${DEFAULT_CREDENTIALS.secretAccessKey}\n`,
    );
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      expect(await fetchValue({ profile: 'team' })).toBe(TOKEN);
    } finally {
      warn.mockRestore();
    }
    expect(warn).not.toHaveBeenCalled();
    expect(
      debugLines.some((l) => l.includes('aws sdk: ') && l.includes('Multiple credential sources detected')),
    ).toBe(true);
  });

  it("drops exactly the SDK's Node.js version warning and passes every other warning on", () => {
    const seen: unknown[] = [];
    const original = process.emitWarning;
    process.emitWarning = ((w: unknown) => {
      seen.push(w);
    }) as typeof process.emitWarning;
    try {
      const inner = process.emitWarning;
      const result = withoutSdkNodeVersionWarning(() => {
        process.emitWarning(
          'NodeVersionSupportWarning: The AWS SDK for JavaScript (v3)\nversions published after the first week of January 2027',
        );
        process.emitWarning('SomethingElse: keep me');
        return 42;
      });
      expect(result).toBe(42);
      expect(seen).toEqual(['SomethingElse: keep me']);
      expect(process.emitWarning).toBe(inner);
    } finally {
      process.emitWarning = original;
    }
  });
});
