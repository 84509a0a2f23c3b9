/**
 * The local Secrets Manager's SigV4 verifier: first against the worked examples of AWS's
 * signing documentation, then over raw HTTP (tampered body, skewed clock, wrong scope, no
 * signature), and the response and error shapes it answers with.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalRequest,
  DEFAULT_CREDENTIALS,
  type SecretsManagerServer,
  signingKey,
  sigV4Signature,
  startSecretsManagerServer,
} from '../servers/secrets-manager-server.js';

describe('SigV4 against AWS documentation examples', () => {
  it('IAM ListUsers (general reference: canonical request hash, signing key, signature)', () => {
    const headers: Record<string, string[]> = {
      'content-type': ['application/x-www-form-urlencoded; charset=utf-8'],
      host: ['iam.amazonaws.com'],
      'x-amz-date': ['20150830T123600Z'],
    };
    const input = {
      method: 'GET',
      path: '/',
      query: 'Action=ListUsers&Version=2010-05-08',
      headers: (n: string) => headers[n] ?? [],
      signedHeaders: ['content-type', 'host', 'x-amz-date'],
      payload: '',
      amzDate: '20150830T123600Z',
      region: 'us-east-1',
      service: 'iam',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    };
    expect(createHash('sha256').update(canonicalRequest(input)).digest('hex')).toBe(
      'f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59',
    );
    expect(signingKey(input.secretAccessKey, '20150830', 'us-east-1', 'iam').toString('hex')).toBe(
      'c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9',
    );
    expect(sigV4Signature(input)).toBe('5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7');
  });

  it('S3 GET Object (S3 API reference, header-based auth example)', () => {
    const headers: Record<string, string[]> = {
      host: ['examplebucket.s3.amazonaws.com'],
      range: ['bytes=0-9'],
      'x-amz-content-sha256': ['e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
      'x-amz-date': ['20130524T000000Z'],
    };
    const input = {
      method: 'GET',
      path: '/test.txt',
      query: '',
      headers: (n: string) => headers[n] ?? [],
      signedHeaders: ['host', 'range', 'x-amz-content-sha256', 'x-amz-date'],
      payload: '',
      amzDate: '20130524T000000Z',
      region: 'us-east-1',
      service: 's3',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    };
    // S3 is the one service that does not encode the path a second time.
    expect(sigV4Signature(input, false)).toBe(
      'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });
});

describe('the local server over raw HTTP', () => {
  let server: SecretsManagerServer;
  beforeAll(async () => {
    server = await startSecretsManagerServer();
    server.putSecret('raw/secret', 'raw-token-value', { versionId: 'v1' });
  });
  afterAll(async () => {
    await server.close();
  });

  function amzDateOf(ms: number): string {
    return new Date(ms)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
  }

  /** Signs like the SDK does (host, x-amz-date, x-amz-target, content-type signed), then lets a test tamper. */
  async function call(
    body: string,
    opts: { dateMs?: number; region?: string; service?: string; sendBody?: string; noAuth?: boolean } = {},
  ) {
    const host = `127.0.0.1:${server.port}`;
    const amzDate = amzDateOf(opts.dateMs ?? Date.now());
    const region = opts.region ?? 'us-east-1';
    const service = opts.service ?? 'secretsmanager';
    const headers: Record<string, string> = {
      'content-type': 'application/x-amz-json-1.1',
      host,
      'x-amz-date': amzDate,
      'x-amz-target': 'secretsmanager.GetSecretValue',
    };
    const signed = Object.keys(headers).sort();
    const signature = sigV4Signature({
      method: 'POST',
      path: '/',
      query: '',
      headers: (n) => (headers[n] === undefined ? [] : [headers[n]!]),
      signedHeaders: signed,
      payload: body,
      amzDate,
      region,
      service,
      secretAccessKey: DEFAULT_CREDENTIALS.secretAccessKey,
    });
    const auth = `AWS4-HMAC-SHA256 Credential=${DEFAULT_CREDENTIALS.accessKeyId}/${amzDate.slice(0, 8)}/${region}/${service}/aws4_request, SignedHeaders=${signed.join(';')}, Signature=${signature}`;
    const { host: _h, ...sendHeaders } = headers;
    const res = await fetch(`${server.url}/`, {
      method: 'POST',
      headers: opts.noAuth ? sendHeaders : { ...sendHeaders, authorization: auth },
      body: opts.sendBody ?? body,
    });
    return { status: res.status, errorType: res.headers.get('x-amzn-errortype'), json: await res.json() };
  }

  it("answers a correctly signed GetSecretValue with AWS's response shape", async () => {
    const r = await call(JSON.stringify({ SecretId: 'raw/secret' }));
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      ARN: server.secret('raw/secret').arn,
      Name: 'raw/secret',
      VersionId: 'v1',
      VersionStages: ['AWSCURRENT'],
      CreatedDate: expect.any(Number),
      SecretString: 'raw-token-value',
    });
    expect(server.secret('raw/secret').arn).toMatch(
      /^arn:aws:secretsmanager:us-east-1:123456789012:secret:raw\/secret-[A-Za-z0-9]{6}$/,
    );
  });

  it('rejects a body changed after signing', async () => {
    const r = await call(JSON.stringify({ SecretId: 'raw/secret' }), {
      sendBody: JSON.stringify({ SecretId: 'raw/other' }),
    });
    expect(r).toEqual({
      status: 400,
      errorType: 'InvalidSignatureException:',
      json: {
        __type: 'InvalidSignatureException',
        message:
          'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
      },
    });
  });

  it('rejects a request dated outside the 15-minute window', async () => {
    const r = await call(JSON.stringify({ SecretId: 'raw/secret' }), { dateMs: Date.now() - 20 * 60_000 });
    expect([r.status, r.json.__type]).toEqual([400, 'InvalidSignatureException']);
  });

  it('rejects a signature scoped to another service', async () => {
    const r = await call(JSON.stringify({ SecretId: 'raw/secret' }), { service: 'kms' });
    expect([r.status, r.json.__type]).toEqual([400, 'InvalidSignatureException']);
  });

  it('rejects an unsigned request', async () => {
    const r = await call(JSON.stringify({ SecretId: 'raw/secret' }), { noAuth: true });
    expect([r.status, r.errorType, r.json.__type]).toEqual([
      400,
      'MissingAuthenticationTokenException:',
      'MissingAuthenticationTokenException',
    ]);
  });

  it('uses Message (capital M) for service errors, as Secrets Manager does', async () => {
    const r = await call(JSON.stringify({ SecretId: 'raw/none' }));
    expect(r).toEqual({
      status: 400,
      errorType: 'ResourceNotFoundException:',
      json: {
        __type: 'ResourceNotFoundException',
        Message: "Secrets Manager can't find the specified secret.",
      },
    });
  });
});
