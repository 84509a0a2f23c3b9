/**
 * Property tests for the Vault sources' response handling (src/sources/vault-client.ts,
 * vault.ts, vault-identity.ts). Whatever Vault, a proxy or a broken network answers, a fetch
 * gives a non-empty string or a KeybrokerError with exit 3 (unreachable), 4 (denied) or 5
 * (missing); its stderr line is one printable line that never shows a value from the answer,
 * and no --debug line shows the secret.
 *
 * The pure helpers run 10,000 cases each. The fetches go through the real node-vault client
 * to a scripted server on 127.0.0.1, so they run fewer cases (see FETCH_RUNS).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultIdentitySourceConfig, VaultSourceConfig } from '../../src/config/types.js';
import { ExitCode, formatErrorLine, isKeybrokerError } from '../../src/errors.js';
import { createVaultSource } from '../../src/sources/vault.js';
import { dataOf, mapVaultError, type VaultOperation } from '../../src/sources/vault-client.js';
import { createVaultIdentitySource, decodeJwtPayload } from '../../src/sources/vault-identity.js';
import { request, testDeps } from '../integration/vault-helpers.js';
import { type ScriptedAnswer, type ScriptedServer, startScriptedServer } from './scripted-server.js';

const NUM_RUNS = 10_000;
/** Each fetch is a few HTTP round trips through node-vault and axios: 10,000 would take minutes. */
const FETCH_RUNS = 300;
const PLANTED = 'PLANTED-vault-answer-5e2a';
const VAULT_TOKEN = 'hvs.PLANTED-vault-token-0c91';

const ALLOWED = new Set<number>([ExitCode.unreachable, ExitCode.denied, ExitCode.missing]);
const LINE = /^keybroker: [\x20-\x7e]+$/;

function cleanFailure(e: unknown): boolean {
  if (!isKeybrokerError(e) || !ALLOWED.has(e.exitCode)) return false;
  const line = formatErrorLine(e);
  if (!LINE.test(line)) return false;
  if (line.includes(PLANTED) || line.includes(VAULT_TOKEN)) throw new Error(`a value leaked into: ${line}`);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Pure helpers

const opArb: fc.Arbitrary<VaultOperation> = fc.record({
  kind: fc.constantFrom('login', 'preflight', 'read', 'identity'),
  what: fc.constantFrom(
    'vault kv secret/llm field token',
    'vault approle login',
    'vault identity token for role r',
  ),
  apiPath: fc.constantFrom('secret/data/llm', 'auth/approle/login', 'identity/oidc/token/r'),
});
const plantedText = fc.oneof(
  fc.string(),
  fc.constantFrom(PLANTED, `${PLANTED}\nline2`, 'Vault is sealed', 'permission denied', 'role "x" not found'),
);
const statusErrorArb = fc.record({
  response: fc.record(
    {
      statusCode: fc.oneof(fc.integer({ min: 100, max: 599 }), fc.constantFrom(403, 404, 412, 429, 503)),
      body: fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        plantedText,
        fc.record({
          errors: fc.oneof(
            fc.array(fc.oneof(plantedText, fc.jsonValue({ maxDepth: 1 })), { maxLength: 3 }),
            fc.jsonValue({ maxDepth: 1 }),
          ),
        }),
      ),
    },
    { requiredKeys: ['statusCode'] },
  ),
  message: plantedText,
});
const networkErrorArb = fc.record(
  {
    code: fc.oneof(
      fc.constantFrom(
        'ECONNREFUSED',
        'ECONNRESET',
        'ENOTFOUND',
        'EAI_AGAIN',
        'ETIMEDOUT',
        'ECONNABORTED',
        'ERR_CANCELED',
        'EPIPE',
        'ERR_BAD_RESPONSE',
        'DEPTH_ZERO_SELF_SIGNED_CERT',
        'ERR_TLS_CERT_ALTNAME_INVALID',
        'EPROTO',
      ),
      fc.stringMatching(/^E[A-Z_]{1,12}$/),
    ),
    message: plantedText,
    isAxiosError: fc.boolean(),
  },
  { requiredKeys: ['code'] },
);

describe('mapVaultError', () => {
  it('any HTTP error status: exit 3, 4 or 5, one clean line without the body', () => {
    fc.assert(
      fc.property(statusErrorArb, opArb, (e, op) =>
        cleanFailure(
          mapVaultError(e, op, { address: 'https://vault.example:8200' }, 'token from VAULT_TOKEN'),
        ),
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('any network error: exit 3 with one clean line, or rethrown untouched when it is not a network error', () => {
    fc.assert(
      fc.property(networkErrorArb, opArb, (e, op) => {
        const err = Object.assign(new Error(e.message ?? ''), e);
        try {
          return (
            cleanFailure(mapVaultError(err, op, { address: 'https://vault.example:8200' }, 'origin')) && true
          );
        } catch (thrown) {
          return thrown === err;
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('an axios error without a code is still exit 3', () => {
    fc.assert(
      fc.property(plantedText, opArb, (message, op) => {
        const err = Object.assign(new Error(message), { isAxiosError: true });
        const mapped = mapVaultError(err, op, { address: 'https://vault.example:8200' }, 'origin');
        return cleanFailure(mapped) && mapped.exitCode === ExitCode.unreachable;
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('dataOf and decodeJwtPayload', () => {
  it('dataOf gives the data object or undefined for any body', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.record({ data: fc.jsonValue({ maxDepth: 2 }) })),
        (body) => {
          const d = dataOf(body);
          return d === undefined || (typeof d === 'object' && d !== null && !Array.isArray(d));
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
  const jwtLike = fc.oneof(
    fc.string(),
    fc
      .tuple(fc.string(), fc.jsonValue({ maxDepth: 2 }), fc.string())
      .map(([h, p, s]) => `${b64(h)}.${b64(JSON.stringify(p))}.${b64(s)}`),
    fc.tuple(fc.string(), fc.string(), fc.string()).map((parts) => parts.join('.')),
    fc
      .tuple(fc.string(), fc.uint8Array({ maxLength: 40 }))
      .map(([h, bytes]) => `${b64(h)}.${Buffer.from(bytes).toString('base64url')}.sig`),
  );
  it('decodeJwtPayload gives a plain object or undefined for any string, and never throws', () => {
    fc.assert(
      fc.property(jwtLike, (t) => {
        const p = decodeJwtPayload(t);
        return p === undefined || (typeof p === 'object' && p !== null && !Array.isArray(p));
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Fetches through node-vault

let server: ScriptedServer;
beforeAll(async () => {
  server = await startScriptedServer();
});
afterAll(async () => {
  await server.close();
});

const json = (status: number, body: unknown): ScriptedAnswer => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});
const statusArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(200) },
  { weight: 3, arbitrary: fc.constantFrom(204, 302, 400, 401, 403, 404, 405, 412, 429, 500, 502, 503) },
);
const valueArb = fc.oneof(
  fc.constantFrom(PLANTED, ` ${PLANTED} `, '', '   ', null, 42, true, [PLANTED], { v: PLANTED }),
  fc.string(),
);
/** Answers shaped like Vault's, partly right and partly wrong, and plain garbage. */
const answerArb: fc.Arbitrary<ScriptedAnswer> = fc.oneof(
  fc.tuple(statusArb, fc.jsonValue({ maxDepth: 3 })).map(([s, b]) => json(s, b)),
  fc
    .tuple(
      statusArb,
      fc.record({
        errors: fc.array(
          fc.oneof(fc.string(), fc.constantFrom(PLANTED, 'Vault is sealed', 'permission denied')),
        ),
      }),
    )
    .map(([s, b]) => json(s, b)),
  fc
    .record(
      {
        path: fc.oneof(fc.constantFrom('secret/', 'secret', '', 'other/', 'secret/llm/'), fc.string()),
        options: fc.oneof(
          fc.record({ version: fc.oneof(fc.constantFrom('1', '2', 2, 1), fc.jsonValue({ maxDepth: 0 })) }),
          fc.jsonValue({ maxDepth: 1 }),
        ),
        type: fc.constant('kv'),
      },
      { requiredKeys: [] },
    )
    .map((data) => json(200, { data })),
  fc
    .record(
      {
        data: fc.oneof(fc.dictionary(fc.constantFrom('token', 'other', 'Token'), valueArb), valueArb),
        metadata: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    )
    .map((data) => json(200, { data })),
  fc.dictionary(fc.constantFrom('token', 'other'), valueArb).map((data) => json(200, { data })),
  fc
    .tuple(
      statusArb,
      fc.constantFrom(
        `<html><body>${PLANTED}</body></html>`,
        `{"data":{"data":{"token":"${PLANTED}`,
        '',
        'null',
        PLANTED,
      ),
    )
    .map(([status, body]) => ({ status, headers: { 'content-type': 'text/html' }, body })),
  fc.constant({
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: `{"data":{"data":{"token":"${PLANTED}"}}}`,
    reset: true,
  }),
);

/** Request i gets answers[i mod n]: preflight, read, and any retry see different answers. */
function script(answers: ScriptedAnswer[]) {
  let i = 0;
  server.answer = () => answers[i++ % answers.length]!;
}

/** Outcomes reached, so that each fetch property can show it reached them all. */
const seen = new Set<string>();

async function fetchCleanly(getToken: () => Promise<{ value: string }>, lines: string[]): Promise<boolean> {
  let ok: boolean;
  try {
    const { value } = await getToken();
    ok = typeof value === 'string' && value.trim() !== '';
    seen.add('token');
  } catch (e) {
    ok = cleanFailure(e);
    if (isKeybrokerError(e)) seen.add(`exit ${e.exitCode}`);
  }
  const leaked = lines.find((l) => l.includes(PLANTED) || l.includes(VAULT_TOKEN));
  if (leaked) throw new Error(`a --debug line shows a secret: ${leaked}`);
  return ok;
}

describe('vault sources against random answers', () => {
  it('vault KV: a non-empty value, or exit 3, 4 or 5 with a clean line', { timeout: 300_000 }, async () => {
    seen.clear();
    await fc.assert(
      fc.asyncProperty(fc.array(answerArb, { minLength: 1, maxLength: 4 }), async (answers) => {
        script(answers);
        const deps = testDeps({ VAULT_TOKEN });
        const config: VaultSourceConfig = {
          type: 'vault',
          address: server.url,
          auth: { method: 'token' },
          path: 'secret/llm',
          field: 'token',
        };
        return fetchCleanly(() => createVaultSource(config, deps).getToken(request()), deps.lines);
      }),
      {
        numRuns: FETCH_RUNS,
        // One case per outcome, so the check below never depends on the random draw.
        examples: [
          [
            [
              json(200, { data: { path: 'secret/', options: { version: '2' } } }),
              json(200, { data: { data: { token: PLANTED } } }),
            ],
          ],
          [[json(503, { errors: ['Vault is sealed'] })]],
          [[json(403, { errors: ['permission denied'] })]],
          [[json(404, { errors: [] })]],
        ],
      },
    );
    expect([...seen].sort()).toEqual(['exit 3', 'exit 4', 'exit 5', 'token']);
  });

  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
  const identityAnswer = fc.oneof(
    answerArb,
    fc
      .record(
        {
          exp: fc.oneof(fc.integer({ min: 0, max: 4_102_444_800 }), fc.jsonValue({ maxDepth: 1 })),
          sub: fc.string(),
          aud: fc.jsonValue({ maxDepth: 1 }),
        },
        { requiredKeys: [] },
      )
      .map((payload) =>
        json(200, {
          data: { token: `${b64({ alg: 'RS256' })}.${b64(payload)}.c2ln`, client_id: 'x', ttl: 3600 },
        }),
      ),
    fc
      .oneof(valueArb, fc.constantFrom(`a.${PLANTED}.c`, `${PLANTED}.e30.x`))
      .map((token) => json(200, { data: { token } })),
  );

  it('vault identity: a non-empty token, or exit 3, 4 or 5 with a clean line', {
    timeout: 300_000,
  }, async () => {
    seen.clear();
    await fc.assert(
      fc.asyncProperty(fc.array(identityAnswer, { minLength: 1, maxLength: 3 }), async (answers) => {
        script(answers);
        const deps = testDeps({ VAULT_TOKEN });
        const config: VaultIdentitySourceConfig = {
          type: 'vault-identity',
          address: server.url,
          auth: { method: 'token' },
          role: 'llm',
        };
        return fetchCleanly(() => createVaultIdentitySource(config, deps).getToken(request()), deps.lines);
      }),
      {
        numRuns: FETCH_RUNS,
        examples: [
          [[json(200, { data: { token: `${b64({ alg: 'RS256' })}.${b64({ exp: 4_102_444_800 })}.c2ln` } })]],
          [[json(503, { errors: ['Vault is sealed'] })]],
          [[json(403, { errors: ['permission denied'] })]],
          [[json(404, { errors: [] })]],
        ],
      },
    );
    expect([...seen].sort()).toEqual(['exit 3', 'exit 4', 'exit 5', 'token']);
  });

  // Regression: an exp beyond what a Date holds made toISOString() throw (exit 1, internal error).
  it.each([1e13, -1e13, 8.64e15])('an identity token with exp %d is malformed (exit 5)', async (exp) => {
    script([json(200, { data: { token: `${b64({ alg: 'RS256' })}.${b64({ exp })}.c2ln` } })]);
    const config: VaultIdentitySourceConfig = {
      type: 'vault-identity',
      address: server.url,
      auth: { method: 'token' },
      role: 'llm',
    };
    let line = '';
    try {
      await createVaultIdentitySource(config, testDeps({ VAULT_TOKEN })).getToken(request());
    } catch (e) {
      line = isKeybrokerError(e) ? `${e.exitCode} ${formatErrorLine(e)}` : String(e);
    }
    expect(line).toBe(
      "5 keybroker: vault identity token for role llm: the token has an exp out of range (check the role's key and template in Vault (vault read identity/oidc/role/llm); run keybroker explain ERR_VAULT_IDENTITY_TOKEN_MALFORMED)",
    );
  });
});
