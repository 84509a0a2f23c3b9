/**
 * Steps the oidc tests share: a profile for the test provider, and `keybroker login` run the way
 * a person would, with the sign-in finished through the provider's own pages.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import {
  type OidcTestProvider,
  startOidcProvider,
  TEST_CLIENT_ID,
  TestBrowser,
} from '../servers/oidc-provider.js';
import { makeSandbox, type RunOptions, type RunResult, runKeybroker, type Sandbox } from './run.js';

/**
 * A test file's provider and sandboxes: the provider (users alice and bob) starts before the
 * file's tests and stops after them; each test gets a fresh sandbox holding `config(issuer)`, the
 * provider's grant log emptied and every user enabled again, both handed to `use`.
 */
export function oidcSuite(
  config: (issuer: string) => unknown,
  use: (provider: OidcTestProvider, sb: Sandbox) => void,
): void {
  let provider: OidcTestProvider;
  let sb: Sandbox;
  beforeAll(async () => {
    provider = await startOidcProvider({
      users: [
        { sub: 'alice', email: 'alice@example.test', groups: ['eng', 'llm-users'] },
        { sub: 'bob', email: 'bob@example.test', groups: ['sales'] },
      ],
    });
  });
  afterAll(async () => {
    await provider.close();
  });
  beforeEach(() => {
    sb = makeSandbox();
    sb.writeConfig(config(provider.issuer));
    provider.grants.length = 0;
    for (const u of provider.users.values()) u.disabled = false;
    use(provider, sb);
  });
  afterEach(() => sb.cleanup());
}

export function oidcConfig(
  issuer: string,
  source: Record<string, unknown> = {},
  extra: { cache?: Record<string, unknown>; ttlMs?: number; profile?: string } = {},
) {
  return {
    defaultProfile: extra.profile ?? 'sso',
    ...(extra.cache ? { cache: extra.cache } : {}),
    profiles: {
      [extra.profile ?? 'sso']: {
        ...(extra.ttlMs ? { ttlMs: extra.ttlMs } : {}),
        timeoutMs: 20000,
        source: { type: 'oidc', issuer, clientId: TEST_CLIENT_ID, ...source },
      },
    },
  };
}

export const DEVICE_LINE = /^keybroker: to sign in, open (\S+) and enter the code (\S+)$/m;

/**
 * Runs `keybroker login --device` and, once it has printed the code, lets `act` play the person
 * (complete or abort the sign-in through the provider's pages).
 */
export async function deviceLogin(
  sb: Sandbox,
  act: (uri: string, code: string) => Promise<unknown>,
  args: string[] = [],
  options: RunOptions = {},
): Promise<RunResult & { uri: string; userCode: string }> {
  let seen = '';
  let acted: Promise<unknown> | undefined;
  let uri = '';
  let userCode = '';
  const run = await runKeybroker(['login', '--device', ...args], sb, {
    killAfterMs: 60_000,
    ...options,
    onSpawn: (child) => {
      child.stderr?.on('data', (d: Buffer) => {
        seen += d.toString();
        const m = DEVICE_LINE.exec(seen);
        if (m && !acted) {
          uri = m[1]!;
          userCode = m[2]!;
          acted = act(uri, userCode);
        }
      });
    },
  });
  await acted;
  return { ...run, uri, userCode };
}

/** Signs `user` in to the sandbox's default profile with the device flow; asserts it worked. */
export async function loginAs(sb: Sandbox, provider: OidcTestProvider, user: string, args: string[] = []) {
  const browser = new TestBrowser();
  const run = await deviceLogin(sb, (uri, code) => browser.completeDeviceFlow(uri, code, user), args);
  const u = provider.users.get(user)!;
  expect(run.code).toBe(0);
  expect(run.stdout).toBe('');
  expect(run.stderr.split('\n').at(-2)).toBe(
    `keybroker: signed in to profile ${args.includes('--profile') ? args[args.indexOf('--profile') + 1] : 'sso'} as ${user} (${u.email})`,
  );
  return run;
}

/** The claims of a JWT (no verification: the tests check what keybroker printed). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}
