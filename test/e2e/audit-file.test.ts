/**
 * Issue 11 finding 7 (contract §5): the audit file gets the cache's safety rules. It is opened
 * without following a symlink and written only when the user owns it and no one else may read
 * or write it; otherwise one warning line, that record not written, and the token still
 * printed. Created 0600 (whatever the umask); rotation keeps the rules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jwtConfig, writeJwtKey } from '../helpers/jwt-profile.js';
import { BIN, makeSandbox, runKeybroker, runShell, type Sandbox, shq } from '../helpers/run.js';

const IS_ROOT = process.getuid?.() === 0;
const JWT = /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/;

let sb: Sandbox;
let auditFile: string;
beforeEach(() => {
  sb = makeSandbox();
  sb.writeConfig(jwtConfig(writeJwtKey(sb)));
  auditFile = path.join(sb.home, '.local', 'state', 'keybroker', 'audit.log');
  fs.mkdirSync(path.dirname(auditFile), { recursive: true, mode: 0o700 });
});
afterEach(() => sb.cleanup());

const mode = (p: string) => (fs.lstatSync(p).mode & 0o777).toString(8).padStart(4, '0');

/** Runs twice: a miss (second stage) and a hit (first stage) each meet the same rule. */
async function twice(expectedStderr: string) {
  for (let i = 0; i < 2; i++) {
    const r = await runKeybroker([], sb);
    expect(r.stdout).toMatch(JWT);
    expect(r.stderr).toBe(expectedStderr);
    expect(r.code).toBe(0);
  }
}

describe('finding 7: audit log safety', () => {
  it.skipIf(!IS_ROOT)('a 0666 file another user pre-created gets no record (as root)', async () => {
    fs.writeFileSync(auditFile, '', { mode: 0o666 });
    fs.chmodSync(auditFile, 0o666);
    fs.chownSync(auditFile, 65534, 65534);
    await twice(
      `keybroker: warning: audit record not written: audit log ${auditFile}: owned by uid 65534, not by you (uid 0) (chown it to yourself; run keybroker explain ERR_UNSAFE_OWNER)\n`,
    );
    expect(fs.readFileSync(auditFile, 'utf8')).toBe('');
  });

  it('a 0666 file of the user’s own gets no record until it is made private', async () => {
    fs.writeFileSync(auditFile, '', { mode: 0o666 });
    fs.chmodSync(auditFile, 0o666);
    await twice(
      `keybroker: warning: audit record not written: audit log ${auditFile}: permissions 0666 are too open (run chmod 600 '${auditFile}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
    );
    expect(fs.readFileSync(auditFile, 'utf8')).toBe('');
    fs.chmodSync(auditFile, 0o600);
    await twice('');
    expect(fs.readFileSync(auditFile, 'utf8').trimEnd().split('\n')).toHaveLength(2);
  });

  it('a pre-created symlink is not followed: its target is left as it was', async () => {
    const target = path.join(sb.home, 'victim.txt');
    fs.writeFileSync(target, 'precious\n', { mode: 0o600 });
    fs.symlinkSync(target, auditFile);
    await twice(
      `keybroker: warning: audit record not written: audit log ${auditFile}: is a symbolic link (replace the link with the file itself; run keybroker explain ERR_UNSAFE_SYMLINK)\n`,
    );
    expect(fs.readFileSync(target, 'utf8')).toBe('precious\n');
    expect(fs.lstatSync(auditFile).isSymbolicLink()).toBe(true);
  });

  it('doctor warns about a planted audit file by the same rule, with its fix', async () => {
    fs.symlinkSync(path.join(sb.home, 'victim.txt'), auditFile);
    const r = await runKeybroker(['doctor'], sb, { cwd: sb.dir });
    expect(r.stdout).toContain(
      `[warn] audit: audit log ${auditFile}: is a symbolic link\n` +
        '       fix: replace the link with the file itself; run keybroker explain ERR_UNSAFE_SYMLINK\n',
    );
  });

  it('a symlink to a file that does not exist yet creates nothing', async () => {
    const target = path.join(sb.home, 'planted.log');
    fs.symlinkSync(target, auditFile);
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`audit log ${auditFile}: is a symbolic link`);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('is created 0600 in a 0700 directory even under umask 000', async () => {
    fs.rmSync(path.dirname(auditFile), { recursive: true });
    const r = await runShell(`umask 000; ${shq(BIN)}`, sb);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(mode(auditFile)).toBe('0600');
    expect(mode(path.dirname(auditFile))).toBe('0700');
  });

  it('rotation at 5 MiB keeps one old file, both 0600, and refuses a planted file the same way', async () => {
    const old = `${'{"old":"line"}\n'.repeat(Math.ceil((5 * 1024 * 1024) / 15))}`;
    fs.writeFileSync(auditFile, old, { mode: 0o600 });
    const r = await runShell(`umask 000; ${shq(BIN)}`, sb);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(fs.readFileSync(`${auditFile}.1`, 'utf8')).toBe(old);
    expect(fs.readFileSync(auditFile, 'utf8').trimEnd().split('\n')).toHaveLength(1);
    expect([mode(auditFile), mode(`${auditFile}.1`)]).toEqual(['0600', '0600']);
    // A full file that is not private is neither rotated nor written.
    fs.writeFileSync(auditFile, old);
    fs.chmodSync(auditFile, 0o644);
    fs.rmSync(`${auditFile}.1`);
    const again = await runKeybroker(['--refresh'], sb);
    expect(again.stderr).toBe(
      `keybroker: warning: audit record not written: audit log ${auditFile}: permissions 0644 are too open (run chmod 600 '${auditFile}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
    );
    expect(fs.existsSync(`${auditFile}.1`)).toBe(false);
    expect(fs.readFileSync(auditFile, 'utf8')).toBe(old);
  });
});
