/**
 * Contract §2: the cache key covers an OIDC login's subject, so a token fetched for one
 * signed-in person is never served after another signs in to the same profile.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { credentialIdentity } from '../../src/config/credential-identity.js';
import { identityFile, loginName } from '../../src/sources/oidc-login.js';

const source = { type: 'oidc', issuer: 'https://idp.example.com', clientId: 'keybroker' };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function cacheDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-oidc-id-'));
  dirs.push(d);
  return d;
}

function signIn(dir: string, sub: string, mode = 0o600): void {
  const file = identityFile(dir, loginName('default', source));
  fs.writeFileSync(file, JSON.stringify({ v: 1, ...source, sub, loginAtMs: 1 }), { mode });
  fs.chmodSync(file, mode);
}

const identity = (dir: string) =>
  credentialIdentity(source, { env: {}, homeDir: dir, cacheDir: dir, profile: 'default' });

describe('oidc credential identity', () => {
  it('names the signed-in subject and issuer', () => {
    const dir = cacheDir();
    signIn(dir, 'alice');
    expect(identity(dir)).toBe('oidc:https://idp.example.com:alice');
  });

  it('changes when another person signs in to the same profile', () => {
    const dir = cacheDir();
    signIn(dir, 'alice');
    const alice = identity(dir);
    signIn(dir, 'bob');
    expect(identity(dir)).toBe('oidc:https://idp.example.com:bob');
    expect(identity(dir)).not.toBe(alice);
  });

  it('is "nobody" without a login, and ignores a record others may read', () => {
    const dir = cacheDir();
    expect(identity(dir)).toBe('oidc:nobody');
    signIn(dir, 'mallory', 0o644);
    expect(identity(dir)).toBe('oidc:nobody');
  });
});
