/** `keybroker keygen` end to end: the built executable through /bin/sh -c, as a person runs it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(() => sb.cleanup());

const KID_LINE = /^[A-Za-z0-9_-]{43}\n$/;

describe('keygen', () => {
  it('creates <user config dir>/signing-key.pem 0600 in a new 0700 directory and prints only the kid on stdout', async () => {
    const file = path.join(sb.home, '.config', 'keybroker', 'signing-key.pem');
    const r = await runKeybroker(['keygen'], sb);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(KID_LINE);
    expect(r.stderr).toBe(
      `keybroker: wrote a new ES256 signing key to ${file}; use "signingKey": {"file": "${file}"}\n`,
    );
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(sb.home, '.config')).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(file, 'utf8')).toMatch(
      /^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/,
    );
  });

  it('refuses to overwrite an existing key: exit 2, the file untouched, nothing on stdout', async () => {
    const file = path.join(sb.home, 'my-key.pem');
    const first = await runKeybroker(['keygen', '--algorithm', 'EdDSA', '--out', file], sb);
    expect(first.code).toBe(0);
    const before = fs.readFileSync(file, 'utf8');
    const again = await runKeybroker(['keygen', '--algorithm', 'EdDSA', '--out', file], sb);
    expect(again.code).toBe(2);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(
      `keybroker: keygen: ${file} already exists (choose another path with --out, or move the old key away first (tokens signed with it stop verifying); run keybroker explain ERR_KEYGEN_EXISTS)\n`,
    );
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
  });

  it('--out is relative to the working directory; each algorithm gets a key of its kind', async () => {
    for (const [alg, header] of [
      ['RS256', 'PRIVATE KEY'],
      ['ES384', 'PRIVATE KEY'],
    ] as const) {
      const r = await runKeybroker(['keygen', '--algorithm', alg, '--out', `${alg}.pem`], sb);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(KID_LINE);
      const file = path.join(sb.home, `${alg}.pem`);
      expect(fs.readFileSync(file, 'utf8').startsWith(`-----BEGIN ${header}-----`)).toBe(true);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    }
    const hs = await runKeybroker(['keygen', '--algorithm', 'HS256'], sb);
    expect(hs.code).toBe(0);
    const jwk = JSON.parse(
      fs.readFileSync(path.join(sb.home, '.config', 'keybroker', 'signing-key.json'), 'utf8'),
    );
    expect(jwk.kty).toBe('oct');
  });

  it('--out and --keychain together is a usage error (exit 2)', async () => {
    const r = await runKeybroker(['keygen', '--out', 'k.pem', '--keychain', 'svc/acc'], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'keybroker: usage: Arguments out and keychain are mutually exclusive (run keybroker --help)\n',
    );
    expect(fs.existsSync(path.join(sb.home, 'k.pem'))).toBe(false);
  });

  it('an unknown algorithm is a usage error (exit 2)', async () => {
    const r = await runKeybroker(['keygen', '--algorithm', 'none'], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^keybroker: usage: Invalid values:.*Argument: algorithm, Given: "none"/);
  });
});
