/**
 * `keybroker login --browser`: authorization code + PKCE with a loopback redirect on 127.0.0.1
 * (RFC 8252) against a real provider (oidc-provider). Once by a scripted client following the
 * redirects, once in headless Chromium that `BROWSER` starts, driven over the DevTools protocol.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { claimsOf, oidcConfig, oidcSuite } from '../helpers/oidc.js';
import { type RunResult, runKeybroker, type Sandbox } from '../helpers/run.js';
import { type OidcTestProvider, TestBrowser } from '../servers/oidc-provider.js';

const URL_LINE = /^keybroker: opening your browser to sign in; if it does not open, go to (\S+)$/m;

let provider: OidcTestProvider;
let sb: Sandbox;
oidcSuite(oidcConfig, (p, s) => {
  provider = p;
  sb = s;
});

/** Runs login --browser; `act` gets the printed URL once it is there. */
async function browserLogin(env: Record<string, string>, act: (url: string) => Promise<unknown>) {
  let seen = '';
  let acted: Promise<unknown> | undefined;
  const run: RunResult = await runKeybroker(['login', '--browser'], sb, {
    env,
    killAfterMs: 90_000,
    onSpawn: (child) =>
      child.stderr?.on('data', (d: Buffer) => {
        seen += d.toString();
        const m = URL_LINE.exec(seen);
        if (m && !acted) acted = act(m[1]!);
      }),
  });
  return { run, result: await acted };
}

function expectSignedIn(run: RunResult) {
  expect(run.code).toBe(0);
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(URL_LINE);
  expect(lines[1]).toBe('keybroker: signed in to profile sso as alice (alice@example.test)');
}

describe('keybroker login --browser', () => {
  it('a scripted browser follows the redirects to the loopback listener; PKCE and state are sent', async () => {
    const browser = new TestBrowser();
    // BROWSER=true: the "browser" started is a no-op; the person uses the printed address.
    const { run, result } = await browserLogin({ BROWSER: 'true' }, async (url) => {
      const u = new URL(url);
      expect(u.origin).toBe(provider.issuer);
      expect(u.searchParams.get('code_challenge_method')).toBe('S256');
      expect(u.searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
      expect(u.searchParams.get('scope')).toBe('openid profile email offline_access');
      expect(u.searchParams.get('state')).toBeTruthy();
      const page = await browser.signInAndConsent(await browser.go(url), 'alice');
      return page;
    });
    expectSignedIn(run);
    const page = result as { url: string; html: string };
    expect(page.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback\?code=/);
    expect(page.html).toContain('You can close this tab.');
    const token = await runKeybroker([], sb);
    expect(token).toMatchObject({ code: 0, stderr: '' });
    expect(claimsOf(token.stdout.trim())).toMatchObject({ sub: 'alice', email: 'alice@example.test' });
  });

  it('in headless Chromium started through BROWSER, signing in on the provider page', async () => {
    const { chromium } = await import('playwright-core');
    const port = await freePort();
    const profileDir = path.join(sb.dir, 'chromium-profile');
    const wrapper = path.join(sb.dir, 'browser.sh');
    // What a person's BROWSER would be, made headless; the debugging port lets the test type.
    fs.writeFileSync(
      wrapper,
      `#!/bin/sh\nexec /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-dev-shm-usage --no-first-run --user-data-dir=${profileDir} --remote-debugging-address=127.0.0.1 --remote-debugging-port=${port} "$1" >/dev/null 2>&1\n`,
      { mode: 0o700 },
    );
    let pageText = '';
    const { run } = await browserLogin({ BROWSER: wrapper }, async (url) => {
      const cdp = await connectWithRetry(chromium, `http://127.0.0.1:${port}`);
      try {
        const page = await findPage(cdp, provider.issuer);
        await page.waitForSelector('input[name="login"]', { timeout: 60_000 });
        await page.fill('input[name="login"]', 'alice');
        await page.fill('input[name="password"]', 'any');
        await Promise.all([page.waitForNavigation({ timeout: 60_000 }), page.click('button[type="submit"]')]);
        // The consent page, then the redirect to keybroker's loopback listener.
        await Promise.all([
          page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback/, { timeout: 60_000 }),
          page.click('button[type="submit"]'),
        ]);
        pageText = await page.innerText('body');
        expect(url.startsWith(`${provider.issuer}/auth?`)).toBe(true);
      } finally {
        // Close Chromium itself (closing a CDP connection would only disconnect).
        const session = await cdp.browser.newBrowserCDPSession();
        await session.send('Browser.close').catch(() => {});
      }
    });
    // Chromium writes its profile until it has exited: wait for that before the sandbox goes.
    await chromiumGone(profileDir);
    expectSignedIn(run);
    expect(pageText).toContain('You can close this tab.');
  }, 180_000);
});

/** Waits (up to 30 s) until no process runs with `profileDir` as its Chromium profile. */
async function chromiumGone(profileDir: string): Promise<void> {
  const needle = `--user-data-dir=${profileDir}`;
  for (let i = 0; i < 300; i++) {
    const alive = fs.readdirSync('/proc').some((name) => {
      if (!/^\d+$/.test(name)) return false;
      try {
        return fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle);
      } catch {
        return false;
      }
    });
    if (!alive) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

type Chromium = typeof import('playwright-core')['chromium'];

async function connectWithRetry(chromium: Chromium, endpoint: string) {
  for (let i = 0; ; i++) {
    try {
      return { browser: await chromium.connectOverCDP(endpoint) };
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

/** The tab that opened the provider's sign-in (it may still be loading when we attach). */
async function findPage(cdp: { browser: import('playwright-core').Browser }, issuer: string) {
  for (let i = 0; ; i++) {
    for (const context of cdp.browser.contexts()) {
      for (const page of context.pages()) {
        if (page.url().startsWith(issuer)) return page;
      }
    }
    if (i > 200) throw new Error('no page on the provider');
    await new Promise((r) => setTimeout(r, 300));
  }
}
