import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { locateJsonError } from '../../src/config/json-position.js';
import { loadConfig, mergeObjects } from '../../src/config/load.js';
import { type ConfigFixture, failure, makeConfigFixture } from './config-fixture.js';

let fx: ConfigFixture;
beforeEach(() => {
  fx = makeConfigFixture();
});
afterEach(() => fx.cleanup());

const vault = (extra: Record<string, unknown> = {}) => ({
  type: 'vault',
  path: 'kv/llm',
  field: 'token',
  ...extra,
});

describe('layers', () => {
  it('treats missing files as empty layers, managed first', () => {
    const loaded = loadConfig(fx.inputs());
    expect(loaded.layers).toEqual([
      { kind: 'managed', path: fx.managedPath, origin: 'KEYBROKER_MANAGED_CONFIG', exists: false },
      { kind: 'user', path: fx.userPath, origin: 'default', exists: false },
    ]);
    expect(loaded.merged).toEqual({});
    expect(loaded.origins).toEqual({});
  });

  it('takes the user file from --config over KEYBROKER_CONFIG over the XDG default, with ~ expanded', () => {
    const home = fx.inputs().homeDir;
    const env = { KEYBROKER_CONFIG: '/nowhere/env.json' };
    expect(loadConfig(fx.inputs({ extraEnv: env })).layers[1]).toMatchObject({
      path: '/nowhere/env.json',
      origin: 'KEYBROKER_CONFIG',
    });
    expect(loadConfig(fx.inputs({ extraEnv: env, configFlag: '~/flag.json' })).layers[1]).toMatchObject({
      path: path.join(home, 'flag.json'),
      origin: '--config',
    });
    expect(loadConfig(fx.inputs({ extraEnv: { XDG_CONFIG_HOME: '' } })).layers[1]).toMatchObject({
      path: path.join(home, '.config', 'keybroker', 'config.json'),
      origin: 'default',
    });
  });

  it('merges objects key by key, profiles by name, later layer winning; arrays are replaced', () => {
    fx.writeManaged({
      cache: { storage: 'file', refreshMarginMs: 60000 },
      profiles: {
        default: { ttlMs: 600000, source: vault({ address: 'https://vault.corp:8200' }) },
        corp: { source: { type: 'jwt', audience: ['a', 'b'], claims: { team: 'eng', org: 'acme' } } },
      },
    });
    fx.writeUser({
      cache: { refreshMarginMs: 30000 },
      profiles: {
        default: { source: { type: 'vault', field: 'other' } },
        corp: { source: { type: 'jwt', audience: ['c'], claims: { team: 'ml' } } },
        mine: { source: { type: 'keychain', service: 's' } },
      },
    });
    const loaded = loadConfig(fx.inputs());
    expect(loaded.merged).toEqual({
      cache: { storage: 'file', refreshMarginMs: 30000 },
      profiles: {
        default: {
          ttlMs: 600000,
          source: { type: 'vault', path: 'kv/llm', field: 'other', address: 'https://vault.corp:8200' },
        },
        corp: { source: { type: 'jwt', audience: ['c'], claims: { team: 'ml', org: 'acme' } } },
        mine: { source: { type: 'keychain', service: 's' } },
      },
    });
    expect(loaded.origins).toEqual({
      '/cache/storage': 'managed',
      '/cache/refreshMarginMs': 'user',
      '/profiles/default/ttlMs': 'managed',
      '/profiles/default/source/type': 'user',
      '/profiles/default/source/path': 'managed',
      '/profiles/default/source/field': 'user',
      '/profiles/default/source/address': 'managed',
      '/profiles/corp/source/type': 'user',
      '/profiles/corp/source/audience': 'user',
      '/profiles/corp/source/claims/team': 'user',
      '/profiles/corp/source/claims/org': 'managed',
      '/profiles/mine/source/type': 'user',
      '/profiles/mine/source/service': 'user',
    });
  });

  it('replaces a source of another type, a Vault auth of another method and a signingKey whole', () => {
    const merged = mergeObjects(
      {
        a: { source: vault({ auth: { method: 'approle', roleId: 'r', secretIdFile: '/s' } }) },
        b: { source: { type: 'jwt', signingKey: { file: '/k.pem' }, issuer: 'i' } },
      },
      {
        a: { source: { auth: { method: 'kubernetes', role: 'k' } } },
        b: { source: { signingKey: { env: 'KEY' } } },
      },
    );
    expect(merged).toEqual({
      a: { source: vault({ auth: { method: 'kubernetes', role: 'k' } }) },
      b: { source: { type: 'jwt', signingKey: { env: 'KEY' }, issuer: 'i' } },
    });
    expect(mergeObjects({ source: vault() }, { source: { type: 'keychain', service: 'x' } })).toEqual({
      source: { type: 'keychain', service: 'x' },
    });
    // Elsewhere a "type" key is just data: custom claims still merge key by key.
    expect(mergeObjects({ claims: { type: 'human', a: 1 } }, { claims: { type: 'bot' } })).toEqual({
      claims: { type: 'bot', a: 1 },
    });
  });

  it('never lets a "__proto__" key reach a prototype', () => {
    fx.writeUser('{"profiles": {"__proto__": {"polluted": true}}}');
    const loaded = loadConfig(fx.inputs());
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(loaded.merged.profiles ?? {})).toEqual(['__proto__']);
  });

  it('skips the user layer when the managed layer says allowUserConfig: false', () => {
    fx.writeManaged({
      allowUserConfig: false,
      profiles: { default: { source: { type: 'keychain', service: 'm' } } },
    });
    fx.writeUser({ profiles: { default: { source: { type: 'keychain', service: 'u' } } } });
    const loaded = loadConfig(fx.inputs());
    expect(loaded.layers[1]).toEqual({
      kind: 'user',
      path: fx.userPath,
      origin: 'default',
      exists: true,
      ignored: true,
    });
    expect(loaded.merged.profiles?.default?.source).toEqual({ type: 'keychain', service: 'm' });
  });

  it('does not even read an ignored user layer (an unsafe one is not refused)', () => {
    fx.writeManaged({ allowUserConfig: false });
    fx.writeUser('not json');
    fs.chmodSync(fx.userPath, 0o666);
    expect(loadConfig(fx.inputs()).layers[1]?.ignored).toBe(true);
  });

  it('accepts a UTF-8 byte order mark', () => {
    fx.writeUser('\ufeff{"defaultProfile": "x"}');
    expect(loadConfig(fx.inputs()).merged).toEqual({ defaultProfile: 'x' });
  });
});

describe('refusals', () => {
  it('refuses a config file that others may write (exit 6)', () => {
    fx.writeUser({});
    fs.chmodSync(fx.userPath, 0o666);
    expect(failure(() => loadConfig(fx.inputs()))).toEqual([
      6,
      'ERR_UNSAFE_PERMISSIONS',
      `keybroker: config file ${fx.userPath}: writable by others (mode 0666) (run chmod go-w '${fx.userPath}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)`,
    ]);
  });

  it('refuses a group-writable managed file (exit 6)', () => {
    fx.writeManaged({});
    fs.chmodSync(fx.managedPath, 0o620);
    expect(failure(() => loadConfig(fx.inputs()))[2]).toBe(
      `keybroker: managed config file ${fx.managedPath}: writable by others (mode 0620) (run chmod go-w '${fx.managedPath}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)`,
    );
  });

  it('refuses a config directory that others may write (exit 6)', () => {
    fx.writeUser({});
    const dir = path.dirname(fx.userPath);
    fs.chmodSync(dir, 0o777);
    expect(failure(() => loadConfig(fx.inputs()))).toEqual([
      6,
      'ERR_UNSAFE_PERMISSIONS',
      `keybroker: config directory ${dir}: writable by others (mode 0777) (run chmod go-w '${dir}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)`,
    ]);
  });

  it('accepts a private file in a sticky, world-writable directory such as /tmp', () => {
    const dir = path.join(fx.dir, 'tmp');
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o1777);
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, '{"defaultProfile": "t"}', { mode: 0o600 });
    expect(loadConfig(fx.inputs({ configFlag: file })).merged).toEqual({ defaultProfile: 't' });
  });

  it('refuses a config file owned by someone else (exit 6)', () => {
    fx.writeUser({});
    fs.chownSync(fx.userPath, 4242, 4242);
    const uid = process.getuid!();
    expect(failure(() => loadConfig(fx.inputs()))).toEqual([
      6,
      'ERR_UNSAFE_OWNER',
      `keybroker: config file ${fx.userPath}: owned by uid 4242, not by you (uid ${uid}) (chown it to yourself or remove it; run keybroker explain ERR_UNSAFE_OWNER)`,
    ]);
  });

  it('checks the target of a symlinked config file', () => {
    const target = path.join(fx.dir, 'shared.json');
    fs.writeFileSync(target, '{}', { mode: 0o666 });
    fs.chmodSync(target, 0o666);
    fs.symlinkSync(target, fx.userPath);
    expect(failure(() => loadConfig(fx.inputs()))[2]).toBe(
      `keybroker: config file ${target}: writable by others (mode 0666) (run chmod go-w '${target}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)`,
    );
  });

  it('treats a dangling symlink as a missing file', () => {
    fs.symlinkSync(path.join(fx.dir, 'gone.json'), fx.userPath);
    expect(loadConfig(fx.inputs()).layers[1]?.exists).toBe(false);
  });

  it('reports an unreadable config (exit 2) naming the file', () => {
    fs.mkdirSync(fx.userPath);
    expect(failure(() => loadConfig(fx.inputs()))).toEqual([
      2,
      'ERR_CONFIG_UNREADABLE',
      `keybroker: config ${fx.userPath}: cannot read it (EISDIR) (check that the file is readable by you; run keybroker explain ERR_CONFIG_UNREADABLE)`,
    ]);
  });

  it('reports invalid JSON with line and column, never quoting the file', () => {
    fx.writeUser(
      '{\n  "profiles": {\n    "default": { "source": { "type": "keychain", "service": "hunter2secret" }\n  }\n',
    );
    const [code, errCode, line] = failure(() => loadConfig(fx.inputs()));
    expect([code, errCode]).toEqual([2, 'ERR_CONFIG_JSON']);
    expect(line).toBe(
      `keybroker: config ${fx.userPath}: invalid JSON at line 5, column 1: unexpected end of file, expected ',' or '}' (fix the syntax there; run keybroker explain ERR_CONFIG_JSON)`,
    );
    fx.writeUser('{"roleId": hunter2secret}');
    const second = failure(() => loadConfig(fx.inputs()))[2];
    expect(second).toBe(
      `keybroker: config ${fx.userPath}: invalid JSON at line 1, column 12: expected a value (fix the syntax there; run keybroker explain ERR_CONFIG_JSON)`,
    );
    expect(second).not.toContain('hunter2');
  });
});

describe('locateJsonError', () => {
  it.each([
    ['', 0, 'unexpected end of file, expected a value'],
    ['{"a": 1,}', 8, 'expected a property name in double quotes'],
    ["{'a': 1}", 1, 'expected a property name in double quotes'],
    ['{"a" 1}', 5, "expected ':'"],
    ['[1 2]', 3, "expected ',' or ']'"],
    ['{"a": "x\ny"}', 8, 'expected a closing quote (control characters must be escaped)'],
    ['{"a": "\\q"}', 8, 'expected a valid escape after \\'],
    ['{"a": "\\u12"}', 9, 'expected 4 hex digits after \\u'],
    ['{"a": 01}', 7, "expected ',' or '}'"],
    ['{"a": tru}', 6, 'expected a value'],
    ['{} {}', 3, 'expected the end of the file after the top-level value'],
    ['"abc', 4, 'unexpected end of file, expected a closing quote'],
  ])('%j fails at %i', (text, offset, expected) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(locateJsonError(text)).toEqual({ offset, expected });
  });
});

describe('locateJsonError agrees with JSON.parse', () => {
  const parses = (s: string) => {
    try {
      JSON.parse(s);
      return true;
    } catch {
      return false;
    }
  };
  const NO_ERROR = 'unknown syntax error';

  it('finds no error in valid JSON and one in every mutation JSON.parse refuses', () => {
    const mutated = fc
      .tuple(
        fc.json(),
        fc.nat(),
        fc.constantFrom('', ',', '}', ']', '"', ':', '\\', 'x', '\n', '0', '-', '{', '['),
        fc.nat(3),
      )
      .map(([text, at, insert, remove]) => {
        const i = at % (text.length + 1);
        return text.slice(0, i) + insert + text.slice(i + remove);
      });
    fc.assert(
      fc.property(fc.oneof(fc.json(), mutated, fc.string()), (text) => {
        const found = locateJsonError(text);
        expect(found.expected === NO_ERROR).toBe(parses(text));
        expect(found.offset).toBeLessThanOrEqual(text.length);
      }),
      { numRuns: 3000 },
    );
  });
});
