/**
 * Which cache files (and keychain accounts) `cache clear` takes for a profile: belongsTo in
 * src/cli/cache.ts, against every kind of name the stores write.
 */
import { describe, expect, it } from 'vitest';
import { belongsTo } from '../../src/cli/cache.js';

const H = '0123456789abcdef';
const H2 = 'fedcba9876543210';

describe('belongsTo', () => {
  const filesOf = (key: string) => [
    `${key}.json`,
    `${key}.lock`,
    `${key}.lock.stale-4242-lq3x9a1k2`,
    `${key}.served-4242-98765`,
    `${key}.served-4242`, // Windows: the caller's pid alone
    `${key}.memo-${H2}.blob`,
    `${key}.retry-after.blob`,
    `.${key}.json.4242.lq3x9a1k2.tmp`,
    `.${key}.lock.4242.lq3x9a1k2.tmp`,
    `.${key}.served-4242-98765.4242.lq3x9a1k2.tmp`,
  ];
  /** The keychain store's accounts (blob accounts without their `blob:` prefix). */
  const accountsOf = (key: string) => [key, `${key}.memo-${H2}`, `${key}.retry-after`];

  it('takes every file of the profile, whatever its config hash', () => {
    for (const name of filesOf(`default-${H}`)) expect(belongsTo(name, 'default')).toBe(true);
    for (const name of filesOf(`default-${H2}`)) expect(belongsTo(name, 'default')).toBe(true);
    for (const name of accountsOf(`default-${H}`)) expect(belongsTo(name, 'default', 'keychain')).toBe(true);
  });

  it('finding 11: takes nothing that only looks like a cache file', () => {
    const foreign = [
      'main-3f2a9c0d1e4b5a67.js',
      'main-3f2a9c0d1e4b5a67.js.map',
      'main-3f2a9c0d1e4b5a67.css',
      `default-${H}`, // a keychain account's shape, but as a file keybroker never writes it
      `default-${H}.json.bak`,
      `default-${H}.jsonx`,
      `default-${H}.memo-${H2}`,
      `default-${H}.served-`,
      `default-${H}.served-12/../x`,
      `default-${H}.lock.stale-`,
      `.default-${H}.json.tmp`,
      `.default-${H}.js.4242.abc.tmp`,
      `default-${H.toUpperCase()}.json`,
      `-${H}.json`,
    ];
    for (const name of foreign) {
      expect([name, belongsTo(name, undefined)]).toEqual([name, false]);
      expect([name, belongsTo(name, 'default')]).toEqual([name, false]);
      expect([name, belongsTo(name, 'main')]).toEqual([name, false]);
    }
    for (const name of ['main-3f2a9c0d1e4b5a67.js', `default-${H}.json`, `default-${H}.memo-${H2}.blob`]) {
      expect([name, belongsTo(name, undefined, 'keychain')]).toEqual([name, false]);
    }
  });

  it('takes none of another profile, even one whose name extends it', () => {
    for (const other of ['default-eu', 'default.b', 'defaults', 'xdefault']) {
      for (const name of filesOf(`${other}-${H}`)) expect(belongsTo(name, 'default')).toBe(false);
      for (const name of accountsOf(`${other}-${H}`))
        expect(belongsTo(name, 'default', 'keychain')).toBe(false);
    }
  });

  it('takes the files of profiles whose names hold dots and dashes', () => {
    for (const name of filesOf(`team.eu-west-${H}`)) {
      expect(belongsTo(name, 'team.eu-west')).toBe(true);
      expect(belongsTo(name, 'team')).toBe(false);
      expect(belongsTo(name, 'team.eu')).toBe(false);
      expect(belongsTo(name, 'teamXeu-west')).toBe(false);
    }
  });

  it('--all takes every key file but never the validated-config marker or foreign files', () => {
    for (const name of filesOf(`any-${H}`)) expect(belongsTo(name, undefined)).toBe(true);
    for (const name of accountsOf(`any-${H}`)) expect(belongsTo(name, undefined, 'keychain')).toBe(true);
    for (const name of [`config-ok-${H}`, 'README', 'notes.txt', `short-${H.slice(1)}.json`]) {
      expect(belongsTo(name, undefined)).toBe(false);
      expect(belongsTo(name, 'config-ok')).toBe(false);
    }
  });
});
