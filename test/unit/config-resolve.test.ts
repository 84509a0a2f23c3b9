// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about ${...} templates in config strings
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ConfigInputs,
  cacheKeyFor,
  loadConfig,
  resolveProfile,
  selectProfileName,
  stableStringify,
} from '../../src/config/load.js';
import { type ConfigFixture, failure, makeConfigFixture } from './config-fixture.js';

let fx: ConfigFixture;
beforeEach(() => {
  fx = makeConfigFixture();
});
afterEach(() => fx.cleanup());

const resolve = (inputs: ConfigInputs) => resolveProfile(loadConfig(inputs), inputs);
const keychain = (service = 's') => ({ source: { type: 'keychain', service } });

describe('profile selection', () => {
  it('is --profile, else KEYBROKER_PROFILE, else defaultProfile, else "default"', () => {
    fx.writeUser({
      defaultProfile: 'd',
      profiles: { d: keychain(), e: keychain(), f: keychain(), default: keychain() },
    });
    const loaded = loadConfig(fx.inputs());
    const env = { KEYBROKER_PROFILE: 'e' };
    expect(selectProfileName(loaded, fx.inputs({ profileFlag: 'f', extraEnv: env }))).toBe('f');
    expect(selectProfileName(loaded, fx.inputs({ extraEnv: env }))).toBe('e');
    expect(selectProfileName(loaded, fx.inputs())).toBe('d');
    fx.writeUser({ profiles: { default: keychain() } });
    expect(selectProfileName(loadConfig(fx.inputs()), fx.inputs())).toBe('default');
  });

  it('names an unknown profile and lists the available ones (exit 2)', () => {
    fx.writeUser({ profiles: { work: keychain(), home: keychain() } });
    expect(failure(() => resolve(fx.inputs({ profileFlag: 'nope' })))).toEqual([
      2,
      'ERR_CONFIG_UNKNOWN_PROFILE',
      `keybroker: profile "nope" (from --profile): not defined in ${fx.userPath} (available: work, home; run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE)`,
    ]);
  });

  it('says when there is no config file at all', () => {
    expect(failure(() => resolve(fx.inputs()))[2]).toBe(
      `keybroker: profile "default" (from the default): not defined in no config file (looked for ${fx.managedPath} and ${fx.userPath}) (no profiles are configured; run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE)`,
    );
  });

  it('refuses a profile name that could not be a file name (exit 2)', () => {
    fx.writeUser({ profiles: { default: keychain() } });
    expect(failure(() => resolve(fx.inputs({ extraEnv: { KEYBROKER_PROFILE: '../x' } })))).toEqual([
      2,
      'ERR_CONFIG_PROFILE_NAME',
      `keybroker: profile "../x" (from KEYBROKER_PROFILE): not a valid profile name (use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit; run keybroker explain ERR_CONFIG_PROFILE_NAME)`,
    ]);
  });
});

describe('templates and paths', () => {
  it('expands ${user}, ${hostname}, ${profile} and ${env:NAME} in every string, arrays included', () => {
    fx.writeUser({
      profiles: {
        p1: {
          source: {
            type: 'jwt',
            issuer: 'https://${hostname}/${profile}',
            audience: ['${env:AUD}', 'static'],
            claims: { who: '${user}@${hostname}', team: '${env:TEAM}', n: 3, nested: { x: '${profile}' } },
          },
        },
      },
    });
    const r = resolve(fx.inputs({ profileFlag: 'p1', extraEnv: { TEAM: 'eng', AUD: 'gw' } }));
    expect(r.source).toEqual({
      type: 'jwt',
      issuer: 'https://laptop-1/p1',
      audience: ['gw', 'static'],
      claims: { who: 'alice@laptop-1', team: 'eng', n: 3, nested: { x: 'p1' } },
      subject: 'alice',
    });
  });

  it('accepts an empty but set ${env:NAME}', () => {
    fx.writeUser({ profiles: { default: { source: { type: 'keychain', service: 'x${env:SUFFIX}' } } } });
    expect(resolve(fx.inputs({ extraEnv: { SUFFIX: '' } })).source).toMatchObject({ service: 'x' });
  });

  it('names the variable, the file and the JSON path of an unset ${env:NAME} (exit 2)', () => {
    fx.writeManaged({ profiles: { default: { source: { type: 'jwt', claims: { team: '${env:TEAM}' } } } } });
    expect(failure(() => resolve(fx.inputs()))).toEqual([
      2,
      'ERR_CONFIG_ENV_UNSET',
      `keybroker: config ${fx.managedPath}: /profiles/default/source/claims/team: environment variable TEAM is not set (used as \${env:TEAM}) (set TEAM or change that value; run keybroker explain ERR_CONFIG_ENV_UNSET)`,
    ]);
  });

  it('refuses an unknown template (exit 2)', () => {
    fx.writeUser({ profiles: { default: { source: { type: 'keychain', service: '${home}/x' } } } });
    expect(failure(() => resolve(fx.inputs()))).toEqual([
      2,
      'ERR_CONFIG_TEMPLATE',
      `keybroker: config ${fx.userPath}: /profiles/default/source/service: unknown template \${home} (use \${user}, \${identity}, \${hostname}, \${profile} or \${env:NAME}; run keybroker explain ERR_CONFIG_TEMPLATE)`,
    ]);
  });

  it('expands ~ at the start of path-valued keys only', () => {
    const home = fx.inputs().homeDir;
    fx.writeUser({
      profiles: {
        j: { source: { type: 'jwt', signingKey: { file: '~/.keys/k.pem' }, issuer: '~/not-a-path' } },
        v: {
          source: {
            type: 'vault',
            path: '~/kv',
            field: 'f',
            caCert: '~/ca.pem',
            auth: { method: 'approle', roleId: 'r', secretIdFile: '~/sid' },
          },
        },
        k: {
          source: {
            type: 'vault-identity',
            role: 'r',
            auth: { method: 'kubernetes', role: 'r', jwtFile: '~/jwt' },
          },
        },
        t: { source: { type: 'vault', path: 'p', field: 'f', auth: { method: 'token', tokenFile: '~' } } },
      },
      audit: { file: '~/logs/${profile}.log' },
    });
    const j = resolve(fx.inputs({ profileFlag: 'j' }));
    expect(j.source).toMatchObject({
      signingKey: { file: path.join(home, '.keys/k.pem') },
      issuer: '~/not-a-path',
    });
    expect(j.audit).toEqual({ enabled: true, file: path.join(home, 'logs/j.log') });
    expect(resolve(fx.inputs({ profileFlag: 'v' })).source).toMatchObject({
      path: '~/kv',
      caCert: path.join(home, 'ca.pem'),
      auth: { secretIdFile: path.join(home, 'sid') },
    });
    expect(resolve(fx.inputs({ profileFlag: 'k' })).source).toMatchObject({
      auth: { jwtFile: path.join(home, 'jwt') },
    });
    expect(resolve(fx.inputs({ profileFlag: 't' })).source).toMatchObject({ auth: { tokenFile: home } });
  });
});

describe('environment defaults', () => {
  it('bakes VAULT_* into vault and vault-identity sources; config wins', () => {
    fx.writeUser({
      profiles: {
        v: { source: { type: 'vault', path: 'kv/x', field: 'f' } },
        i: {
          source: {
            type: 'vault-identity',
            role: 'r',
            address: 'https://own:8200',
            auth: { method: 'jwt', role: 'r', jwtFile: '/j' },
          },
        },
      },
    });
    const env = {
      VAULT_ADDR: 'https://vault:8200',
      VAULT_NAMESPACE: 'ns1',
      VAULT_CACERT: '/etc/ca.pem',
      VAULT_SKIP_VERIFY: 'true',
    };
    expect(resolve(fx.inputs({ profileFlag: 'v', extraEnv: env })).source).toEqual({
      type: 'vault',
      path: 'kv/x',
      field: 'f',
      address: 'https://vault:8200',
      namespace: 'ns1',
      caCert: '/etc/ca.pem',
      tlsSkipVerify: true,
      auth: { method: 'token' },
    });
    expect(
      resolve(
        fx.inputs({ profileFlag: 'i', extraEnv: { ...env, VAULT_SKIP_VERIFY: '0', VAULT_NAMESPACE: '' } }),
      ).source,
    ).toEqual({
      type: 'vault-identity',
      role: 'r',
      address: 'https://own:8200',
      caCert: '/etc/ca.pem',
      auth: { method: 'jwt', role: 'r', jwtFile: '/j' },
    });
    expect(
      resolve(fx.inputs({ profileFlag: 'v', extraEnv: { VAULT_SKIP_VERIFY: '1' } })).source,
    ).toMatchObject({
      tlsSkipVerify: true,
    });
  });

  it('bakes AWS_* into aws-secrets-manager sources', () => {
    fx.writeUser({ profiles: { default: { source: { type: 'aws-secrets-manager', secretId: 's' } } } });
    expect(
      resolve(
        fx.inputs({
          extraEnv: {
            AWS_PROFILE: 'dev',
            AWS_DEFAULT_REGION: 'eu-west-1',
            AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
          },
        }),
      ).source,
    ).toEqual({
      type: 'aws-secrets-manager',
      secretId: 's',
      profile: 'dev',
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:4566',
    });
    expect(
      resolve(
        fx.inputs({
          extraEnv: {
            AWS_REGION: 'us-east-2',
            AWS_DEFAULT_REGION: 'eu-west-1',
            AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:1',
            AWS_ENDPOINT_URL: 'http://127.0.0.1:2',
          },
        }),
      ).source,
    ).toEqual({
      type: 'aws-secrets-manager',
      secretId: 's',
      region: 'us-east-2',
      endpoint: 'http://127.0.0.1:1',
    });
  });

  it('defaults a keychain account and the jwt subject and claims to the user name', () => {
    fx.writeUser({ profiles: { k: keychain('svc'), j: { source: { type: 'jwt' } } } });
    expect(resolve(fx.inputs({ profileFlag: 'k' })).source).toEqual({
      type: 'keychain',
      service: 'svc',
      account: 'alice',
    });
    expect(resolve(fx.inputs({ profileFlag: 'j' })).source).toEqual({
      type: 'jwt',
      subject: 'alice',
      claims: { user: 'alice' },
    });
  });
});

describe('TTL, timeout, cache and audit', () => {
  beforeEach(() => {
    fx.writeUser({ profiles: { set: { ttlMs: 900000, timeoutMs: 3000, ...keychain() }, unset: keychain() } });
  });

  it('takes CLAUDE_CODE_API_KEY_HELPER_TTL_MS when it is a positive integer', () => {
    const r = resolve(
      fx.inputs({ profileFlag: 'set', extraEnv: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '3600000' } }),
    );
    expect([r.ttlMs, r.ttlOrigin, r.warnings]).toEqual([3600000, 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS', []]);
  });

  it.each(['0', '-5', '1e6', '60000ms', ' 60000', '1.5', '99999999999999999'])(
    'warns about %j and falls back to the profile, then the default',
    (value) => {
      const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: value };
      const set = resolve(fx.inputs({ profileFlag: 'set', extraEnv: env }));
      expect([set.ttlMs, set.ttlOrigin, set.warnings]).toEqual([
        900000,
        'profile',
        [`CLAUDE_CODE_API_KEY_HELPER_TTL_MS="${value}" is not a positive integer; using 900000 ms`],
      ]);
      const unset = resolve(fx.inputs({ profileFlag: 'unset', extraEnv: env }));
      expect([unset.ttlMs, unset.ttlOrigin, unset.warnings]).toEqual([
        300000,
        'default',
        [`CLAUDE_CODE_API_KEY_HELPER_TTL_MS="${value}" is not a positive integer; using 300000 ms`],
      ]);
    },
  );

  it('shows a malformed value on one printable line', () => {
    const r = resolve(
      fx.inputs({ profileFlag: 'unset', extraEnv: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '6\n0' } }),
    );
    expect(r.warnings).toEqual([
      'CLAUDE_CODE_API_KEY_HELPER_TTL_MS="6?0" is not a positive integer; using 300000 ms',
    ]);
  });

  it('treats an empty variable as unset, without a warning', () => {
    const r = resolve(fx.inputs({ profileFlag: 'set', extraEnv: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '' } }));
    expect([r.ttlMs, r.ttlOrigin, r.warnings]).toEqual([900000, 'profile', []]);
  });

  it('defaults timeoutMs, cache and audit', () => {
    const home = fx.inputs().homeDir;
    expect(resolve(fx.inputs({ profileFlag: 'set' })).timeoutMs).toBe(3000);
    const r = resolve(fx.inputs({ profileFlag: 'unset' }));
    expect(r.timeoutMs).toBe(8000);
    expect(r.cache).toEqual({
      storage: 'file',
      refreshMarginMs: 120000,
      staleIfErrorMs: 3600000,
      minRefreshIntervalMs: 10000,
    });
    expect(r.audit).toEqual({
      enabled: true,
      file: path.join(home, '.local', 'state', 'keybroker', 'audit.log'),
    });
  });

  it('merges cache and audit settings over the defaults', () => {
    fx.writeManaged({
      cache: { storage: 'keychain', staleIfErrorMs: 0 },
      audit: { enabled: false, file: null },
    });
    const r = resolve(fx.inputs({ profileFlag: 'unset' }));
    expect(r.cache).toEqual({
      storage: 'keychain',
      refreshMarginMs: 120000,
      staleIfErrorMs: 0,
      minRefreshIntervalMs: 10000,
    });
    expect(r.audit.enabled).toBe(false);
  });
});

describe('cache key', () => {
  it('is the profile name and 16 hex digits of the resolved source and credential, independent of key order and TTL', () => {
    fx.writeUser({
      profiles: { default: { ttlMs: 1000, source: { type: 'vault', path: 'kv/x', field: 'f' } } },
    });
    const a = resolve(fx.inputs({ extraEnv: { VAULT_ADDR: 'https://v:8200' } }));
    expect(a.cacheKey).toMatch(/^default-[0-9a-f]{16}$/);
    fx.writeUser({
      profiles: { default: { source: { field: 'f', path: 'kv/x', type: 'vault' }, ttlMs: 5000 } },
    });
    const b = resolve(
      fx.inputs({ extraEnv: { VAULT_ADDR: 'https://v:8200', CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '7' } }),
    );
    expect(b.cacheKey).toBe(a.cacheKey);
    expect(a.cacheKey).toBe(cacheKeyFor('default', a.source, 'vault-token:none'));
  });

  it('changes with anything in the resolved source, environment defaults included', () => {
    fx.writeUser({ profiles: { default: { source: { type: 'vault', path: 'kv/x', field: 'f' } } } });
    const base = resolve(fx.inputs({ extraEnv: { VAULT_ADDR: 'https://v:8200' } })).cacheKey;
    const otherAddr = resolve(fx.inputs({ extraEnv: { VAULT_ADDR: 'https://w:8200' } })).cacheKey;
    const otherNs = resolve(
      fx.inputs({ extraEnv: { VAULT_ADDR: 'https://v:8200', VAULT_NAMESPACE: 'n' } }),
    ).cacheKey;
    fx.writeUser({ profiles: { default: { source: { type: 'vault', path: 'kv/x', field: 'g' } } } });
    const otherField = resolve(fx.inputs({ extraEnv: { VAULT_ADDR: 'https://v:8200' } })).cacheKey;
    expect(new Set([base, otherAddr, otherNs, otherField]).size).toBe(4);
  });

  it('changes with the user name when a template uses it', () => {
    fx.writeUser({ profiles: { default: { source: { type: 'jwt' } } } });
    expect(resolve(fx.inputs()).cacheKey).not.toBe(resolve(fx.inputs({ userName: 'bob' })).cacheKey);
  });

  it('stableStringify sorts keys at every depth and keeps array order', () => {
    expect(stableStringify({ b: [2, { z: 1, a: null }], a: 'x', u: undefined })).toBe(
      '{"a":"x","b":[2,{"a":null,"z":1}]}',
    );
  });
});

describe('defensive resolution (the first stage does not validate)', () => {
  it('refuses a profile without a source type (exit 2), naming the file', () => {
    fx.writeUser({ profiles: { default: { ttlMs: 5 } } });
    expect(failure(() => resolve(fx.inputs()))).toEqual([
      2,
      'ERR_CONFIG_INVALID',
      `keybroker: config ${fx.userPath}: /profiles/default/source/type: required key missing (give the profile a source with a "type"; run keybroker explain ERR_CONFIG_INVALID)`,
    ]);
  });

  it('ignores a TTL or timeout of the wrong type instead of using it', () => {
    fx.writeUser({ profiles: { default: { ttlMs: '60000', timeoutMs: -1, ...keychain() } } });
    const r = resolve(fx.inputs());
    expect([r.ttlMs, r.ttlOrigin, r.timeoutMs]).toEqual([300000, 'default', 8000]);
  });
});
