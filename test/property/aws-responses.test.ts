/**
 * Property tests for the aws-secrets-manager source's response handling
 * (src/sources/aws-secrets-manager.ts). Whatever Secrets Manager, a proxy or a broken network
 * answers, a fetch gives a string (which the broker then checks) or a KeybrokerError with
 * exit 2, 3, 4 or 5, whose stderr line is one printable line that never shows the secret,
 * the message of the answer, or the AWS secret access key; no --debug line shows them either.
 *
 * The pure helpers run 10,000 cases each. The fetches go through the real AWS SDK (which
 * retries 5xx and throttling with backoff) to a scripted server on 127.0.0.1, so they run
 * fewer cases (see FETCH_RUNS).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTokenValue } from '../../src/broker/token-value.js';
import type { AwsSecretsManagerSourceConfig } from '../../src/config/types.js';
import { ExitCode, formatErrorLine, isKeybrokerError } from '../../src/errors.js';
import { createLogger } from '../../src/output/logger.js';
import {
  classifyAwsError,
  createAwsSecretsManagerSource,
  secretValue,
} from '../../src/sources/aws-secrets-manager.js';
import type { SourceDeps } from '../../src/sources/types.js';
import { type ScriptedAnswer, type ScriptedServer, startScriptedServer } from './scripted-server.js';

const NUM_RUNS = 10_000;
/** Each fetch builds an SDK client and may retry with backoff: 10,000 would take many minutes. */
const FETCH_RUNS = 150;
const PLANTED = 'PLANTED-aws-secret-string-8b3f';
const PLANTED_KEY = 'PLANTED/aws+secret+access+key/0d6e';
const ALLOWED = new Set<number>([ExitCode.config, ExitCode.unreachable, ExitCode.denied, ExitCode.missing]);

function cleanFailure(e: unknown): boolean {
  if (!isKeybrokerError(e) || !ALLOWED.has(e.exitCode)) return false;
  const line = formatErrorLine(e);
  if (!/^keybroker: [\x20-\x7e]+$/.test(line)) return false;
  for (const secret of [PLANTED, PLANTED_KEY]) {
    if (line.includes(secret)) throw new Error(`a value leaked into: ${line}`);
  }
  return true;
}

const config = (over: Partial<AwsSecretsManagerSourceConfig> = {}): AwsSecretsManagerSourceConfig => ({
  type: 'aws-secrets-manager',
  secretId: 'prod/llm',
  region: 'us-east-1',
  ...over,
});
const jsonKeyArb = fc.option(fc.constantFrom('apiKey', 'token', '__proto__', 'constructor', ''), {
  nil: undefined,
});

// ---------------------------------------------------------------------------------------------
// Pure helpers

describe('secretValue', () => {
  const textArb = fc.oneof(
    fc.string(),
    fc.constantFrom(PLANTED, ` ${PLANTED}\n`, '', 'null', '[]', '"x"'),
    fc
      .dictionary(
        fc.constantFrom('apiKey', 'token', 'other', '__proto__'),
        fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constant(PLANTED)),
      )
      .map((o) => JSON.stringify(o)),
  );
  const outArb = fc.record(
    {
      SecretString: fc.oneof(textArb, fc.constant(undefined)),
      SecretBinary: fc.oneof(
        fc.uint8Array({ maxLength: 40 }),
        textArb.map((t) => new TextEncoder().encode(t)),
        fc.constant(undefined),
      ),
    },
    { requiredKeys: [] },
  );

  it('gives a string or exit 5 with a clean line, for any answer and jsonKey', () => {
    fc.assert(
      fc.property(outArb, jsonKeyArb, (out, jsonKey) => {
        try {
          const v = secretValue(
            out,
            config(jsonKey === undefined ? {} : { jsonKey }),
            'secret "prod/llm" in us-east-1',
          );
          return typeof v === 'string';
        } catch (e) {
          return cleanFailure(e) && (e as { exitCode: number }).exitCode === ExitCode.missing;
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('what it gives is either refused by the token check (exit 5) or a usable token', () => {
    fc.assert(
      fc.property(outArb, jsonKeyArb, (out, jsonKey) => {
        let v: string;
        try {
          v = secretValue(out, config(jsonKey === undefined ? {} : { jsonKey }), 'w');
        } catch {
          return true;
        }
        try {
          return /^[\x21-\x7e]{1,16384}$/.test(
            checkTokenValue(v, 'aws-secrets-manager source of profile default'),
          );
        } catch (e) {
          return cleanFailure(e) && (e as { exitCode: number }).exitCode === ExitCode.missing;
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('classifyAwsError', () => {
  const names = fc.oneof(
    fc.constantFrom(
      'ResourceNotFoundException',
      'InvalidRequestException',
      'InvalidParameterException',
      'AccessDeniedException',
      'DecryptionFailure',
      'UnrecognizedClientException',
      'InvalidSignatureException',
      'ExpiredTokenException',
      'CredentialsProviderError',
      'TokenProviderError',
      'ThrottlingException',
      'TimeoutError',
      'AbortError',
      'InternalServiceError',
      'Error',
      '',
    ),
    fc.string(),
  );
  const errArb = fc.record(
    {
      name: names,
      code: fc.oneof(
        fc.constantFrom('ECONNREFUSED', 'ETIMEDOUT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'EPROTO'),
        fc.string(),
      ),
      message: fc.oneof(
        fc.string(),
        fc.constantFrom(PLANTED, `Region is missing ${PLANTED}`, `SSO ${PLANTED}`),
      ),
      $fault: fc.constantFrom('client', 'server'),
      $metadata: fc.record({ httpStatusCode: fc.integer({ min: 100, max: 599 }) }, { requiredKeys: [] }),
      $response: fc.record(
        { statusCode: fc.integer({ min: 100, max: 599 }), body: fc.constant(PLANTED) },
        { requiredKeys: [] },
      ),
      cause: fc.record({ code: fc.string(), message: fc.constant(PLANTED) }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  );

  it('any SDK, credential or network error: exit 2, 3, 4 or 5 with a clean line', () => {
    fc.assert(
      fc.property(
        errArb,
        jsonKeyArb,
        fc.option(fc.constantFrom('dev', 'sso'), { nil: undefined }),
        (e, jsonKey, profile) => {
          const c = config({
            ...(jsonKey === undefined ? {} : { jsonKey }),
            ...(profile === undefined ? {} : { profile }),
          });
          return cleanFailure(
            classifyAwsError(Object.assign(new Error(e.message ?? ''), e), {
              where: 'secret "prod/llm" in us-east-1',
              profileName: profile ?? 'default',
              config: c,
              region: 'us-east-1',
            }),
          );
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('anything thrown at all (not only errors) is classified', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)), (thrown) =>
        cleanFailure(
          classifyAwsError(thrown, {
            where: 'w',
            profileName: 'default',
            config: config(),
            region: 'us-east-1',
          }),
        ),
      ),
      { numRuns: NUM_RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Fetches through the AWS SDK

let server: ScriptedServer;
const saved: Record<string, string | undefined> = {};
const ENV = {
  AWS_ACCESS_KEY_ID: 'AKIAPROPERTYTEST0001',
  AWS_SECRET_ACCESS_KEY: PLANTED_KEY,
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
};
beforeAll(async () => {
  server = await startScriptedServer();
  for (const [k, v] of Object.entries(ENV)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(async () => {
  await server.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const AMZ_JSON = { 'content-type': 'application/x-amz-json-1.1' };
const awsError = (status: number, type: string): ScriptedAnswer => ({
  status,
  headers: AMZ_JSON,
  body: JSON.stringify({ __type: type, message: `User ${PLANTED} is not authorized` }),
});
const errorType = fc.oneof(
  fc.constantFrom(
    'ResourceNotFoundException',
    'AccessDeniedException',
    'InvalidRequestException',
    'InvalidParameterException',
    'DecryptionFailure',
    'UnrecognizedClientException',
    'InvalidSignatureException',
    'ExpiredTokenException',
    'ThrottlingException',
    'InternalServiceError',
    'com.amazonaws.secretsmanager#AccessDeniedException',
  ),
  fc.stringMatching(/^[A-Za-z#.:]{0,30}$/),
);
const secretText = fc.oneof(
  fc.constantFrom(
    PLANTED,
    ` ${PLANTED} `,
    '',
    JSON.stringify({ apiKey: PLANTED }),
    JSON.stringify({ apiKey: 7 }),
  ),
  fc.string(),
);
const answerArb: fc.Arbitrary<ScriptedAnswer> = fc.oneof(
  fc
    .record(
      {
        ARN: fc.constant('arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/llm-AbCdEf'),
        Name: fc.constant('prod/llm'),
        VersionId: fc.oneof(fc.uuid(), fc.jsonValue({ maxDepth: 0 })),
        SecretString: fc.oneof(secretText, fc.jsonValue({ maxDepth: 1 })),
        SecretBinary: fc.oneof(
          secretText.map((t) => Buffer.from(t).toString('base64')),
          fc.string(),
          fc.jsonValue({ maxDepth: 1 }),
        ),
        VersionStages: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    )
    .map((b) => ({ status: 200, headers: AMZ_JSON, body: JSON.stringify(b) })),
  fc
    .tuple(
      fc.constantFrom(400, 403, 404, 429, 500, 503),
      errorType,
      fc.option(errorType, { nil: undefined }),
      fc.constantFrom(PLANTED, `User ${PLANTED} is not authorized`),
    )
    .map(([status, type, header, message]) => ({
      status,
      headers: { ...AMZ_JSON, ...(header === undefined ? {} : { 'x-amzn-errortype': header }) },
      body: JSON.stringify({ __type: type, message, Message: message }),
    })),
  fc
    .tuple(
      fc.constantFrom(200, 400, 403, 500, 502),
      fc.oneof(
        fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
        fc.string(),
        fc.constantFrom(`<html>${PLANTED}</html>`, `{"SecretString":"${PLANTED}`, ''),
      ),
    )
    .map(([status, body]) => ({ status, headers: { 'content-type': 'text/html' }, body })),
  fc.constant({
    status: 200,
    headers: AMZ_JSON,
    body: JSON.stringify({ SecretString: PLANTED }),
    reset: true,
  }),
);

function sdkDeps(lines: string[]): SourceDeps {
  return {
    logger: createLogger({ debug: true, write: (l) => lines.push(l) }),
    memo: { get: async () => undefined, set: async () => {}, delete: async () => {} },
    env: process.env,
    homeDir: '/nonexistent',
    ttlMs: 300_000,
    refreshMarginMs: 120_000,
  };
}

describe('aws-secrets-manager source against random answers', () => {
  it('a string, or exit 2, 3, 4 or 5 with a clean line; no secret in any --debug line', {
    timeout: 600_000,
  }, async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(answerArb, { minLength: 1, maxLength: 3 }),
        jsonKeyArb,
        async (answers, jsonKey) => {
          let i = 0;
          server.answer = () => answers[i++ % answers.length]!;
          const lines: string[] = [];
          const source = createAwsSecretsManagerSource(
            config({ endpoint: server.url, ...(jsonKey === undefined ? {} : { jsonKey }) }),
            sdkDeps(lines),
          );
          let ok: boolean;
          try {
            const { value } = await source.getToken({
              signal: new AbortController().signal,
              now: () => Date.now(),
              deadlineMs: Date.now() + 8_000,
              forceFresh: false,
            });
            ok = typeof value === 'string';
            seen.add('token');
          } catch (e) {
            ok = cleanFailure(e);
            if (isKeybrokerError(e)) seen.add(`exit ${e.exitCode}`);
          }
          const leaked = lines.find((l) => l.includes(PLANTED) || l.includes(PLANTED_KEY));
          if (leaked) throw new Error(`a --debug line shows a secret: ${leaked}`);
          return ok;
        },
      ),
      {
        numRuns: FETCH_RUNS,
        // One case per outcome, so the check below never depends on the random draw.
        examples: [
          [[{ status: 200, headers: AMZ_JSON, body: JSON.stringify({ SecretString: PLANTED }) }], undefined],
          [[awsError(400, 'InvalidParameterException')], undefined],
          [
            [{ status: 200, headers: { 'content-type': 'text/html' }, body: `<html>${PLANTED}</html>` }],
            undefined,
          ],
          [[awsError(400, 'AccessDeniedException')], undefined],
          [[awsError(400, 'ResourceNotFoundException')], undefined],
        ],
      },
    );
    // The random answers reach every outcome, so the property says something about each.
    expect([...seen].sort()).toEqual(['exit 2', 'exit 3', 'exit 4', 'exit 5', 'token']);
  });
});
