import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseKeychainTarget, runKeygen } from '../../src/cli/keygen.js';
import type { AppContext } from '../../src/context.js';
import { createLogger } from '../../src/output/logger.js';
import { createMemoryKeyring, type Keyring } from '../../src/platform/keyring.js';
import { createJwtSource, publicJwks } from '../../src/sources/jwt.js';
import { failure, sourceDeps } from './jwt-fixtures.js';

// The keychain form runs against the in-memory keyring: the real backends have their own tests.
const keyring: { current: Keyring } = vi.hoisted(() => ({ current: undefined as unknown as Keyring }));
vi.mock('../../src/platform/keyring.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/platform/keyring.js')>();
  return { ...actual, openKeyring: async () => keyring.current };
});

let dir: string;
let out: string[];
let err: string[];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-keygen-'));
  out = [];
  err = [];
  keyring.current = createMemoryKeyring();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function ctx(env: Record<string, string> = {}): AppContext {
  return {
    env: { XDG_CONFIG_HOME: path.join(dir, 'xdg'), ...env },
    now: () => 1_800_000_000_000,
    platform: 'linux',
    homeDir: dir,
    cwd: dir,
    userName: 'alice',
    hostName: 'host',
    logger: createLogger({ debug: false, write: (l) => err.push(l) }),
    stdout: (t) => out.push(t),
    execPath: '/usr/bin/keybroker',
    stdinIsTTY: false,
    readStdin: async () => '',
    globals: { debug: false },
    version: '0.0.0',
    commit: 'test',
  };
}

const deps = () => sourceDeps(dir);

describe('keygen (in process)', () => {
  it('writes <user config dir>/signing-key.pem 0600 in a new 0700 directory and prints the kid', async () => {
    await runKeygen({ algorithm: 'ES256' }, ctx());
    const file = path.join(dir, 'xdg', 'keybroker', 'signing-key.pem');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const jwks = await publicJwks({ type: 'jwt', signingKey: { file } }, deps());
    expect(out).toEqual([`${jwks.keys[0]!.kid}\n`]);
    expect(err).toEqual([
      `keybroker: wrote a new ES256 signing key to ${file}; use "signingKey": {"file": "${file}"}`,
    ]);
  });

  it('HS256 defaults to signing-key.json, an oct JWK', async () => {
    await runKeygen({ algorithm: 'HS256' }, ctx());
    const file = path.join(dir, 'xdg', 'keybroker', 'signing-key.json');
    const jwk = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(Object.keys(jwk).sort()).toEqual(['alg', 'k', 'kty']);
    expect(Buffer.from(jwk.k, 'base64url')).toHaveLength(32);
    expect(out).toHaveLength(1);
  });

  it('--out is relative to the working directory, ~ is home; an existing file is never overwritten (exit 2)', async () => {
    await runKeygen({ algorithm: 'EdDSA', out: 'k.pem' }, ctx());
    const file = path.join(dir, 'k.pem');
    const before = fs.readFileSync(file, 'utf8');
    expect(await failure(runKeygen({ algorithm: 'EdDSA', out: '~/k.pem' }, ctx()))).toEqual({
      exit: 2,
      line: `keybroker: keygen: ${file} already exists (choose another path with --out, or move the old key away first (tokens signed with it stop verifying); run keybroker explain ERR_KEYGEN_EXISTS)`,
    });
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(out).toHaveLength(1);
  });

  it('a symlink at the target is not followed', async () => {
    const target = path.join(dir, 'elsewhere');
    fs.symlinkSync(target, path.join(dir, 'link.pem'));
    expect((await failure(runKeygen({ algorithm: 'ES256', out: 'link.pem' }, ctx()))).exit).toBe(2);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('--keychain SERVICE/ACCOUNT stores the key there; the jwt source reads it back; an existing item is kept', async () => {
    await runKeygen({ algorithm: 'ES384', keychain: 'keybroker/signing' }, ctx());
    const stored = await keyring.current.get('keybroker', 'signing');
    expect(stored).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const config = {
      type: 'jwt' as const,
      algorithm: 'ES384' as const,
      signingKey: { keychain: { service: 'keybroker', account: 'signing' } },
    };
    const jwks = await publicJwks(config, deps());
    expect(out).toEqual([`${jwks.keys[0]!.kid}\n`]);
    const token = await createJwtSource(config, deps()).getToken({
      signal: new AbortController().signal,
      now: () => Date.now(),
      deadlineMs: Date.now() + 8000,
      forceFresh: false,
    });
    expect(token.value.split('.')).toHaveLength(3);
    expect(await failure(runKeygen({ algorithm: 'ES384', keychain: 'keybroker/signing' }, ctx()))).toEqual({
      exit: 2,
      line: "keybroker: keygen: keychain item service=keybroker account=signing already exists (choose another item, or remove the old key first with keybroker keychain delete --service 'keybroker' --account 'signing' (tokens signed with it stop verifying); run keybroker explain ERR_KEYGEN_EXISTS)",
    });
    expect(await keyring.current.get('keybroker', 'signing')).toBe(stored);
  });

  it('a missing keychain item for the signing key is exit 2 with a keygen hint', async () => {
    const f = await failure(
      publicJwks({ type: 'jwt', signingKey: { keychain: { service: 'kb', account: 'nobody' } } }, deps()),
    );
    expect(f).toEqual({
      exit: 2,
      line: "keybroker: jwt signing key: keychain item service=kb account=nobody was not found (create it with keybroker keygen --algorithm ES256 --keychain 'kb/nobody'; run keybroker explain ERR_JWT_KEY_KEYCHAIN_MISSING)",
    });
  });

  it('parses SERVICE/ACCOUNT, SERVICE alone (account = login name), and refuses empty parts', () => {
    expect(parseKeychainTarget('svc/acc/x', 'alice')).toEqual({ service: 'svc', account: 'acc/x' });
    expect(parseKeychainTarget('svc', 'alice')).toEqual({ service: 'svc', account: 'alice' });
    expect(() => parseKeychainTarget('/acc', 'alice')).toThrow('is not SERVICE/ACCOUNT');
    expect(() => parseKeychainTarget('svc/', 'alice')).toThrow('is not SERVICE/ACCOUNT');
  });
});
