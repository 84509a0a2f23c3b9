// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config strings hold ${...} templates
/**
 * Property tests for the config loader (contract §3): whatever the managed and user files
 * hold (random JSON, random text, valid configs with random changes, loose permissions) and
 * whatever the environment says, loadConfig + validateConfig + resolveProfile either succeed
 * or throw a KeybrokerError with exit code 2 (configuration) or 6 (unsafe file), whose line is
 * one printable line that never shows a value from the config or the environment.
 *
 * Each case writes real files (the loader reads and checks them), 10,000 cases per property.
 */
import * as fs from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConfigInputs, loadConfig, resolveProfile } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { ExitCode, formatErrorLine, isKeybrokerError } from '../../src/errors.js';
import { type ConfigFixture, makeConfigFixture } from '../unit/config-fixture.js';

const NUM_RUNS = 10_000;
/** A value that must never appear in an error line (it could be a secret in a config). */
const PLANTED = 'PLANTED/cfg+SECRET=9d1e';
const PLANTED_ENV = 'PLANTED/env+SECRET=4b7c';

let fx: ConfigFixture;
const savedTmp = process.env.TMPDIR;
beforeAll(() => {
  // Each case writes files: on tmpfs (when there is one) 10,000 writes take a second, not a minute.
  if (fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').isDirectory()) process.env.TMPDIR = '/dev/shm';
  try {
    fx = makeConfigFixture();
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  }
});
afterAll(() => fx.cleanup());

// ---------------------------------------------------------------------------------------------
// Arbitraries

const name = fc.constantFrom('default', 'work', 'ci', 'p.1', 'x_y-z');
const templ = fc.constantFrom(
  '${user}',
  '${hostname}',
  '${profile}',
  '${env:KB_SET}',
  '${env:KB_UNSET}',
  '${nope}',
  '${env:}',
);
const str = fc.oneof(
  fc.constantFrom('a', 'secret/llm', '~/key.pem', 'https://vault.example:8200', 'us-east-1', PLANTED, ''),
  templ,
  fc.tuple(fc.string({ maxLength: 6 }), templ).map(([a, b]) => a + b),
);
const url = fc.constantFrom('https://vault.example:8200', 'http://127.0.0.1:1', 'https://x/${env:KB_SET}');
const posInt = fc.oneof(fc.integer({ min: 1, max: 10_000_000 }), fc.constantFrom(300000, 8000));

const vaultAuth = fc.oneof(
  fc.record({ method: fc.constant('token'), tokenFile: str }, { requiredKeys: ['method'] }),
  fc.record(
    { method: fc.constant('approle'), mount: str, roleId: str, secretIdFile: str },
    { requiredKeys: ['method', 'roleId'] },
  ),
  fc.record(
    { method: fc.constant('approle'), roleId: str, secretIdEnv: fc.constantFrom('KB_SET', 'KB_UNSET') },
    { requiredKeys: ['method', 'roleId'] },
  ),
  fc.record(
    { method: fc.constant('kubernetes'), mount: str, role: str, jwtFile: str },
    { requiredKeys: ['method', 'role'] },
  ),
  fc.record({ method: fc.constant('jwt'), mount: str, role: str, jwtFile: str }),
);
const vaultConn = { address: url, namespace: str, caCert: str, tlsSkipVerify: fc.boolean(), auth: vaultAuth };
const source = fc.oneof(
  fc.record(
    {
      type: fc.constant('jwt'),
      algorithm: fc.constantFrom('ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'HS256'),
      signingKey: fc.oneof(
        fc.record({ file: str }),
        fc.record({ env: fc.constantFrom('KB_SET', 'KB_UNSET') }),
        fc.record({ keychain: fc.record({ service: str, account: str }, { requiredKeys: ['service'] }) }),
      ),
      keyId: str,
      issuer: str,
      audience: fc.oneof(str, fc.array(str, { minLength: 1, maxLength: 2 })),
      subject: str,
      lifetimeSec: posInt,
      claims: fc.dictionary(fc.constantFrom('user', 'team', 'role', 'iss'), fc.oneof(str, fc.integer())),
      notBeforeSkewSec: fc.integer({ min: 0, max: 3600 }),
    },
    { requiredKeys: ['type'] },
  ),
  fc.record(
    { type: fc.constant('vault'), ...vaultConn, path: str, field: str },
    { requiredKeys: ['type', 'path', 'field'] },
  ),
  fc.record(
    { type: fc.constant('vault-identity'), ...vaultConn, role: str },
    { requiredKeys: ['type', 'role'] },
  ),
  fc.record(
    {
      type: fc.constant('aws-secrets-manager'),
      secretId: str,
      region: str,
      profile: str,
      versionStage: str,
      versionId: str,
      jsonKey: str,
      endpoint: url,
    },
    { requiredKeys: ['type', 'secretId'] },
  ),
  fc.record(
    { type: fc.constant('keychain'), service: str, account: str },
    { requiredKeys: ['type', 'service'] },
  ),
);
const profile = fc.record(
  { ttlMs: posInt, timeoutMs: fc.integer({ min: 1, max: 600000 }), source },
  { requiredKeys: ['source'] },
);
const validish = fc.record(
  {
    defaultProfile: name,
    allowUserConfig: fc.boolean(),
    cache: fc.record(
      {
        storage: fc.constantFrom('file', 'keychain', 'none'),
        refreshMarginMs: fc.nat(),
        staleIfErrorMs: fc.nat(),
        minRefreshIntervalMs: fc.nat(),
      },
      { requiredKeys: [] },
    ),
    audit: fc.record({ enabled: fc.boolean(), file: fc.oneof(str, fc.constant(null)) }, { requiredKeys: [] }),
    profiles: fc.dictionary(name, profile, { minKeys: 1, maxKeys: 3 }),
  },
  { requiredKeys: ['profiles'] },
);

/** Odd JSON values: wrong types, huge and negative numbers, empty and planted strings, "__proto__". */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(-1, 0, 1.5, 2 ** 53, -0, '', PLANTED, '${env:KB_UNSET}', null, [], {}, { __proto__: 1 }),
  str,
);

type Path = (string | number)[];
function leafPaths(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) for (const [i, x] of v.entries()) leafPaths(x, [...at, i], out);
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) leafPaths(x, [...at, k], out);
  return out;
}

/** Replaces, deletes or adds (an unknown key) at one place of a config. */
function mutate(
  config: unknown,
  pick: number,
  op: 'set' | 'delete' | 'add',
  value: unknown,
  key: string,
): unknown {
  const copy = JSON.parse(JSON.stringify(config)) as unknown;
  const paths = leafPaths(copy);
  const p = paths[pick % paths.length]!;
  if (p.length === 0) return op === 'set' ? value : copy;
  let parent = copy as Record<string | number, unknown>;
  for (const k of p.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = p[p.length - 1]!;
  const target = parent[last];
  if (op === 'delete' && !Array.isArray(parent)) delete parent[last];
  else if (op === 'add' && target !== null && typeof target === 'object' && !Array.isArray(target))
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else parent[last] = value;
  return copy;
}

const mutated = fc
  .tuple(
    validish,
    fc.nat(),
    fc.constantFrom('set', 'delete', 'add') as fc.Arbitrary<'set' | 'delete' | 'add'>,
    oddValue,
    fc.constantFrom('extra', '__proto__', 'type', 'constructor', 'Type'),
  )
  .map(([c, pick, op, v, k]) => mutate(c, pick, op, v, k));

/** File contents: JSON of a config, or raw text (broken JSON, BOM, empty). */
const fileText = fc.oneof(
  { weight: 3, arbitrary: mutated.map((c) => JSON.stringify(c)) },
  { weight: 2, arbitrary: validish.map((c) => JSON.stringify(c)) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        mutated.map((c) => JSON.stringify(c)),
        fc.nat(),
        fc.string({ maxLength: 3 }),
      )
      .map(([t, cut, junk]) => t.slice(0, cut % (t.length + 1)) + junk),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', '\ufeff{}', '{"profiles":{}}', `{"a":"${PLANTED}"`, 'null', '[]'),
  },
);

const layerSpec = fc.option(
  fc.record({ text: fileText, mode: fc.constantFrom(0o600, 0o600, 0o644, 0o640, 0o660, 0o602, 0o666) }),
  { freq: 3 },
);

const envArb = fc.record(
  {
    KB_SET: fc.constantFrom(PLANTED_ENV, 'x', ''),
    CLAUDE_CODE_API_KEY_HELPER_TTL_MS: fc.oneof(
      fc.constantFrom('60000', '0', '-5', '5m', '', PLANTED_ENV, '1e3', '999999999999999999'),
      fc.string({ maxLength: 4 }),
    ),
    KEYBROKER_PROFILE: fc.oneof(name, fc.constantFrom('', 'nope', '../x', 'bad name')),
    VAULT_ADDR: fc.constantFrom('https://vault.example:8200', 'not a url'),
    AWS_REGION: fc.constantFrom('us-east-1', ''),
  },
  { requiredKeys: [] },
);

const profileFlag = fc.option(fc.oneof(name, fc.constantFrom('nope', 'a/b', '-x', ' ')), { freq: 3 });

// ---------------------------------------------------------------------------------------------

function writeLayer(file: string, spec: { text: string; mode: number } | null): void {
  fs.rmSync(file, { force: true });
  if (spec === null) return;
  fs.writeFileSync(file, spec.text, { mode: 0o600 });
  fs.chmodSync(file, spec.mode);
}

/** The whole pipeline; returns true when it succeeds or fails as the contract allows. */
function loadsOrFailsCleanly(inputs: ConfigInputs): boolean {
  try {
    const loaded = loadConfig(inputs);
    validateConfig(loaded);
    const resolved = resolveProfile(loaded, inputs);
    return typeof resolved.cacheKey === 'string' && resolved.ttlMs > 0;
  } catch (e) {
    if (!isKeybrokerError(e)) throw e;
    if (e.exitCode !== ExitCode.config && e.exitCode !== ExitCode.unsafe) return false;
    const line = formatErrorLine(e);
    if (!/^keybroker: [\x20-\x7e]+$/.test(line)) return false;
    if (line.includes(PLANTED) || line.includes(PLANTED_ENV)) {
      throw new Error(`an error line shows a config or environment value: ${line}`);
    }
    return true;
  }
}

describe('config loader, validator and resolver', () => {
  it('random managed and user files, modes, environment and profile flag: success, exit 2 or exit 6', () => {
    fc.assert(
      fc.property(layerSpec, layerSpec, envArb, profileFlag, (managed, user, env, flag) => {
        writeLayer(fx.managedPath, managed);
        writeLayer(fx.userPath, user);
        const inputs = fx.inputs({ extraEnv: env, ...(flag === null ? {} : { profileFlag: flag }) });
        return loadsOrFailsCleanly(inputs);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('any JSON document as the user config: success or exit 2', () => {
    writeLayer(fx.managedPath, null);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (doc) => {
        writeLayer(fx.userPath, { text: JSON.stringify(doc), mode: 0o600 });
        return loadsOrFailsCleanly(fx.inputs({ extraEnv: { KB_SET: 'x' } }));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a valid config with one random change: success or exit 2', () => {
    writeLayer(fx.managedPath, null);
    fc.assert(
      fc.property(mutated, (doc) => {
        writeLayer(fx.userPath, { text: JSON.stringify(doc), mode: 0o600 });
        return loadsOrFailsCleanly(fx.inputs({ extraEnv: { KB_SET: PLANTED_ENV } }));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  // Regression: the merge and origin walks recursed into a deeply nested value and overflowed
  // the stack (RangeError, exit 1).
  it.each([
    ['objects', (inner: string) => `{"a":${inner}}`],
    ['arrays', (inner: string) => `[${inner}]`],
  ])('a config nested 20,000 levels deep in %s is exit 2', (_what, wrap) => {
    writeLayer(fx.managedPath, null);
    let inner = '1';
    for (let i = 0; i < 20_000; i++) inner = wrap(inner);
    writeLayer(fx.userPath, {
      text: `{"profiles":{"default":{"source":{"type":"jwt","claims":{"deep":${inner}}}}}}`,
      mode: 0o600,
    });
    expect(() => loadConfig(fx.inputs())).toThrow(
      expect.objectContaining({
        exitCode: 2,
        message: `config ${fx.userPath}: nested more than 64 levels deep`,
      }),
    );
  });
});
