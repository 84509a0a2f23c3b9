/**
 * `keybroker doctor` for an `oidc` profile against a real OpenID provider (oidc-provider on
 * 127.0.0.1): whether the login holds a refresh token (offline_access granted), the claims
 * against requireClaims, and `--probe`, which renews once through the token path's own code.
 */
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceLogin, loginAs, oidcConfig, oidcSuite } from '../helpers/oidc.js';
import { type RunResult, runKeybroker, type Sandbox } from '../helpers/run.js';
import {
  type SecretServiceSession,
  secretServiceSuite,
  startSecretService,
} from '../helpers/secret-service.js';
import { type OidcTestProvider, TestBrowser } from '../servers/oidc-provider.js';

let provider: OidcTestProvider;
let sb: Sandbox;
oidcSuite(
  (issuer) => oidcConfig(issuer, { requireClaims: ['email', 'groups'] }),
  (p, s) => {
    provider = p;
    sb = s;
  },
);

/** Doctor's text with times, durations and the token's redacted ends made stable. */
function lines(r: RunResult): string[] {
  return r.stdout
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<time>')
    .replace(/within \d+ s of the provider's/g, "within <n> s of the provider's")
    .replace(/in \d+ ms: eyJ\S…\S{4} \(\d+ chars\)/g, 'in <n> ms: <redacted>')
    .replace(/the token lives 3[56]\d\d s more/g, 'the token lives <about 3600> s more')
    .trimEnd()
    .split('\n');
}

/** The oidc source's and the probe's check lines, each with its fix line. */
function oidcLines(r: RunResult): string[] {
  const out: string[] = [];
  let keep = false;
  for (const l of lines(r)) {
    if (l.startsWith('[')) keep = /^\[.{4}\] (source\.oidc|probe)/.test(l);
    if (keep && (l.startsWith('[') || l.startsWith('       fix: '))) out.push(l);
  }
  return out;
}

/** Claude Code wired to keybroker, so that every check but the oidc ones passes. */
async function wire(): Promise<void> {
  expect((await runKeybroker(['init', '--ttl', '300000'], sb)).code).toBe(0);
}

/** Neither the refresh token nor any JWT reaches doctor's output. */
function expectNoSecret(r: RunResult, secrets: string[]): void {
  for (const out of [r.stdout, r.stderr]) {
    for (const s of secrets) expect(out).not.toContain(s);
    expect(out).not.toMatch(/eyJ[\w-]{20,}\.[\w-]{20,}/);
  }
}

function refreshToken(): string {
  const blob = fs.readdirSync(sb.cacheDir).find((f) => /^oidc-login\.sso\.[0-9a-f]{24}\.blob$/.test(f));
  return JSON.parse(fs.readFileSync(`${sb.cacheDir}/${blob}`, 'utf8')).refreshToken as string;
}

const head = (issuer: string) => [
  `[ok  ] source.oidc.discovery: discovery at ${issuer}/.well-known/openid-configuration`,
  `[ok  ] source.oidc.issuer: issuer matches ${issuer}`,
  "[ok  ] source.oidc.clock: clock within <n> s of the provider's",
];

describe('doctor: does the login hold a refresh token (offline_access granted)', () => {
  it('signed in with offline_access: the refresh token is kept (never shown), claims match requireClaims', async () => {
    await wire();
    await loginAs(sb, provider, 'alice');
    const d = await runKeybroker(['doctor'], sb);
    expect(oidcLines(d)).toEqual([
      ...head(provider.issuer),
      '[ok  ] source.oidc.offline: the provider offers the refresh_token grant and the offline_access scope',
      '[ok  ] source.oidc.login: signed in as alice (alice@example.test), groups eng, llm-users since <time>',
      '[ok  ] source.oidc.refresh: a refresh token is kept in the file store (received <time>): the token path renews silently',
      '[info] source.oidc.claims: at login the ID token carried sub=alice, email=alice@example.test, groups=[eng, llm-users]; requireClaims: email, groups present (doctor --probe checks the printed token)',
    ]);
    expect(lines(d).at(-1)).toBe('all checks passed');
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    expectNoSecret(d, [refreshToken()]);
    // Doctor without --probe asks the provider for nothing but its discovery document.
    expect(provider.grants.map((g) => g.grantType)).toEqual(['urn:ietf:params:oauth:grant-type:device_code']);
  });

  it('signed in without offline_access: the provider gives no refresh token, login refuses, doctor says what to add', async () => {
    await wire();
    sb.writeConfig(oidcConfig(provider.issuer, { scopes: ['openid', 'profile', 'email'] }));
    const browser = new TestBrowser();
    const login = await deviceLogin(sb, (uri, code) => browser.completeDeviceFlow(uri, code, 'alice'));
    expect(login.code).toBe(4);
    expect(login.stderr.trimEnd().split('\n').at(-1)).toBe(
      "keybroker: login to profile sso: the provider issued no refresh token, so keybroker could not renew silently (ask for the provider's offline scope (offline_access for most; see docs/oidc.md) and allow the refresh_token grant for the client; run keybroker explain ERR_OIDC_NO_REFRESH_TOKEN)",
    );
    // The provider did sign alice in: it only withheld the refresh token.
    expect(provider.grants).toEqual([
      { grantType: 'urn:ietf:params:oauth:grant-type:device_code', ok: true },
    ]);
    const d = await runKeybroker(['doctor'], sb);
    expect(oidcLines(d)).toEqual([
      ...head(provider.issuer),
      '[ok  ] source.oidc.offline: the provider offers the refresh_token grant',
      '[FAIL] source.oidc.login: nobody is signed in to profile sso',
      '       fix: run keybroker login --profile sso; run keybroker explain ERR_OIDC_NO_LOGIN',
      '[FAIL] source.oidc.refresh: scopes (openid profile email) do not ask for offline_access: most providers then issue no refresh token, and keybroker login refuses a login without one',
      '       fix: add "offline_access" to scopes (or the provider\'s own setting: see docs/oidc.md, provider recipes), then run keybroker login --profile sso; run keybroker explain ERR_OIDC_NO_REFRESH_TOKEN',
    ]);
    expect(lines(d).at(-1)).toBe('2 checks failed');
    expect(d.code).toBe(1);
  });

  it('a login whose refresh token the provider refused: signed in, but no refresh token any more', async () => {
    await wire();
    await loginAs(sb, provider, 'bob');
    provider.users.get('bob')!.disabled = true;
    expect((await runKeybroker([], sb)).code).toBe(4);
    const d = await runKeybroker(['doctor'], sb);
    expect(oidcLines(d).slice(4, 7)).toEqual([
      '[ok  ] source.oidc.login: signed in as bob (bob@example.test), groups sales since <time>',
      '[FAIL] source.oidc.refresh: the login of bob holds no refresh token any more (the provider refused it, or it was removed): the token path cannot renew',
      '       fix: run keybroker login --profile sso; run keybroker explain ERR_OIDC_LOGIN_EXPIRED',
    ]);
    expect(d.code).toBe(1);
  });
});

describe('doctor --probe: renews once through the token path and shows the claims', () => {
  it('one refresh grant, the claims against requireClaims, the lifetime; the rotated refresh token is stored', async () => {
    await wire();
    await loginAs(sb, provider, 'alice');
    const before = refreshToken();
    provider.grants.length = 0;
    const d = await runKeybroker(['doctor', '--probe'], sb);
    expect(d.stderr).toBe('');
    expect(oidcLines(d)).toEqual([
      ...head(provider.issuer),
      '[ok  ] source.oidc.offline: the provider offers the refresh_token grant and the offline_access scope',
      '[ok  ] source.oidc.login: signed in as alice (alice@example.test), groups eng, llm-users since <time>',
      '[ok  ] source.oidc.refresh: a refresh token is kept in the file store (received <time>): the token path renews silently',
      '[ok  ] probe: fetched a token from oidc in <n> ms: <redacted>',
      `[ok  ] probe.claims: the renewed token carries iss=${provider.issuer}, sub=alice, aud=keybroker-test, email=alice@example.test, groups=[eng, llm-users], exp=<time>; also email_verified, iat; requireClaims: email, groups present`,
      '[ok  ] probe.lifetime: the token lives <about 3600> s more, at least TTL + margin (420 s)',
    ]);
    const l = lines(d);
    expect(l.slice(l.indexOf('probe:'), l.indexOf('probe:') + 5)).toEqual([
      'probe:',
      expect.stringMatching(/^ {2}token: {7}eyJ\S…\S{4} \(\d+ chars\)$/),
      expect.stringMatching(/^ {2}fingerprint: [0-9a-f]{12}$/),
      '  source:      oidc',
      '  expires:     <time>',
    ]);
    expect(l.at(-1)).toBe('all checks passed');
    expect(d.code).toBe(0);
    // Exactly one renewal at the provider, and its rotated refresh token is what is kept now.
    expect(provider.refreshGrants()).toEqual([{ grantType: 'refresh_token', ok: true }]);
    const after = refreshToken();
    expect(after).not.toBe(before);
    expectNoSecret(d, [before, after]);
    // The next token run renews with the rotated token: no new login (the old one would be reuse).
    const token = await runKeybroker([], sb);
    expect({ code: token.code, stderr: token.stderr }).toEqual({ code: 0, stderr: '' });
    expect(provider.refreshGrants()).toEqual(Array(2).fill({ grantType: 'refresh_token', ok: true }));
  });

  it('--json: the probe and its claims as data', async () => {
    await loginAs(sb, provider, 'alice');
    const d = await runKeybroker(['doctor', '--probe', '--json'], sb);
    const report = JSON.parse(d.stdout);
    const ids = report.checks.map((c: { id: string }) => c.id);
    expect(ids.filter((id: string) => /^(source\.oidc|probe)/.test(id))).toEqual([
      'source.oidc.discovery',
      'source.oidc.issuer',
      'source.oidc.clock',
      'source.oidc.offline',
      'source.oidc.login',
      'source.oidc.refresh',
      'probe',
      'probe.claims',
      'probe.lifetime',
    ]);
    expect(report.probe).toMatchObject({ ok: true, source: 'oidc' });
    expect(report.probe.jwt.claims).toMatchObject({
      sub: 'alice',
      email: 'alice@example.test',
      groups: ['eng', 'llm-users'],
      aud: 'keybroker-test',
    });
    expect(provider.refreshGrants()).toEqual([{ grantType: 'refresh_token', ok: true }]);
  });

  it('a required claim the token lacks: the probe fails as the token path would (exit 5) and lists what it carries', async () => {
    sb.writeConfig(oidcConfig(provider.issuer, { requireClaims: ['email', 'groups', 'department'] }));
    await wire();
    await loginAs(sb, provider, 'alice');
    const plain = await runKeybroker(['doctor'], sb);
    expect(oidcLines(plain).at(-1)).toBe(
      '[info] source.oidc.claims: at login the ID token carried sub=alice, email=alice@example.test, groups=[eng, llm-users]; requireClaims: email, groups present; department checked only with --probe (doctor --probe checks the printed token)',
    );
    const d = await runKeybroker(['doctor', '--probe'], sb);
    expect(oidcLines(d).slice(6)).toEqual([
      '[FAIL] probe: oidc source of profile sso: the token lacks required claim department',
      '       fix: map the claim at the provider (scopes, claim rules) or change requireClaims; run keybroker explain ERR_OIDC_CLAIMS_MISSING',
      `[FAIL] probe.claims: the renewed token carries iss=${provider.issuer}, sub=alice, aud=keybroker-test, email=alice@example.test, groups=[eng, llm-users], exp=<time>; also email_verified, iat; requireClaims: department missing, email, groups present`,
      '       fix: map department at the provider (scopes, claim rules) or change requireClaims; the token path exits 5 for profile sso; run keybroker explain ERR_OIDC_CLAIMS_MISSING',
    ]);
    const l = lines(d);
    expect(l.slice(-2)).toEqual([
      'probe: the token path exits 5 with ERR_OIDC_CLAIMS_MISSING',
      '2 checks failed',
    ]);
    expect(d.code).toBe(1);
    // The renewal itself worked and its rotated refresh token is kept: the login goes on.
    expect(provider.refreshGrants()).toEqual([{ grantType: 'refresh_token', ok: true }]);
    sb.writeConfig(oidcConfig(provider.issuer, { requireClaims: ['email', 'groups'] }));
    expect((await runKeybroker([], sb)).code).toBe(0);
    expect(provider.refreshGrants()).toEqual(Array(2).fill({ grantType: 'refresh_token', ok: true }));
  });

  it('the user disabled at the provider: the probe fails with the login hint (the token path exits 4)', async () => {
    await wire();
    await loginAs(sb, provider, 'bob');
    provider.users.get('bob')!.disabled = true;
    const d = await runKeybroker(['doctor', '--probe'], sb);
    expect(oidcLines(d).slice(6)).toEqual([
      '[FAIL] probe: oidc source of profile sso: the provider no longer accepts the login (invalid_grant: expired, revoked or the account disabled)',
      '       fix: run keybroker login --profile sso; run keybroker explain ERR_OIDC_LOGIN_EXPIRED',
    ]);
    expect(lines(d).slice(-2)).toEqual([
      'probe: the token path exits 4 with ERR_OIDC_LOGIN_EXPIRED',
      '1 check failed',
    ]);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(1);
    expect(provider.refreshGrants()).toEqual([
      { grantType: 'refresh_token', ok: false, error: 'invalid_grant' },
    ]);
    const json = JSON.parse((await runKeybroker(['doctor', '--probe', '--json'], sb)).stdout);
    expect(json.probe).toEqual({ ok: false, code: 'ERR_OIDC_NO_LOGIN', exitCode: 4 });
    // The dead refresh token was dropped: the token path says so without asking the provider.
    expect(provider.refreshGrants()).toHaveLength(1);
    expect(await runKeybroker([], sb)).toMatchObject({
      code: 4,
      stdout: '',
      stderr:
        'keybroker: oidc source of profile sso: not signed in (run keybroker login --profile sso; run keybroker explain ERR_OIDC_NO_LOGIN)\n',
    });
  });
});

describe("doctor --probe shares the token path's single flight", () => {
  it('probes and token runs at once: no refresh token is ever redeemed twice, the login goes on', async () => {
    await loginAs(sb, provider, 'alice');
    // timeoutMs covers 8 Node starts queued on the login's lock on a loaded 2-core machine.
    sb.writeConfig({
      ...oidcConfig(provider.issuer),
      profiles: { sso: { ...oidcConfig(provider.issuer).profiles.sso, timeoutMs: 120_000 } },
    });
    provider.grants.length = 0;
    const runs = await Promise.all([
      ...Array.from({ length: 4 }, () =>
        runKeybroker(['doctor', '--probe', '--json'], sb, { killAfterMs: 120_000 }),
      ),
      ...Array.from({ length: 4 }, () => runKeybroker(['--refresh'], sb, { killAfterMs: 120_000 })),
    ]);
    const probes = runs.slice(0, 4).map((r) => JSON.parse(r.stdout).probe.ok);
    expect(probes).toEqual([true, true, true, true]);
    expect(runs.slice(4).map((r) => [r.code, r.stderr])).toEqual(Array(4).fill([0, '']));
    // Reuse detection would answer invalid_grant (and end the login) to a second redemption.
    // Each probe renews (it bypasses the cache); concurrent --refresh runs may share one renewal.
    const grants = provider.refreshGrants();
    expect(grants.filter((g) => !g.ok)).toEqual([]);
    expect(grants.length).toBeGreaterThanOrEqual(5);
    expect(grants.length).toBeLessThanOrEqual(8);
    expect((await runKeybroker(['--refresh'], sb)).code).toBe(0);
  }, 240_000);
});

const keychain = secretServiceSuite('doctor, oidc login kept in the keychain');

describe.skipIf(keychain.skip)(keychain.title, () => {
  let ss: SecretServiceSession;
  beforeAll(async () => {
    ss = await startSecretService();
  });
  afterAll(async () => {
    await ss?.stop();
  });

  it('the refresh token in the keychain: doctor finds it, --probe rotates it there', async () => {
    sb.env.DBUS_SESSION_BUS_ADDRESS = ss.address;
    sb.writeConfig(oidcConfig(provider.issuer, {}, { cache: { storage: 'keychain' } }));
    await loginAs(sb, provider, 'alice');
    // Nothing of the secret in the cache directory: only who signed in.
    expect(fs.readdirSync(sb.cacheDir).filter((f) => f.endsWith('.blob'))).toEqual([]);
    const d = await runKeybroker(['doctor'], sb);
    expect(oidcLines(d)[5]).toBe(
      '[ok  ] source.oidc.refresh: a refresh token is kept in the keychain (received <time>): the token path renews silently',
    );
    provider.grants.length = 0;
    const p = await runKeybroker(['doctor', '--probe', '--json'], sb);
    expect(JSON.parse(p.stdout).probe).toMatchObject({ ok: true, source: 'oidc' });
    expect((await runKeybroker([], sb)).code).toBe(0);
    expect(provider.refreshGrants()).toEqual(Array(2).fill({ grantType: 'refresh_token', ok: true }));
  });
});
