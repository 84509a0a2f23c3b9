/** `keybroker status`: per profile the source, the TTL and its origin, the cache entry; never a token. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';

let sb: Sandbox;
afterEach(() => sb?.cleanup());

async function twoProfiles(): Promise<string> {
  sb = makeSandbox();
  const keyFile = path.join(sb.home, 'signing.pem');
  expect((await runKeybroker(['keygen', '--out', keyFile], sb)).code).toBe(0);
  sb.writeConfig({
    defaultProfile: 'dev',
    profiles: {
      dev: { ttlMs: 600000, source: { type: 'jwt', signingKey: { file: keyFile }, audience: 'litellm' } },
      prod: { source: { type: 'keychain', service: 'llm-gateway', account: 'ci' } },
    },
  });
  return keyFile;
}

describe('keybroker status', () => {
  it('lists every profile with its source and TTL, and no cache entry before the first call', async () => {
    const keyFile = await twoProfiles();
    const r = await runKeybroker(['status'], sb);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        'profile dev (selected)',
        `  source: jwt ES256 (key from file ${keyFile}) aud=litellm`,
        '  ttl:    600000 ms (profile ttlMs)',
        '  cache:  file, no entry (the next call fetches a token)',
        'profile prod',
        '  source: keychain service=llm-gateway account=ci',
        '  ttl:    300000 ms (default)',
        '  cache:  file, no entry (the next call fetches a token)',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(0);
    // Looking never creates the cache directory.
    expect(fs.existsSync(sb.cacheDir)).toBe(false);
  });

  it("shows the cache entry's fingerprint and times, never the token", async () => {
    await twoProfiles();
    const tok = await runKeybroker([], sb);
    expect(tok.code).toBe(0);
    const token = tok.stdout.trim();
    const fp = createHash('sha256').update(token).digest('hex').slice(0, 12);
    const r = await runKeybroker(['status', '--profile', 'dev', '--json'], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain(token);
    const { profiles } = JSON.parse(r.stdout);
    expect(profiles).toHaveLength(1);
    const [p] = profiles;
    expect(p).toMatchObject({ name: 'dev', selected: true, ttlMs: 600000, ttlFrom: 'profile ttlMs' });
    expect(p.cache.storage).toBe('file');
    expect(p.cache.entry.fingerprint).toBe(fp);
    expect(p.cache.entry.state).toBe('fresh');
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(p.cache.entry.expiresAt).toBe(new Date(claims.exp * 1000).toISOString());
    // Usable while it still lives TTL + margin; refreshed ahead from a point in the last quarter of that.
    const fetched = Date.parse(p.cache.entry.fetchedAt);
    const until = claims.exp * 1000 - (600000 + 120000);
    expect(p.cache.entry.usableUntil).toBe(new Date(until).toISOString());
    const point = ((fetched % 997) + 1) / 997; // the entry's own point in the last quarter
    expect(p.cache.entry.nextRefreshAt).toBe(new Date(until - ((until - fetched) / 4) * point).toISOString());

    const text = await runKeybroker(['status', '--profile', 'dev'], sb);
    expect(text.stdout).toContain(`  cache:  file, entry ${fp} (fresh)\n`);
    expect(text.stdout).not.toContain(token);
  });

  it("takes the TTL from Claude Code's settings env block, as Claude Code would run keybroker", async () => {
    await twoProfiles();
    expect((await runKeybroker(['init', '--ttl', '1800000'], sb)).code).toBe(0);
    const r = await runKeybroker(['status', '--profile', 'prod'], sb);
    const settings = path.join(sb.home, '.claude', 'settings.json');
    expect(r.stdout).toContain(`  ttl:    1800000 ms (CLAUDE_CODE_API_KEY_HELPER_TTL_MS in ${settings})\n`);
    expect(r.code).toBe(0);
  });

  it('shows a profile that cannot be resolved with its error and hint', async () => {
    sb = makeSandbox();
    sb.writeConfig({
      profiles: {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a keybroker config template
        broken: { source: { type: 'vault', path: 'secret/${env:KB_TEST_UNSET}', field: 'token' } },
      },
    });
    const r = await runKeybroker(['status', '--json'], sb);
    expect(r.code).toBe(0);
    const { profiles } = JSON.parse(r.stdout);
    expect(profiles[0].name).toBe('broken');
    expect(profiles[0].error.code).toBe('ERR_CONFIG_ENV_UNSET');
  });

  it('without a config, the selected profile\'s error says how it was chosen (not "from --profile")', async () => {
    sb = makeSandbox();
    const r = await runKeybroker(['status'], sb);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toBe(
      `profile default (selected)\n  error:  profile "default" (from the default): not defined in no config file (looked for ${sb.env.KEYBROKER_MANAGED_CONFIG} and ${sb.configPath}) (no profiles are configured; run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE)\n`,
    );
  });

  it("--profile naming no configured profile is the token path's config error (exit 2), nothing on stdout", async () => {
    await twoProfiles();
    for (const args of [
      ['status', '--profile', 'nosuch'],
      ['status', '--profile', 'nosuch', '--json'],
    ]) {
      const r = await runKeybroker(args, sb);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `keybroker: profile "nosuch" (from --profile): not defined in ${sb.configPath} (available: dev, prod; run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE)\n`,
      );
      expect(r.code).toBe(2);
    }
  });
});
