/**
 * dist/keybroker with an aws-secrets-manager profile, run through /bin/sh -c as Claude Code
 * runs it, against the local SigV4-verifying Secrets Manager. Request counts on the server
 * prove cache reuse and single flight; stderr must stay empty on success (the AWS SDK's
 * Node.js version warning included).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readAudit } from '../helpers/jwt-profile.js';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import {
  DEFAULT_CREDENTIALS,
  type SecretsManagerServer,
  startSecretsManagerServer,
} from '../servers/secrets-manager-server.js';

const TOKEN = 'sk-ant-api03-e2e-aws-CURRENT-0001';
const ROTATED = 'sk-ant-api03-e2e-aws-ROTATED-0002';

let server: SecretsManagerServer;
let sb: Sandbox;
let secretName: string;
let n = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GetSecretValue requests for this test's secret. */
const fetches = () => server.requests.filter((r) => r.secretId === secretName).length;

function awsEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: server.url,
    // The credential chain must never try the real instance metadata address.
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

function writeProfile(source: Record<string, unknown> = {}, profile: Record<string, unknown> = {}, top = {}) {
  sb.writeConfig({
    ...top,
    profiles: {
      default: { ...profile, source: { type: 'aws-secrets-manager', secretId: secretName, ...source } },
    },
  });
}

beforeAll(async () => {
  server = await startSecretsManagerServer({ region: 'us-east-1' });
});
afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  // A secret per test, so request counts never mix.
  secretName = `e2e/llm-${++n}`;
  server.putSecret(secretName, TOKEN);
  server.setFault(undefined);
  sb = makeSandbox(awsEnv());
  writeProfile();
});
afterEach(() => sb.cleanup());

describe('aws-secrets-manager through dist/keybroker', () => {
  it('prints the secret and a newline, with nothing on stderr (no SDK warning), from one GetSecretValue', async () => {
    const r = await runKeybroker([], sb);
    expect(r).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(fetches()).toBe(1);
  });

  it('reuses the cached secret: a second caller costs no request', async () => {
    const a = await runKeybroker([], sb);
    const b = await runKeybroker([], sb);
    expect([a.stdout, b.stdout]).toEqual([`${TOKEN}\n`, `${TOKEN}\n`]);
    expect(b.stderr).toBe('');
    expect(fetches()).toBe(1);
    expect(readAudit(sb).map((x) => x.cache)).toEqual(['miss', 'hit']);
  });

  // 30 processes at once on a shared 2-core machine can take long: a generous timeoutMs keeps
  // this about single flight, not speed; the kill timer is a safety net only.
  it('30 concurrent cold calls make exactly one GetSecretValue and all print the same token', {
    timeout: 240_000,
  }, async () => {
    writeProfile({}, { timeoutMs: 120_000 });
    const runs = await Promise.all(
      Array.from({ length: 30 }, () => runKeybroker([], sb, { killAfterMs: 200_000 })),
    );
    expect(runs.map((r) => r.code)).toEqual(Array(30).fill(0));
    expect(runs.filter((r) => r.stderr !== '')).toEqual([]);
    expect(new Set(runs.map((r) => r.stdout))).toEqual(new Set([`${TOKEN}\n`]));
    expect(fetches()).toBe(1);
  });

  it('picks up a rotated secret once the cached one is older than the TTL', async () => {
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1500' };
    const a = await runKeybroker([], sb, { env });
    expect(a.stdout).toBe(`${TOKEN}\n`);
    server.putSecret(secretName, ROTATED);
    await sleep(1_700);
    const b = await runKeybroker([], sb, { env });
    expect(b).toMatchObject({ code: 0, stdout: `${ROTATED}\n`, stderr: '' });
    expect(fetches()).toBe(2);
  });

  it('--no-cache fetches every time', async () => {
    await runKeybroker(['--no-cache'], sb);
    const r = await runKeybroker(['--no-cache'], sb);
    expect(r).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(fetches()).toBe(2);
  });

  it('stale if error: Secrets Manager failing after the TTL → the cached secret with one warning', async () => {
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1500' };
    await runKeybroker([], sb, { env });
    server.setFault('500');
    await sleep(1_700);
    const r = await runKeybroker([], sb, { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${TOKEN}\n`);
    expect(r.stderr).toMatch(
      /^keybroker: warning: AWS Secrets Manager secret "e2e\/llm-\d+" in us-east-1: Secrets Manager failed \(HTTP 500, InternalServiceError\); printing the cached token fetched \d{4}-\d\d-\d\dT[\d:.]+Z\n$/,
    );
    expect(readAudit(sb).map((x) => x.cache)).toEqual(['miss', 'stale']);
  });

  it('a denial after the TTL is believed: exit 4, nothing printed, the cached entry dropped', async () => {
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1500' };
    await runKeybroker([], sb, { env });
    server.secret(secretName).deniedKeys.add(DEFAULT_CREDENTIALS.accessKeyId);
    await sleep(1_700);
    const denied = await runKeybroker([], sb, { env });
    expect(denied.code).toBe(4);
    expect(denied.stdout).toBe('');
    expect(denied.stderr).toBe(
      `keybroker: AWS Secrets Manager secret "${secretName}" in us-east-1: access denied (allow secretsmanager:GetSecretValue on this secret (and kms:Decrypt on its KMS key) for the identity of the access key in AWS_ACCESS_KEY_ID; run keybroker explain ERR_AWS_DENIED)\n`,
    );
    // With the entry gone, an outage now has nothing stale to fall back on.
    server.secret(secretName).deniedKeys.clear();
    server.setFault('503');
    const down = await runKeybroker([], sb, { env });
    expect(down.code).toBe(3);
    expect(down.stdout).toBe('');
  });

  it('takes a jsonKey of a JSON secret; a missing key is exit 5 naming the key only', async () => {
    server.putSecret(secretName, JSON.stringify({ apiKey: TOKEN, other: 'x' }));
    writeProfile({ jsonKey: 'apiKey' });
    expect((await runKeybroker([], sb)).stdout).toBe(`${TOKEN}\n`);
    writeProfile({ jsonKey: 'token' });
    const r = await runKeybroker([], sb);
    expect(r).toMatchObject({
      code: 5,
      stdout: '',
      stderr: `keybroker: AWS Secrets Manager secret "${secretName}" in us-east-1: SecretString has no key "token" (set jsonKey to a key of the secret's JSON whose value is the token as a string, or remove jsonKey; run keybroker explain ERR_AWS_JSON_KEY)\n`,
    });
    expect(r.stderr).not.toContain(TOKEN);
  });

  it('a secret holding whitespace inside is refused (exit 5) without printing it', async () => {
    server.putSecret(secretName, 'two words');
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain('two words');
  });

  it('reads credentials and region from a shared-file profile named by AWS_PROFILE in the sandbox HOME', async () => {
    fs.mkdirSync(path.join(sb.home, '.aws'), { mode: 0o700 });
    fs.writeFileSync(
      path.join(sb.home, '.aws', 'credentials'),
      `[team]\naws_access_key_id = ${DEFAULT_CREDENTIALS.accessKeyId}\naws_secret_access_key = ${DEFAULT_CREDENTIALS.secretAccessKey}\n`,
      { mode: 0o600 },
    );
    fs.writeFileSync(path.join(sb.home, '.aws', 'config'), '[profile team]\nregion = us-east-1\n', {
      mode: 0o600,
    });
    const r = await runKeybroker([], sb, {
      env: {
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_REGION: undefined,
        AWS_PROFILE: 'team',
      },
    });
    expect(r).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
  });

  it('an `aws sso login` profile: role credentials from the SSO portal, silent on stderr', async () => {
    server.addSsoLogin('e2e-sso-token', {
      accessKeyId: 'ASIAE2ESSO0000000001',
      secretAccessKey: 'e2e-sso-secret',
      sessionToken: 'e2e-sso-session',
    });
    fs.mkdirSync(path.join(sb.home, '.aws', 'sso', 'cache'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(
      path.join(sb.home, '.aws', 'config'),
      '[profile dev-sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Developer\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n',
      { mode: 0o600 },
    );
    fs.writeFileSync(
      path.join(sb.home, '.aws', 'sso', 'cache', `${createHash('sha1').update('corp').digest('hex')}.json`),
      JSON.stringify({
        startUrl: 'https://corp.awsapps.com/start',
        region: 'us-east-1',
        accessToken: 'e2e-sso-token',
        expiresAt: new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      }),
      { mode: 0o600 },
    );
    writeProfile({ profile: 'dev-sso' });
    const r = await runKeybroker([], sb, {
      env: {
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_REGION: undefined,
        AWS_ENDPOINT_URL_SSO: server.url,
      },
    });
    expect(r).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(server.requests.filter((x) => x.secretId === secretName).map((x) => x.accessKeyId)).toEqual([
      'ASIAE2ESSO0000000001',
    ]);
  });

  it('AWS_PROFILE together with static keys stays silent on stderr (the SDK warns about it)', async () => {
    fs.mkdirSync(path.join(sb.home, '.aws'), { mode: 0o700 });
    fs.writeFileSync(
      path.join(sb.home, '.aws', 'credentials'),
      `[team]\naws_access_key_id = ${DEFAULT_CREDENTIALS.accessKeyId}\naws_secret_access_key = ${DEFAULT_CREDENTIALS.secretAccessKey}\n`,
      { mode: 0o600 },
    );
    const r = await runKeybroker([], sb, { env: { AWS_PROFILE: 'team' } });
    expect(r).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
  });
});

describe('failures: one stderr line, exact exit code, nothing on stdout', () => {
  it('5: no such secret', async () => {
    writeProfile({ secretId: 'e2e/does-not-exist' });
    const r = await runKeybroker([], sb);
    expect(r).toMatchObject({
      code: 5,
      stdout: '',
      stderr:
        'keybroker: AWS Secrets Manager secret "e2e/does-not-exist" in us-east-1: not found (check secretId and region; run keybroker explain ERR_AWS_SECRET_NOT_FOUND)\n',
    });
  });

  it('4: no credentials, naming the profile and aws sso login', async () => {
    const r = await runKeybroker([], sb, {
      env: { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_PROFILE: 'dev' },
    });
    expect(r).toMatchObject({
      code: 4,
      stdout: '',
      stderr: `keybroker: AWS Secrets Manager secret "${secretName}" in us-east-1: no AWS credentials found for AWS profile "dev" (run aws sso login --profile dev or aws configure --profile dev, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; run keybroker explain ERR_AWS_NO_CREDENTIALS)\n`,
    });
  });

  it('4: a wrong secret access key (the server checks the signature)', async () => {
    const r = await runKeybroker([], sb, { env: { AWS_SECRET_ACCESS_KEY: 'wrong-secret-key' } });
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(
      `keybroker: AWS Secrets Manager secret "${secretName}" in us-east-1: AWS rejected the request signature (check AWS_SECRET_ACCESS_KEY in the environment, the region and the system clock; run keybroker explain ERR_AWS_BAD_SIGNATURE)\n`,
    );
  });

  it('3: throttled on every attempt', async () => {
    server.setFault('throttle');
    const r = await runKeybroker([], sb);
    expect(r).toMatchObject({
      code: 3,
      stdout: '',
      stderr: `keybroker: AWS Secrets Manager secret "${secretName}" in us-east-1: throttled by Secrets Manager after retries (try again shortly; many callers share this account's GetSecretValue quota; run keybroker explain ERR_AWS_THROTTLED)\n`,
    });
  });

  it('3: nothing listening at the endpoint', async () => {
    const r = await runKeybroker([], sb, { env: { AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:9' } });
    expect(r).toMatchObject({
      code: 3,
      stdout: '',
      stderr: `keybroker: AWS Secrets Manager secret "${secretName}" in us-east-1: cannot reach Secrets Manager at http://127.0.0.1:9 (ECONNREFUSED) (check the network, VPN or proxy, and the endpoint and region settings; run keybroker explain ERR_AWS_UNREACHABLE)\n`,
    });
  });

  it("3: a hung server ends at the profile's timeoutMs", async () => {
    writeProfile({}, { timeoutMs: 1500 });
    server.setFault('hang');
    const r = await runKeybroker([], sb, { killAfterMs: 20_000 });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^keybroker: AWS Secrets Manager secret "e2e\/llm-\d+" in us-east-1: no answer within \d+ ms \(timeoutMs\) \(.*run keybroker explain ERR_AWS_TIMEOUT\)\n$/,
    );
  });
});
