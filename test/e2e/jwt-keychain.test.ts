/**
 * A jwt signing key kept in the OS keychain (contract §3 signingKey.keychain, §4 keygen
 * --keychain), end to end against a real Secret Service (gnome-keyring on a private bus).
 */
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import {
  type SecretServiceSession,
  secretServiceSuite,
  startSecretService,
} from '../helpers/secret-service.js';

const suite = secretServiceSuite('jwt signing key in the keychain');

describe.skipIf(suite.skip)(suite.title, () => {
  let ss: SecretServiceSession;
  let sb: Sandbox;
  beforeAll(async () => {
    ss = await startSecretService();
  });
  afterAll(async () => {
    await ss?.stop();
  });
  beforeEach(() => {
    sb = makeSandbox({ DBUS_SESSION_BUS_ADDRESS: ss.address });
  });
  afterEach(() => sb.cleanup());

  it('keygen --keychain stores the key; tokens minted from it verify against jwks; a second keygen keeps it', async () => {
    const service = `kb-jwt-${process.pid}`;
    const gen = await runKeybroker(
      ['keygen', '--algorithm', 'EdDSA', '--keychain', `${service}/signing`],
      sb,
    );
    expect(gen.code).toBe(0);
    expect(gen.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(gen.stderr).toBe(
      `keybroker: stored a new EdDSA signing key in the keychain; use "signingKey": {"keychain": {"service": "${service}", "account": "signing"}}\n`,
    );
    // Found by its service and account attributes, as secret-tool and keytar-based tools look it up.
    const stored = await ss.secretTool(['lookup', 'service', service, 'account', 'signing']);
    expect(stored.stdout).toMatch(/^-----BEGIN PRIVATE KEY-----/);

    sb.writeConfig({
      profiles: {
        default: {
          source: {
            type: 'jwt',
            algorithm: 'EdDSA',
            signingKey: { keychain: { service, account: 'signing' } },
          },
        },
      },
    });
    const tok = await runKeybroker(['--no-cache'], sb);
    const jw = await runKeybroker(['jwks'], sb);
    expect([tok.code, tok.stderr, jw.code, jw.stderr]).toEqual([0, '', 0, '']);
    const jwks = JSON.parse(jw.stdout);
    expect(jwks.keys[0].kid).toBe(gen.stdout.trim());
    await jwtVerify(tok.stdout.trim(), createLocalJWKSet(jwks), { algorithms: ['EdDSA'] });

    const again = await runKeybroker(
      ['keygen', '--algorithm', 'EdDSA', '--keychain', `${service}/signing`],
      sb,
    );
    expect(again.code).toBe(2);
    expect(again.stdout).toBe('');
    expect((await ss.secretTool(['lookup', 'service', service, 'account', 'signing'])).stdout).toBe(
      stored.stdout,
    );
  });

  it('a missing keychain item is exit 2 with the keygen command that makes it', async () => {
    sb.writeConfig({
      profiles: {
        default: { source: { type: 'jwt', signingKey: { keychain: { service: 'kb-none', account: 'x' } } } },
      },
    });
    const r = await runKeybroker(['--no-cache'], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      "keybroker: jwt signing key: keychain item service=kb-none account=x was not found (create it with keybroker keygen --algorithm ES256 --keychain 'kb-none/x'; run keybroker explain ERR_JWT_KEY_KEYCHAIN_MISSING)\n",
    );
  });
});
