/** How keybroker reads Claude Code's settings: helper commands, precedence, the TTL variable. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  effectiveEnv,
  parseClaudeTtl,
  parseHelper,
  type SettingsFile,
  settingsLocations,
  shellQuote,
  splitCommand,
  winningHelper,
} from '../../src/doctor/claude-settings.js';

const file = (scope: SettingsFile['scope'], data: Record<string, unknown> | undefined): SettingsFile => ({
  scope,
  path: `/${scope}/settings.json`,
  exists: data !== undefined,
  ...(data ? { data } : {}),
});

describe('Claude Code settings', () => {
  it('shellQuote output splits back into the same words, whatever they hold', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: 'binary-ascii' }).filter((s) => !s.includes('\0')),
          { minLength: 1 },
        ),
        (words) => {
          expect(splitCommand(words.map(shellQuote).join(' '))).toEqual(words);
        },
      ),
    );
  });

  it('quotes only when needed', () => {
    expect(shellQuote('/usr/local/bin/keybroker')).toBe('/usr/local/bin/keybroker');
    expect(shellQuote('/Applications/My Tools/keybroker')).toBe("'/Applications/My Tools/keybroker'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });

  it('finds the program and profile of a helper command', () => {
    expect(parseHelper("'/opt/kb/keybroker' --profile work")).toEqual({
      program: '/opt/kb/keybroker',
      profile: 'work',
      args: ['--profile', 'work'],
    });
    expect(parseHelper('KEYBROKER_DEBUG=0 exec keybroker token --profile=ci')).toMatchObject({
      program: 'keybroker',
      profile: 'ci',
    });
    expect(parseHelper('~/bin/get-key.sh')).toEqual({ program: '~/bin/get-key.sh', args: [] });
  });

  it('the first file in precedence order that sets apiKeyHelper wins', () => {
    const files = [
      file('managed', undefined),
      file('project-local', { env: { X: '1' } }),
      file('project', { apiKeyHelper: 'project-helper' }),
      file('user', { apiKeyHelper: 'user-helper' }),
    ];
    expect(winningHelper(files)?.command).toBe('project-helper');
    expect(winningHelper(files)?.file.scope).toBe('project');
    expect(winningHelper([file('user', { apiKeyHelper: '  ' })])).toBeUndefined();
  });

  it('env blocks win over the environment, higher precedence first', () => {
    const files = [file('managed', { env: { T: '60000' } }), file('user', { env: { T: '1000' } })];
    expect(effectiveEnv(files, { T: '5' }, 'T')).toEqual({ value: '60000', from: '/managed/settings.json' });
    expect(effectiveEnv([], { T: '5' }, 'T')).toEqual({ value: '5', from: 'the environment' });
    expect(effectiveEnv([], {}, 'T')).toBeUndefined();
  });

  it('reads the TTL variable as Claude Code does: a positive integer, else 5 minutes', () => {
    expect(parseClaudeTtl(undefined)).toEqual({ ttlMs: 300000, valid: true });
    expect(parseClaudeTtl('3600000')).toEqual({ ttlMs: 3600000, valid: true });
    expect(parseClaudeTtl('1h')).toEqual({ ttlMs: 300000, valid: false });
    expect(parseClaudeTtl('0')).toEqual({ ttlMs: 300000, valid: false });
  });

  it('lists the settings files in precedence order, the project file once when cwd is home', () => {
    const ctx = { env: {}, platform: 'linux' as const, homeDir: '/home/a', cwd: '/src/repo' };
    expect(settingsLocations(ctx)).toEqual([
      { scope: 'managed', path: '/etc/claude-code/managed-settings.json' },
      { scope: 'project-local', path: '/src/repo/.claude/settings.local.json' },
      { scope: 'project', path: '/src/repo/.claude/settings.json' },
      { scope: 'user', path: '/home/a/.claude/settings.json' },
    ]);
    expect(settingsLocations({ ...ctx, cwd: '/home/a' }).map((l) => l.scope)).toEqual([
      'managed',
      'project-local',
      'user',
    ]);
    expect(
      settingsLocations({ ...ctx, env: { KEYBROKER_CLAUDE_MANAGED_SETTINGS: '/tmp/m.json' } })[0],
    ).toEqual({
      scope: 'managed',
      path: '/tmp/m.json',
    });
  });
});
