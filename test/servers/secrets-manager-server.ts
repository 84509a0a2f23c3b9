/**
 * A local AWS Secrets Manager on 127.0.0.1 that speaks the JSON 1.1 protocol
 * (`POST /`, `X-Amz-Target: secretsmanager.GetSecretValue`,
 * `Content-Type: application/x-amz-json-1.1`) with AWS's response and error shapes, and that
 * verifies each request's SigV4 signature against known test credentials, as AWS does: an
 * unknown access key is UnrecognizedClientException, a wrong secret key, region, service or
 * clock is InvalidSignatureException. It counts requests and can be told to throttle, fail
 * with 500/503, hang, reset the connection or answer garbage. For the credential chain it also
 * answers SSO GetRoleCredentials, STS AssumeRoleWithWebIdentity and a container credential
 * endpoint.
 *
 * SigV4 follows AWS's "Create a signed AWS API request" steps: canonical request, string to
 * sign, HMAC chain kDate → kRegion → kService → kSigning, hex signature.
 */
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export const TEST_ACCOUNT = '123456789012';

export interface TestCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** The server answers ExpiredTokenException for these credentials. */
  expired?: boolean;
  /** IAM user name in AccessDenied messages. */
  user?: string;
}

export const DEFAULT_CREDENTIALS: TestCredentials = {
  accessKeyId: 'AKIAKEYBROKERTEST01',
  secretAccessKey: 'kbTestSecretKey/0123456789abcdefghijklmnopq',
  user: 'keybroker-test',
};

export interface SecretVersion {
  versionId: string;
  stages: string[];
  secretString?: string;
  secretBinary?: Uint8Array;
  createdDateMs: number;
}

export interface StoredSecret {
  name: string;
  arn: string;
  versions: SecretVersion[];
  /** Access keys denied GetSecretValue on this secret (AccessDeniedException). */
  deniedKeys: Set<string>;
  /** KMS refuses to decrypt (DecryptionFailure). */
  kmsBroken: boolean;
  /** Scheduled for deletion (InvalidRequestException). */
  deleted: boolean;
}

export type Fault = 'throttle' | '500' | '503' | 'hang' | 'garbage' | 'reset';

export interface RequestRecord {
  target: string | undefined;
  secretId: string | undefined;
  accessKeyId: string | undefined;
  outcome: string;
}

export interface SecretsManagerServer {
  readonly url: string;
  readonly port: number;
  readonly region: string;
  /** Every HTTP request received. */
  readonly requests: RequestRecord[];
  /** GetSecretValue requests received (whatever their outcome). */
  getSecretValueCount(): number;
  /** Creates or rotates a secret: the new version becomes AWSCURRENT, the old AWSPREVIOUS. Returns its VersionId. */
  putSecret(name: string, value: string | { binary: Uint8Array }, options?: { versionId?: string }): string;
  secret(name: string): StoredSecret;
  /** Adds credentials the server accepts. */
  addCredentials(c: TestCredentials): void;
  /** Serves these (session) credentials at CONTAINER_CREDENTIALS_PATH and accepts them. */
  serveContainerCredentials(c: TestCredentials): void;
  /** Answers SSO GetRoleCredentials for this bearer token (the `aws sso login` cache) with these credentials. */
  addSsoLogin(accessToken: string, c: TestCredentials): void;
  /** Answers STS AssumeRoleWithWebIdentity for this web identity token with these credentials. */
  addWebIdentity(token: string, c: TestCredentials): void;
  /** The next `times` requests (default: all) meet this fault; `undefined` clears it. */
  setFault(fault: Fault | undefined, times?: number): void;
  close(): Promise<void>;
}

export interface ServerOptions {
  region?: string;
  credentials?: TestCredentials[];
  /** Allowed clock skew for X-Amz-Date, as AWS (15 minutes). */
  maxSkewMs?: number;
  /** Serve https with this key and certificate (the network tests' TLS endpoint). */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

const JSON_CT = 'application/x-amz-json-1.1';
/** Path of the container credential endpoint this server also serves. */
export const CONTAINER_CREDENTIALS_PATH = '/container-credentials';

export async function startSecretsManagerServer(options: ServerOptions = {}): Promise<SecretsManagerServer> {
  const region = options.region ?? 'us-east-1';
  const maxSkewMs = options.maxSkewMs ?? 15 * 60_000;
  const creds = new Map<string, TestCredentials>();
  for (const c of options.credentials ?? [DEFAULT_CREDENTIALS]) creds.set(c.accessKeyId, c);
  const secrets = new Map<string, StoredSecret>();
  const requests: RequestRecord[] = [];
  const sockets = new Set<Socket>();
  let fault: Fault | undefined;
  let faultLeft = 0;
  let containerCredentials: TestCredentials | undefined;
  const ssoLogins = new Map<string, TestCredentials>();
  const webIdentities = new Map<string, TestCredentials>();

  const arnFor = (name: string) => {
    // AWS appends a dash and six random characters to the name.
    const suffix = createHash('sha256').update(name).digest('base64url').replace(/[-_]/g, 'x').slice(0, 6);
    return `arn:aws:secretsmanager:${region}:${TEST_ACCOUNT}:secret:${name}-${suffix}`;
  };

  const createServer = (listener: http.RequestListener) =>
    options.tls
      ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, listener)
      : http.createServer(listener);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const record: RequestRecord = {
        target: header(req, 'x-amz-target'),
        secretId: undefined,
        accessKeyId: undefined,
        outcome: 'pending',
      };
      requests.push(record);
      try {
        const parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
        if (typeof parsed.SecretId === 'string') record.secretId = parsed.SecretId;
      } catch {
        // handled below as SerializationException
      }
      handle(req, res, body, record);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function send(res: http.ServerResponse, status: number, payload: unknown, errorType?: string) {
    const text = JSON.stringify(payload);
    const headers: Record<string, string> = {
      'Content-Type': JSON_CT,
      'Content-Length': String(Buffer.byteLength(text)),
      'x-amzn-RequestId': randomUUID(),
      Date: new Date().toUTCString(),
    };
    if (errorType) headers['x-amzn-ErrorType'] = `${errorType}:`;
    res.writeHead(status, headers);
    res.end(text);
  }

  /** AWS's JSON error shape: `__type` plus `message` (auth/throttling) or `Message` (service errors). */
  function fail(
    res: http.ServerResponse,
    record: RequestRecord,
    status: number,
    type: string,
    message: string,
    lowerCaseKey = false,
  ) {
    record.outcome = type;
    send(res, status, { __type: type, [lowerCaseKey ? 'message' : 'Message']: message }, type);
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, record: RequestRecord) {
    if (fault && faultLeft > 0) {
      faultLeft--;
      const f = fault;
      if (faultLeft === 0) fault = undefined;
      record.outcome = `fault:${f}`;
      switch (f) {
        case 'hang':
          return; // never answers; close() destroys the socket
        case 'reset':
          req.socket.destroy();
          return;
        case 'garbage':
          res.writeHead(200, { 'Content-Type': JSON_CT });
          res.end('<html><body>Proxy login required</body></html>');
          return;
        case 'throttle':
          return fail(res, record, 400, 'ThrottlingException', 'Rate exceeded', true);
        case '500':
          return fail(res, record, 500, 'InternalServiceError', 'An error occurred on the server side.');
        case '503':
          return fail(res, record, 503, 'ServiceUnavailable', 'Service Unavailable', true);
      }
    }

    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/federation/credentials') {
      // IAM Identity Center (SSO) GetRoleCredentials, for AWS_ENDPOINT_URL_SSO.
      const c = ssoLogins.get(header(req, 'x-amz-sso_bearer_token') ?? '');
      if (!c || url.searchParams.get('account_id') !== TEST_ACCOUNT || !url.searchParams.get('role_name')) {
        return fail(res, record, 401, 'UnauthorizedException', 'Session token not found or invalid', true);
      }
      record.outcome = 'sso-credentials';
      return send(res, 200, {
        roleCredentials: {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
          expiration: Date.now() + 3_600_000,
        },
      });
    }
    if (
      req.method === 'POST' &&
      (header(req, 'content-type') ?? '').startsWith('application/x-www-form-urlencoded')
    ) {
      // STS AssumeRoleWithWebIdentity (query protocol, unsigned), for AWS_ENDPOINT_URL_STS.
      return stsWebIdentity(res, new URLSearchParams(body.toString('utf8')), record);
    }
    if (req.method === 'GET' && req.url === CONTAINER_CREDENTIALS_PATH) {
      // The ECS/EKS container credential endpoint, for AWS_CONTAINER_CREDENTIALS_FULL_URI.
      const c = containerCredentials;
      if (!c) return fail(res, record, 404, 'NotFound', 'no container credentials', true);
      record.outcome = 'container-credentials';
      return send(res, 200, {
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        Token: c.sessionToken,
        Expiration: new Date(Date.now() + 3_600_000).toISOString(),
      });
    }
    if (req.method !== 'POST' || (req.url ?? '/') !== '/') {
      return fail(res, record, 404, 'UnknownOperationException', 'Unknown operation', true);
    }
    const auth = verifySignature(req, body, record);
    if (auth) return fail(res, record, auth.status, auth.type, auth.message, true);

    const target = header(req, 'x-amz-target');
    if (target !== 'secretsmanager.GetSecretValue') {
      return fail(res, record, 400, 'UnknownOperationException', '', true);
    }
    if (!(header(req, 'content-type') ?? '').startsWith(JSON_CT)) {
      return fail(res, record, 400, 'SerializationException', 'Content type not supported', true);
    }
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8'));
    } catch {
      return fail(
        res,
        record,
        400,
        'SerializationException',
        'Start of structure or map found where not expected',
        true,
      );
    }
    const secretId = input.SecretId;
    if (typeof secretId !== 'string' || secretId.length === 0) {
      return fail(
        res,
        record,
        400,
        'ValidationException',
        "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null",
        true,
      );
    }
    const secret = findSecret(secretId);
    const keyId = record.accessKeyId ?? '';
    if (secret?.deniedKeys.has(keyId) || (!secret && secretId.startsWith('denied/'))) {
      const user = creds.get(keyId)?.user ?? 'unknown';
      return fail(
        res,
        record,
        400,
        'AccessDeniedException',
        `User: arn:aws:iam::${TEST_ACCOUNT}:user/${user} is not authorized to perform: secretsmanager:GetSecretValue on resource: ${secretId} because no identity-based policy allows the secretsmanager:GetSecretValue action`,
      );
    }
    if (!secret) {
      return fail(
        res,
        record,
        400,
        'ResourceNotFoundException',
        "Secrets Manager can't find the specified secret.",
      );
    }
    if (secret.deleted) {
      return fail(
        res,
        record,
        400,
        'InvalidRequestException',
        "You can't perform this operation on the secret because it was marked for deletion.",
      );
    }
    const versionId = typeof input.VersionId === 'string' ? input.VersionId : undefined;
    const versionStage = typeof input.VersionStage === 'string' ? input.VersionStage : undefined;
    let version: SecretVersion | undefined;
    if (versionId !== undefined) {
      version = secret.versions.find((v) => v.versionId === versionId);
      if (!version) {
        return fail(
          res,
          record,
          400,
          'ResourceNotFoundException',
          `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
        );
      }
      if (versionStage !== undefined && !version.stages.includes(versionStage)) {
        return fail(
          res,
          record,
          400,
          'InvalidRequestException',
          'You provided a VersionStage that is not associated to the provided VersionId.',
        );
      }
    } else {
      const stage = versionStage ?? 'AWSCURRENT';
      version = secret.versions.find((v) => v.stages.includes(stage));
      if (!version) {
        return fail(
          res,
          record,
          400,
          'ResourceNotFoundException',
          `Secrets Manager can't find the specified secret value for staging label: ${stage}`,
        );
      }
    }
    if (secret.kmsBroken) {
      return fail(
        res,
        record,
        400,
        'DecryptionFailure',
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
      );
    }
    record.outcome = 'ok';
    const out: Record<string, unknown> = {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.versionId,
      VersionStages: version.stages,
      // AWS sends epoch seconds with a fraction.
      CreatedDate: version.createdDateMs / 1000,
    };
    if (version.secretString !== undefined) out.SecretString = version.secretString;
    if (version.secretBinary !== undefined)
      out.SecretBinary = Buffer.from(version.secretBinary).toString('base64');
    send(res, 200, out);
  }

  function stsWebIdentity(res: http.ServerResponse, form: URLSearchParams, record: RequestRecord) {
    const xml = (status: number, text: string) => {
      res.writeHead(status, { 'Content-Type': 'text/xml', 'x-amzn-RequestId': randomUUID() });
      res.end(text);
    };
    const c = webIdentities.get(form.get('WebIdentityToken') ?? '');
    if (form.get('Action') !== 'AssumeRoleWithWebIdentity' || !c || !form.get('RoleArn')) {
      record.outcome = 'InvalidIdentityToken';
      return xml(
        400,
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key from your identity provider</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
      );
    }
    record.outcome = 'sts-web-identity';
    const session = form.get('RoleSessionName') ?? 'session';
    xml(
      200,
      `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>${c.accessKeyId}</AccessKeyId><SecretAccessKey>${c.secretAccessKey}</SecretAccessKey><SessionToken>${c.sessionToken ?? ''}</SessionToken><Expiration>${new Date(Date.now() + 3_600_000).toISOString()}</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::${TEST_ACCOUNT}:assumed-role/keybroker/${session}</Arn><AssumedRoleId>AROAKEYBROKER:${session}</AssumedRoleId></AssumedRoleUser><SubjectFromWebIdentityToken>system:serviceaccount:default:keybroker</SubjectFromWebIdentityToken></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
    );
  }

  function findSecret(id: string): StoredSecret | undefined {
    for (const s of secrets.values()) {
      if (s.name === id || s.arn === id) return s;
      // A partial ARN (without the random suffix) also finds the secret.
      if (id.startsWith('arn:') && s.arn.startsWith(`${id}-`) && s.arn.length === id.length + 7) return s;
    }
    return undefined;
  }

  type AuthFailure = { status: number; type: string; message: string };

  function verifySignature(
    req: http.IncomingMessage,
    body: Buffer,
    record: RequestRecord,
  ): AuthFailure | undefined {
    const authz = header(req, 'authorization');
    if (!authz) {
      return {
        status: 400,
        type: 'MissingAuthenticationTokenException',
        message: 'Missing Authentication Token',
      };
    }
    const parsed = parseAuthorization(authz);
    if (!parsed) {
      return {
        status: 400,
        type: 'IncompleteSignatureException',
        message: `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.`,
      };
    }
    const [keyId, scopeDate, scopeRegion, scopeService, terminator] = parsed.credential.split('/');
    record.accessKeyId = keyId;
    const known = keyId ? creds.get(keyId) : undefined;
    if (!known) {
      return {
        status: 400,
        type: 'UnrecognizedClientException',
        message: 'The security token included in the request is invalid.',
      };
    }
    const token = header(req, 'x-amz-security-token');
    if ((known.sessionToken ?? undefined) !== token) {
      return {
        status: 400,
        type: 'UnrecognizedClientException',
        message: 'The security token included in the request is invalid.',
      };
    }
    if (known.expired) {
      return {
        status: 400,
        type: 'ExpiredTokenException',
        message: 'The security token included in the request is expired',
      };
    }
    const amzDate = header(req, 'x-amz-date') ?? '';
    const dateMs = parseAmzDate(amzDate);
    if (dateMs === undefined) {
      return {
        status: 400,
        type: 'IncompleteSignatureException',
        message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
      };
    }
    if (Math.abs(Date.now() - dateMs) > maxSkewMs) {
      return {
        status: 400,
        type: 'InvalidSignatureException',
        message: 'Signature expired: the request time is too skewed.',
      };
    }
    if (scopeRegion !== region) {
      return {
        status: 400,
        type: 'InvalidSignatureException',
        message: `Credential should be scoped to a valid region. `,
      };
    }
    if (
      scopeService !== 'secretsmanager' ||
      terminator !== 'aws4_request' ||
      scopeDate !== amzDate.slice(0, 8)
    ) {
      return {
        status: 400,
        type: 'InvalidSignatureException',
        message: "Credential should be scoped to correct service: 'secretsmanager'. ",
      };
    }
    const signed = parsed.signedHeaders.split(';');
    if (
      !signed.includes('host') ||
      !signed.includes('x-amz-date') ||
      (token !== undefined && !signed.includes('x-amz-security-token'))
    ) {
      return { status: 400, type: 'InvalidSignatureException', message: 'Required headers are not signed.' };
    }
    const expected = sigV4Signature({
      method: req.method ?? 'POST',
      path: (req.url ?? '/').split('?')[0] ?? '/',
      query: (req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?') + 1) : '',
      headers: (name) => headerAll(req, name),
      signedHeaders: signed,
      payload: body,
      amzDate,
      region: scopeRegion,
      service: scopeService,
      secretAccessKey: known.secretAccessKey,
    });
    const a = Buffer.from(expected, 'utf8');
    const b = Buffer.from(parsed.signature, 'utf8');
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      return {
        status: 400,
        type: 'InvalidSignatureException',
        message:
          'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
      };
    }
    return undefined;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    region,
    requests,
    getSecretValueCount: () => requests.filter((r) => r.target === 'secretsmanager.GetSecretValue').length,
    putSecret(name, value, opts = {}) {
      let s = secrets.get(name);
      if (!s) {
        s = {
          name,
          arn: arnFor(name),
          versions: [],
          deniedKeys: new Set(),
          kmsBroken: false,
          deleted: false,
        };
        secrets.set(name, s);
      }
      for (const v of s.versions) {
        v.stages = v.stages.filter((st) => st !== 'AWSPREVIOUS');
        if (v.stages.includes('AWSCURRENT'))
          v.stages = v.stages.map((st) => (st === 'AWSCURRENT' ? 'AWSPREVIOUS' : st));
      }
      const versionId = opts.versionId ?? randomUUID();
      const v: SecretVersion = { versionId, stages: ['AWSCURRENT'], createdDateMs: Date.now() };
      if (typeof value === 'string') v.secretString = value;
      else v.secretBinary = value.binary;
      s.versions.push(v);
      return versionId;
    },
    secret(name) {
      const s = secrets.get(name);
      if (!s) throw new Error(`no test secret ${name}`);
      return s;
    },
    addCredentials(c) {
      creds.set(c.accessKeyId, c);
    },
    serveContainerCredentials(c) {
      creds.set(c.accessKeyId, c);
      containerCredentials = c;
    },
    addSsoLogin(accessToken, c) {
      creds.set(c.accessKeyId, c);
      ssoLogins.set(accessToken, c);
    },
    addWebIdentity(token, c) {
      creds.set(c.accessKeyId, c);
      webIdentities.set(token, c);
    },
    setFault(f, times = Number.POSITIVE_INFINITY) {
      fault = f;
      faultLeft = f === undefined ? 0 : times;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function headerAll(req: http.IncomingMessage, name: string): string[] {
  const out: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

function parseAuthorization(
  v: string,
): { credential: string; signedHeaders: string; signature: string } | undefined {
  const m = /^AWS4-HMAC-SHA256\s+(.*)$/.exec(v.trim());
  if (!m) return undefined;
  const fields = new Map<string, string>();
  for (const part of m[1]!.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) fields.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signedHeaders || !signature) return undefined;
  return { credential, signedHeaders, signature };
}

function parseAmzDate(v: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
}

/** RFC 3986 encoding as SigV4 wants it: everything but unreserved characters. */
function uriEncode(s: string, keepSlash: boolean): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export interface SigV4Input {
  method: string;
  /** The raw request path, still percent-encoded as sent. */
  path: string;
  /** The raw query string without `?`. */
  query: string;
  /** All values of a (lower-case) header, in the order received. */
  headers: (lowerCaseName: string) => string[];
  signedHeaders: string[];
  payload: Buffer | string;
  amzDate: string;
  region: string;
  service: string;
  secretAccessKey: string;
}

/** The canonical request of SigV4 (non-S3 services: path segments encoded twice). */
export function canonicalRequest(input: SigV4Input, doubleEncodePath = true): string {
  const segments = input.path.split('/').map((seg) => {
    const decoded = decodeURIComponent(seg);
    const once = uriEncode(decoded, false);
    return doubleEncodePath ? uriEncode(once, false) : once;
  });
  const canonicalUri = segments.join('/') || '/';
  const query = input.query
    ? input.query
        .split('&')
        .filter(Boolean)
        .map((kv) => {
          const i = kv.indexOf('=');
          const k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
          const v = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
          return [uriEncode(k, false), uriEncode(v, false)] as const;
        })
        .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join('&')
    : '';
  const sorted = [...input.signedHeaders].sort();
  const canonicalHeaders = sorted
    .map(
      (h) =>
        `${h}:${input
          .headers(h)
          .map((v) => v.trim().replace(/\s+/g, ' '))
          .join(',')}\n`,
    )
    .join('');
  const payloadHash = createHash('sha256').update(input.payload).digest('hex');
  return [
    input.method.toUpperCase(),
    canonicalUri,
    query,
    canonicalHeaders,
    sorted.join(';'),
    payloadHash,
  ].join('\n');
}

export function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  const kDate = createHmac('sha256', `AWS4${secretAccessKey}`).update(date).digest();
  const kRegion = createHmac('sha256', kDate).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  return createHmac('sha256', kService).update('aws4_request').digest();
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join(
    '\n',
  );
}

export function sigV4Signature(input: SigV4Input, doubleEncodePath = true): string {
  const date = input.amzDate.slice(0, 8);
  const scope = `${date}/${input.region}/${input.service}/aws4_request`;
  const sts = stringToSign(input.amzDate, scope, canonicalRequest(input, doubleEncodePath));
  return createHmac('sha256', signingKey(input.secretAccessKey, date, input.region, input.service))
    .update(sts)
    .digest('hex');
}
