/** parseTokenArgv: the token path's few flags, read without yargs; anything else is yargs's. */
import { describe, expect, it } from 'vitest';
import { parseTokenArgv } from '../../src/cli/token-args.js';

const plain = { refresh: false, cache: true, json: false, debug: false };

describe('parseTokenArgv', () => {
  it('reads the default command and `token` with their flags', () => {
    expect(parseTokenArgv([])).toEqual(plain);
    expect(parseTokenArgv(['token'])).toEqual(plain);
    expect(parseTokenArgv(['--refresh', '--json', '--debug'])).toEqual({
      ...plain,
      refresh: true,
      json: true,
      debug: true,
    });
    expect(parseTokenArgv(['token', '--no-cache'])).toEqual({ ...plain, cache: false });
    expect(parseTokenArgv(['--profile', 'work', '--config=/tmp/c.json'])).toEqual({
      ...plain,
      profile: 'work',
      config: '/tmp/c.json',
    });
    expect(parseTokenArgv(['--profile=a', '--profile', 'b'])).toEqual({ ...plain, profile: 'b' });
  });

  it('leaves everything else to yargs', () => {
    for (const argv of [
      ['status'],
      ['--help'],
      ['--version'],
      ['token', 'token'],
      ['--profile'],
      ['--profile', '--json'],
      ['--refresh=true'],
      ['--jsno'],
      ['-h'],
      ['tokne'],
    ]) {
      expect(parseTokenArgv(argv), argv.join(' ')).toBeUndefined();
    }
  });
});
