// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config strings hold ${...} templates
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { CONFIG_SCHEMA } from '../../src/config/schema.js';
import { configJsonSchema, validateConfig, validateValue } from '../../src/config/validate.js';
import { type ConfigFixture, failure, makeConfigFixture } from './config-fixture.js';

let fx: ConfigFixture;
beforeEach(() => {
  fx = makeConfigFixture();
});
afterEach(() => fx.cleanup());

const validate = () => validateConfig(loadConfig(fx.inputs()));
const DOCS = 'run keybroker explain ERR_CONFIG_INVALID';

/** Every key of contract §3, every source type and every Vault auth method. */
const FULL = {
  $schema: 'https://example.invalid/keybroker.schema.json',
  defaultProfile: 'jwt-file',
  allowUserConfig: true,
  cache: { storage: 'file', refreshMarginMs: 120000, staleIfErrorMs: 3600000, minRefreshIntervalMs: 10000 },
  audit: { enabled: true, file: null },
  profiles: {
    'jwt-file': {
      ttlMs: 300000,
      timeoutMs: 8000,
      source: {
        type: 'jwt',
        algorithm: 'ES256',
        signingKey: { file: '~/.config/keybroker/key.pem' },
        keyId: 'k1',
        issuer: 'https://keybroker.${hostname}',
        audience: 'litellm',
        subject: '${user}',
        lifetimeSec: 900,
        claims: { user: '${user}', team: 'engineering', groups: ['a', 'b'], level: 3 },
        notBeforeSkewSec: 30,
      },
    },
    'jwt-env': {
      source: { type: 'jwt', algorithm: 'HS256', signingKey: { env: 'KB_KEY' }, audience: ['a', 'b'] },
    },
    'jwt-kc': {
      source: { type: 'jwt', algorithm: 'EdDSA', signingKey: { keychain: { service: 's', account: 'a' } } },
    },
    'vault.token': {
      source: {
        type: 'vault',
        address: 'https://127.0.0.1:8200',
        namespace: 'team',
        caCert: '~/ca.pem',
        tlsSkipVerify: false,
        auth: { method: 'token', tokenFile: '~/.vault-token' },
        path: 'secret/llm',
        field: 'token',
      },
    },
    vault_approle: {
      source: {
        type: 'vault',
        path: 'kv/x',
        field: 'f',
        auth: { method: 'approle', mount: 'approle', roleId: '${env:ROLE_ID}', secretIdFile: '/run/sid' },
      },
    },
    'vault-approle-env': {
      source: {
        type: 'vault',
        path: 'kv/x',
        field: 'f',
        auth: { method: 'approle', roleId: 'r', secretIdEnv: 'SID' },
      },
    },
    'vault-k8s': {
      source: {
        type: 'vault-identity',
        role: 'llm',
        auth: { method: 'kubernetes', mount: 'kubernetes', role: 'dev', jwtFile: '/var/run/t' },
      },
    },
    'vault-jwt': {
      source: {
        type: 'vault-identity',
        role: 'llm',
        auth: { method: 'jwt', mount: 'oidc', role: 'dev', jwtFile: '/j' },
      },
    },
    aws: {
      source: {
        type: 'aws-secrets-manager',
        secretId: 'arn:aws:secretsmanager:eu-west-1:1:secret:x',
        region: 'eu-west-1',
        profile: 'dev',
        versionStage: 'AWSCURRENT',
        versionId: 'v1',
        jsonKey: 'token',
        endpoint: 'http://127.0.0.1:4566',
      },
    },
    keychain: { source: { type: 'keychain', service: 'anthropic', account: '${user}' } },
  },
};

describe('validateConfig', () => {
  it('accepts every key of every source type and auth method', () => {
    fx.writeUser(FULL);
    expect(() => validate()).not.toThrow();
  });

  it('accepts a user layer that only changes part of a managed profile', () => {
    fx.writeManaged({ profiles: { default: { source: { type: 'vault', path: 'kv/x', field: 'f' } } } });
    fx.writeUser({ profiles: { default: { ttlMs: 60000, source: { field: 'g', namespace: 'n' } } } });
    expect(() => validate()).not.toThrow();
  });

  it('names the file and JSON path of an unknown key, and lists the allowed keys (exit 2)', () => {
    fx.writeUser({
      profiles: { default: { source: { type: 'vault', path: 'kv/x', field: 'f', fieldx: 'y' } } },
    });
    expect(failure(validate)).toEqual([
      2,
      'ERR_CONFIG_INVALID',
      `keybroker: config ${fx.userPath}: /profiles/default/source/fieldx: unknown key (allowed here: type, address, namespace, caCert, tlsSkipVerify, auth, path, field; ${DOCS})`,
    ]);
  });

  it('names the managed file for a problem there, even when the user layer overrides the key', () => {
    fx.writeManaged({ cache: { storage: 'disk' } });
    fx.writeUser({ cache: { storage: 'file' } });
    expect(failure(validate)[2]).toBe(
      `keybroker: config ${fx.managedPath}: /cache/storage: must be one of "file", "keychain", "none" (${DOCS})`,
    );
  });

  it('rejects unknown top-level keys and partial-layer keys of no source type', () => {
    fx.writeUser({ profile: {} });
    expect(failure(validate)[2]).toBe(
      `keybroker: config ${fx.userPath}: /profile: unknown key (allowed here: $schema, defaultProfile, allowUserConfig, environmentDefaults, maxLifetimeSec, docsUrl, identity, cache, audit, profiles, proxy; ${DOCS})`,
    );
    fx.writeUser({ profiles: { default: { source: { sevret: 'x' } } } });
    expect(failure(validate)[2]).toBe(
      `keybroker: config ${fx.userPath}: /profiles/default/source/sevret: unknown key (allowed here: type, algorithm, signingKey, keyId, issuer, audience, subject, lifetimeSec, claims, notBeforeSkewSec, address, namespace, caCert, tlsSkipVerify, auth, path, field, role, secretId, region, profile, versionStage, versionId, jsonKey, endpoint, service, account, clientId, clientSecret, scopes, token, exchange, flow, redirectPort, requireClaims; ${DOCS})`,
    );
  });

  it.each([
    [
      { profiles: { default: { ttlMs: '300000', source: { type: 'jwt' } } } },
      '/profiles/default/ttlMs: must be an integer',
      'how long Claude Code holds the token, unless CLAUDE_CODE_API_KEY_HELPER_TTL_MS is set; ',
    ],
    [
      { profiles: { default: { ttlMs: 1.5, source: { type: 'jwt' } } } },
      '/profiles/default/ttlMs: must be an integer',
      'how long Claude Code holds the token, unless CLAUDE_CODE_API_KEY_HELPER_TTL_MS is set; ',
    ],
    [
      { profiles: { default: { ttlMs: 0, source: { type: 'jwt' } } } },
      '/profiles/default/ttlMs: must be at least 1',
      'how long Claude Code holds the token, unless CLAUDE_CODE_API_KEY_HELPER_TTL_MS is set; ',
    ],
    [
      { profiles: { default: { timeoutMs: 600001, source: { type: 'jwt' } } } },
      '/profiles/default/timeoutMs: must be at most 600000',
      'deadline for the whole run; ',
    ],
    [
      { allowUserConfig: 'no' },
      '/allowUserConfig: must be a boolean',
      'managed layer only in effect: false ignores the user config file; ',
    ],
    [
      { audit: { file: 3 } },
      '/audit/file: must be a string or null',
      'audit log file (default $XDG_STATE_HOME/keybroker/audit.log); ',
    ],
    [{ profiles: [] }, '/profiles: must be an object', 'profiles by name; '],
    [[], '/: must be an object', 'keybroker configuration (managed and user layers merge, later winning); '],
    [
      { profiles: { 'bad name': { source: { type: 'jwt' } } } },
      '/profiles/bad name: key must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
      "a profile name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit; ",
    ],
    [
      { defaultProfile: '-x' },
      '/defaultProfile: must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
      'profile used when neither --profile nor KEYBROKER_PROFILE is given; ',
    ],
    [
      { profiles: { default: { source: { type: 'ldap' } } } },
      '/profiles/default/source/type: must be one of "jwt", "vault", "vault-identity", "aws-secrets-manager", "keychain", "oidc"',
      'where the token comes from; ',
    ],
    [
      { profiles: { default: { source: 'vault' } } },
      '/profiles/default/source: must be an object',
      'where the token comes from; ',
    ],
    [
      { profiles: { default: { source: { type: 'jwt', algorithm: 'none' } } } },
      '/profiles/default/source/algorithm: must be one of "ES256", "ES384", "RS256", "PS256", "EdDSA", "HS256"',
      'signing algorithm; ',
    ],
    [
      { profiles: { default: { source: { type: 'jwt', signingKey: { file: '/a', env: 'B' } } } } },
      '/profiles/default/source/signingKey: must have exactly one of "file", "env", "keychain"',
      'where the signing key is: a file, an environment variable or a keychain item; ',
    ],
    [
      { profiles: { default: { source: { type: 'jwt', signingKey: {} } } } },
      '/profiles/default/source/signingKey: must have exactly one of "file", "env", "keychain"',
      'where the signing key is: a file, an environment variable or a keychain item; ',
    ],
    [
      { profiles: { default: { source: { type: 'jwt', signingKey: { keychain: { account: 'a' } } } } } },
      '/profiles/default/source/signingKey/keychain/service: required key missing',
      '',
    ],
    [
      { profiles: { default: { source: { type: 'jwt', signingKey: { file: '' } } } } },
      '/profiles/default/source/signingKey/file: must not be empty',
      'PEM PKCS#8 or JWK JSON file, mode 0600 or stricter; ',
    ],
    [
      { profiles: { default: { source: { type: 'jwt', audience: [] } } } },
      '/profiles/default/source/audience: must be a string or a non-empty array of strings',
      'aud claim; ',
    ],
    [
      { profiles: { default: { source: { type: 'jwt', audience: ['a', 1] } } } },
      '/profiles/default/source/audience: must be a string or a non-empty array of strings',
      'aud claim; ',
    ],
    [
      { profiles: { default: { source: { type: 'jwt', claims: { iss: 'me' } } } } },
      '/profiles/default/source/claims/iss: key cannot be set here (reserved: iss, sub, aud, exp, nbf, iat, jti)',
      'registered claims come from issuer, audience, subject and lifetimeSec; ',
    ],
    [
      { profiles: { default: { source: { type: 'vault', path: 'p', field: 'f', address: 'vault:8200' } } } },
      '/profiles/default/source/address: must match ^https?://',
      'Vault address (default VAULT_ADDR); ',
    ],
    [
      {
        profiles: { default: { source: { type: 'vault', path: 'p', field: 'f', auth: { method: 'ldap' } } } },
      },
      '/profiles/default/source/auth/method: must be one of "token", "approle", "kubernetes", "jwt", "cert"',
      'how to log in to Vault (default {"method": "token"}); ',
    ],
    [
      {
        profiles: {
          default: {
            source: {
              type: 'vault',
              path: 'p',
              field: 'f',
              auth: { method: 'approle', roleId: 'r', secretIdFile: '/f', secretIdEnv: 'E' },
            },
          },
        },
      },
      '/profiles/default/source/auth: "secretIdFile" and "secretIdEnv" cannot both be set',
      '',
    ],
    [
      {
        profiles: {
          default: {
            source: { type: 'vault', path: 'p', field: 'f', auth: { method: 'token', roleId: 'r' } },
          },
        },
      },
      '/profiles/default/source/auth/roleId: unknown key',
      'allowed here: method, tokenFile; ',
    ],
  ])('rejects %j: %s', (config, where, hint) => {
    fx.writeUser(config);
    expect(failure(validate)).toEqual([
      2,
      'ERR_CONFIG_INVALID',
      `keybroker: config ${fx.userPath}: ${where} (${hint}${DOCS})`,
    ]);
  });

  it.each([
    [{ default: { ttlMs: 5 } }, '/profiles/default/source: required key missing'],
    [{ default: { source: { path: 'p' } } }, '/profiles/default/source/type: required key missing'],
    [
      { default: { source: { type: 'vault', path: 'p' } } },
      '/profiles/default/source/field: required key missing',
    ],
    [
      { default: { source: { type: 'vault-identity' } } },
      '/profiles/default/source/role: required key missing',
    ],
    [
      { default: { source: { type: 'aws-secrets-manager' } } },
      '/profiles/default/source/secretId: required key missing',
    ],
    [{ default: { source: { type: 'keychain' } } }, '/profiles/default/source/service: required key missing'],
    [
      { default: { source: { type: 'vault-identity', role: 'r', auth: { role: 'r' } } } },
      '/profiles/default/source/auth/method: required key missing',
    ],
    [
      { default: { source: { type: 'vault-identity', role: 'r', auth: { method: 'jwt', role: 'r' } } } },
      '/profiles/default/source/auth/jwtFile: required key missing',
    ],
    [
      { default: { source: { type: 'vault-identity', role: 'r', auth: { method: 'approle' } } } },
      '/profiles/default/source/auth/roleId: required key missing',
    ],
    [
      { default: { source: { type: 'vault-identity', role: 'r', auth: { method: 'kubernetes' } } } },
      '/profiles/default/source/auth/role: required key missing',
    ],
  ])('checks the merged profiles for completeness: %j', (profiles, where) => {
    fx.writeUser({ profiles });
    const [code, , line] = failure(validate);
    expect(code).toBe(2);
    expect(line.startsWith(`keybroker: config ${fx.userPath}: ${where} (`)).toBe(true);
  });

  it('names the file that set an incomplete object after merging', () => {
    fx.writeManaged({ profiles: { default: { source: { type: 'vault', path: 'p', field: 'f' } } } });
    fx.writeUser({ profiles: { default: { source: { type: 'vault-identity' } } } });
    expect(failure(validate)[2]).toBe(
      `keybroker: config ${fx.userPath}: /profiles/default/source/role: required key missing (${DOCS})`,
    );
  });

  it('refuses a defaultProfile that names no profile', () => {
    fx.writeManaged({ defaultProfile: 'corp' });
    fx.writeUser({ profiles: { default: { source: { type: 'jwt' } } } });
    expect(failure(validate)[2]).toBe(
      `keybroker: config ${fx.managedPath}: /defaultProfile: names profile "corp", which is not defined (define profiles.corp or change defaultProfile; ${DOCS})`,
    );
  });

  it('refuses a template that can never expand, wherever it is', () => {
    fx.writeUser({ profiles: { default: { source: { type: 'jwt', audience: ['ok', 'x-${usr}'] } } } });
    expect(failure(validate)[2]).toBe(
      `keybroker: config ${fx.userPath}: /profiles/default/source/audience/1: unknown template \${usr} (use \${user}, \${identity}, \${hostname}, \${profile} or \${env:NAME}; ${DOCS})`,
    );
    fx.writeUser({ audit: { file: '/var/log/${env:}.log' } });
    expect(failure(validate)[2]).toBe(
      `keybroker: config ${fx.userPath}: /audit/file: unknown template \${env:} (use \${user}, \${identity}, \${hostname}, \${profile} or \${env:NAME}; ${DOCS})`,
    );
  });

  it('does not validate an ignored user layer', () => {
    fx.writeManaged({ allowUserConfig: false, profiles: { default: { source: { type: 'jwt' } } } });
    fx.writeUser({ bogus: true });
    expect(() => validate()).not.toThrow();
  });

  it('never quotes a value in its messages', () => {
    fx.writeUser({
      profiles: {
        default: {
          source: { type: 'vault', path: 'p', field: 'f', auth: { method: 'approle', roleId: 12345678 } },
        },
      },
    });
    const line = failure(validate)[2];
    expect(line).toBe(
      `keybroker: config ${fx.userPath}: /profiles/default/source/auth/roleId: must be a string (AppRole role_id; ${DOCS})`,
    );
  });
});

describe('configJsonSchema', () => {
  it('is a draft 2020-12 schema built from the same definition', () => {
    const schema = configJsonSchema() as Record<string, unknown>;
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties).toBe(CONFIG_SCHEMA.properties);
    const sources = (
      CONFIG_SCHEMA.properties!.profiles!.additionalProperties as {
        properties: Record<string, { oneOf: { properties: { type: { const: string } } }[] }>;
      }
    ).properties.source!.oneOf;
    expect(sources.map((s) => s.properties.type.const)).toEqual([
      'jwt',
      'vault',
      'vault-identity',
      'aws-secrets-manager',
      'keychain',
      'oidc',
    ]);
  });

  it('only uses keywords that the validator implements', () => {
    const known = new Set([
      'type',
      'description',
      'properties',
      'required',
      'additionalProperties',
      'propertyNames',
      'const',
      'enum',
      'minimum',
      'maximum',
      'minLength',
      'pattern',
      'items',
      'minItems',
      'oneOf',
      'not',
      'default',
    ]);
    const seen = new Set<string>();
    const walk = (s: unknown, isMap = false): void => {
      if (s === null || typeof s !== 'object' || Array.isArray(s)) return;
      for (const [k, v] of Object.entries(s)) {
        if (isMap) {
          walk(v);
          continue;
        }
        seen.add(k);
        if (k === 'properties') walk(v, true);
        else if (k === 'oneOf') for (const b of v as unknown[]) walk(b);
        else if (k === 'default' || k === 'enum' || k === 'required') continue;
        else walk(v);
      }
    };
    walk(CONFIG_SCHEMA);
    expect([...seen].filter((k) => !known.has(k))).toEqual([]);
  });

  it('validateValue reports the first problem only, with its pointer', () => {
    expect(
      validateValue(CONFIG_SCHEMA, { cache: { storage: 'x', refreshMarginMs: -1 } }, { partial: true }),
    ).toEqual({
      pointer: '/cache/storage',
      message: 'must be one of "file", "keychain", "none"',
    });
  });
});
