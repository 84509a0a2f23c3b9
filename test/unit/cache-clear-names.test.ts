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
    `${key}.served-4242-98765`,
    `${key}.memo-${H2}.blob`,
    `${key}.retry-after.blob`,
    `${key}.memo-${H2}`, // a keychain blob account, without its blob: prefix
    `.${key}.json.4242.tmp`,
    key, // a keychain entry account
  ];

  it('takes every file of the profile, whatever its config hash', () => {
    for (const name of filesOf(`default-${H}`)) expect(belongsTo(name, 'default')).toBe(true);
    for (const name of filesOf(`default-${H2}`)) expect(belongsTo(name, 'default')).toBe(true);
  });

  it('takes none of another profile, even one whose name extends it', () => {
    for (const other of ['default-eu', 'default.b', 'defaults', 'xdefault']) {
      for (const name of filesOf(`${other}-${H}`)) expect(belongsTo(name, 'default')).toBe(false);
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
    for (const name of [`config-ok-${H}`, 'README', 'notes.txt', `short-${H.slice(1)}.json`]) {
      expect(belongsTo(name, undefined)).toBe(false);
      expect(belongsTo(name, 'config-ok')).toBe(false);
    }
  });
});
