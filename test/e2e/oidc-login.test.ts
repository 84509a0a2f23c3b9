/**
 * The `oidc` source and `keybroker login --device` against a real OpenID provider
 * (oidc-provider on 127.0.0.1): the sign-in is finished through the provider's own pages.
 */
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { claimsOf, DEVICE_LINE, deviceLogin, loginAs, oidcConfig, oidcSuite } from '../helpers/oidc.js';
import { runKeybroker, type Sandbox } from '../helpers/run.js';
import { type OidcTestProvider, startOidcProvider, TestBrowser } from '../servers/oidc-provider.js';

let provider: OidcTestProvider;
let sb: Sandbox;
oidcSuite(
  (issuer) => oidcConfig(issuer),
  (p, s) => {
    provider = p;
    sb = s;
  },
);

const noLoginLine =
  'keybroker: oidc source of profile sso: not signed in (run keybroker login --profile sso; run keybroker explain ERR_OIDC_NO_LOGIN)';

describe('keybroker login --device', () => {
  it('prints the code line, finishes through the provider pages, names who signed in', async () => {
    const run = await loginAs(sb, provider, 'alice');
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(
      `keybroker: to sign in, open ${provider.issuer}/device and enter the code ${run.userCode}`,
    );
    expect(lines[1]).toBe(`keybroker: or open ${provider.issuer}/device?user_code=${run.userCode}`);
    expect(lines).toHaveLength(3);
    // The refresh token is in the 0600 file store; the identity record holds no token.
    const files = fs.readdirSync(sb.cacheDir);
    const secret = files.find((f) => /^oidc-login\.sso\.[0-9a-f]{24}\.blob$/.test(f));
    const who = files.find((f) => /^oidc-login\.sso\.[0-9a-f]{24}\.who\.json$/.test(f));
    expect(secret && who).toBeTruthy();
    expect(fs.statSync(`${sb.cacheDir}/${secret}`).mode & 0o777).toBe(0o600);
    const identity = JSON.parse(fs.readFileSync(`${sb.cacheDir}/${who}`, 'utf8'));
    expect(identity).toMatchObject({
      sub: 'alice',
      email: 'alice@example.test',
      groups: ['eng', 'llm-users'],
    });
    expect(JSON.stringify(identity)).not.toContain(
      JSON.parse(fs.readFileSync(`${sb.cacheDir}/${secret}`, 'utf8')).refreshToken,
    );
  });

  it('status names who is signed in and since when, never a token', async () => {
    const before = await runKeybroker(['status'], sb);
    expect(before.stdout).toContain('  login:  not signed in (run keybroker login --profile sso)\n');
    await loginAs(sb, provider, 'alice');
    expect((await runKeybroker([], sb)).code).toBe(0);
    const st = await runKeybroker(['status', '--json'], sb);
    expect(st.code).toBe(0);
    const login = JSON.parse(st.stdout).profiles[0].login;
    expect(login).toEqual({
      state: 'signed-in',
      sub: 'alice',
      email: 'alice@example.test',
      groups: ['eng', 'llm-users'],
      loginAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const text = await runKeybroker(['status'], sb);
    expect(text.stdout).toContain('  login:  alice (alice@example.test), groups eng, llm-users\n');
    expect(text.stdout).toContain(`    signed in:    ${login.loginAt}\n`);
    const secret = fs.readFileSync(
      `${sb.cacheDir}/${fs.readdirSync(sb.cacheDir).find((f) => f.endsWith('.blob'))}`,
      'utf8',
    );
    for (const out of [st.stdout, text.stdout, st.stderr, text.stderr]) {
      expect(out).not.toContain(JSON.parse(secret).refreshToken);
      expect(out).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
    }
  });

  it('then the token path renews silently with the refresh token and prints the ID token', async () => {
    await loginAs(sb, provider, 'alice');
    const first = await runKeybroker([], sb);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    const claims = claimsOf(first.stdout.trim());
    expect(claims).toMatchObject({
      iss: provider.issuer,
      sub: 'alice',
      aud: 'keybroker-test',
      email: 'alice@example.test',
    });
    expect(claims.groups).toEqual(['eng', 'llm-users']);
    // A cache hit: the same token, no second grant.
    const second = await runKeybroker([], sb);
    expect(second).toMatchObject({ code: 0, stdout: first.stdout, stderr: '' });
    expect(provider.refreshGrants()).toEqual([{ grantType: 'refresh_token', ok: true }]);
  });

  it('rotated refresh tokens are kept: repeated renewals never present a used one', async () => {
    await loginAs(sb, provider, 'alice');
    for (let i = 0; i < 4; i++) {
      const r = await runKeybroker(['--refresh'], sb);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    }
    expect(provider.refreshGrants()).toEqual(Array(4).fill({ grantType: 'refresh_token', ok: true }));
  });

  it('access_denied at the provider is exit 4 with the login hint', async () => {
    const browser = new TestBrowser();
    const run = await deviceLogin(sb, (uri, code) => browser.abortDeviceFlow(uri, code));
    expect(run.code).toBe(4);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n').at(-1)).toBe(
      'keybroker: login to profile sso: the sign-in was refused (access_denied) (run keybroker login --profile sso; run keybroker explain ERR_OIDC_LOGIN_REFUSED)',
    );
    expect((await runKeybroker([], sb)).stderr).toBe(`${noLoginLine}\n`);
  });

  it('without a login the token path is exit 4 and names the command to run', async () => {
    const r = await runKeybroker([], sb);
    expect(r).toMatchObject({ code: 4, stdout: '', stderr: `${noLoginLine}\n` });
  });

  it('a user disabled at the provider: the next renewal is exit 4', async () => {
    await loginAs(sb, provider, 'bob');
    expect((await runKeybroker([], sb)).code).toBe(0);
    provider.users.get('bob')!.disabled = true;
    const r = await runKeybroker(['--refresh'], sb);
    expect(r).toMatchObject({
      code: 4,
      stdout: '',
      stderr:
        'keybroker: oidc source of profile sso: the provider no longer accepts the login (invalid_grant: expired, revoked or the account disabled) (run keybroker login --profile sso; run keybroker explain ERR_OIDC_LOGIN_EXPIRED)\n',
    });
    // The dead refresh token is gone: the next run says so without asking the provider.
    const grants = provider.grants.length;
    expect((await runKeybroker([], sb)).stderr).toBe(`${noLoginLine}\n`);
    expect(provider.grants.length).toBe(grants);
  });

  it('50 cold token-path runs after a login: exactly one refresh grant, one token for all', async () => {
    // A generous timeoutMs: this is about single flight, and 50 Node starts on a loaded 2-core
    // machine take longer than the default 8 s.
    sb.writeConfig({
      ...oidcConfig(provider.issuer),
      profiles: { sso: { ...oidcConfig(provider.issuer).profiles.sso, timeoutMs: 120_000 } },
    });
    await loginAs(sb, provider, 'alice');
    const runs = await Promise.all(
      Array.from({ length: 50 }, () => runKeybroker([], sb, { killAfterMs: 120_000 })),
    );
    expect(runs.filter((r) => r.code !== 0).map((r) => r.stderr)).toEqual([]);
    expect(runs.map((r) => r.code)).toEqual(Array(50).fill(0));
    expect(new Set(runs.map((r) => r.stdout)).size).toBe(1);
    expect(runs.map((r) => r.stderr).filter((e) => e !== '')).toEqual([]);
    expect(provider.refreshGrants()).toEqual([{ grantType: 'refresh_token', ok: true }]);
  }, 240_000);

  it('logout revokes the refresh token at the provider and removes every local trace', async () => {
    await loginAs(sb, provider, 'alice');
    expect((await runKeybroker([], sb)).code).toBe(0);
    const secret = JSON.parse(
      fs.readFileSync(
        `${sb.cacheDir}/${fs.readdirSync(sb.cacheDir).find((f) => f.endsWith('.blob'))}`,
        'utf8',
      ),
    ).refreshToken as string;
    const revocations = provider.revocations;
    const out = await runKeybroker(['logout'], sb);
    expect(out).toMatchObject({
      code: 0,
      stdout: '',
      stderr: 'keybroker: signed out of profile sso (alice); the provider revoked the refresh token\n',
    });
    expect(provider.revocations).toBe(revocations + 1);
    // Nothing of the login or its tokens is left (the lock files are released and gone too).
    expect(fs.readdirSync(sb.cacheDir).filter((f) => /oidc-login|^sso-/.test(f))).toEqual([]);
    // The provider no longer takes the refresh token either.
    const res = await fetch(`${provider.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: secret,
        client_id: 'keybroker-test',
      }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
    expect(await runKeybroker([], sb)).toMatchObject({ code: 4, stdout: '', stderr: `${noLoginLine}\n` });
  });

  it('cache.storage "none" makes login refuse with a hint (exit 2)', async () => {
    sb.writeConfig(oidcConfig(provider.issuer, {}, { cache: { storage: 'none' } }));
    const r = await runKeybroker(['login', '--device'], sb);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr:
        'keybroker: profile sso: cache.storage is "none", so there is nowhere to keep the oidc login (set cache.storage to "keychain" (or "file", a 0600 file) for this profile\'s config; run keybroker explain ERR_OIDC_NO_STORAGE)\n',
    });
  });

  it('login on a profile that is not oidc is exit 2', async () => {
    sb.writeConfig({ profiles: { default: { source: { type: 'keychain', service: 's' } } } });
    const r = await runKeybroker(['login'], sb);
    expect(r).toMatchObject({
      code: 2,
      stderr:
        'keybroker: login: profile default uses a keychain source, not oidc (only an oidc profile signs in; pass --profile with an oidc profile; run keybroker explain ERR_OIDC_NOT_OIDC)\n',
    });
  });

  it('an unreachable provider is exit 3, for login and for the token path', async () => {
    const dead = await startOidcProvider();
    const issuer = dead.issuer;
    await dead.close();
    sb.writeConfig(oidcConfig(issuer));
    const login = await runKeybroker(['login', '--device'], sb);
    expect(login.code).toBe(3);
    expect(login.stderr).toBe(
      `keybroker: oidc discovery at ${issuer}: the provider cannot be reached (ECONNREFUSED) (check the network and the issuer address; run keybroker explain ERR_OIDC_UNREACHABLE)\n`,
    );
    expect(DEVICE_LINE.test(login.stderr)).toBe(false);
  });
});
