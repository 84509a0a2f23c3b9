/**
 * Issue 11 finding 10 (contract §7): a cache directory owned by someone else (root, after a
 * `sudo -E keybroker` run) is exit 6 with the `chown` to run, never exit 1 `internal error`; in
 * the token path, in `doctor` (not `[ok] cache.dir`) and in `cache clear`.
 *
 * Ownership by someone else needs root to set up (CI runs as root): as root, the cache is given
 * to uid 65534; and, closest to the report, keybroker runs as uid 65534 (setpriv) against a
 * cache that root made.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { jwtConfig, writeJwtKey } from '../helpers/jwt-profile.js';
import { BIN, makeSandbox, runKeybroker, runShell, type Sandbox, shq } from '../helpers/run.js';

const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const JWT = /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/;

let sb: Sandbox;
afterEach(() => sb?.cleanup());

const chownLine = (what: string, uid: number, me: number, fix: string) =>
  `keybroker: ${what}: owned by uid ${uid}, not by you (uid ${me}) (run sudo chown -R ${me} '${fix}' (a sudo -E run leaves it owned by root); run keybroker explain ERR_UNSAFE_OWNER)\n`;

/** A sandbox with a working jwt profile whose cache holds one entry. */
async function primed(): Promise<Sandbox> {
  sb = makeSandbox();
  sb.writeConfig(jwtConfig(writeJwtKey(sb)));
  const first = await runKeybroker([], sb);
  expect(first.code).toBe(0);
  return sb;
}

/** Runs keybroker as uid 65534 in a sandbox that user owns (the cache stays as the test made it). */
function asNobody(args: string[], s: Sandbox, cwd?: string) {
  const cmd = `setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ${[BIN, ...args].map(shq).join(' ')}`;
  return runShell(cmd, s, cwd ? { cwd } : {});
}

function giveSandboxToNobody(s: Sandbox): void {
  const walk = (p: string) => {
    fs.lchownSync(p, NOBODY, NOBODY);
    if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(s.dir);
}

describe.skipIf(!IS_ROOT)('finding 10: a cache directory owned by someone else (as root)', () => {
  it('token path, doctor and cache clear: exit 6 / FAIL with the chown to run, nothing removed', async () => {
    const s = await primed();
    const before = fs.readdirSync(s.cacheDir).sort();
    fs.chownSync(s.cacheDir, NOBODY, NOBODY);
    const line = chownLine(`cache directory ${s.cacheDir}`, NOBODY, 0, s.cacheDir);

    const token = await runKeybroker([], s);
    expect(token).toMatchObject({ code: 6, stdout: '', stderr: line });

    const doctor = await runKeybroker(['doctor'], s, { cwd: s.dir });
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toContain(
      `[FAIL] cache.dir: cache directory ${s.cacheDir}: owned by uid ${NOBODY}, not by you (uid 0)\n` +
        `       fix: run sudo chown -R 0 '${s.cacheDir}' (a sudo -E run leaves it owned by root); run keybroker explain ERR_UNSAFE_OWNER\n`,
    );

    for (const args of [
      ['cache', 'clear'],
      ['cache', 'clear', '--all'],
    ]) {
      const clear = await runKeybroker(args, s);
      expect(clear).toMatchObject({ code: 6, stdout: '', stderr: line });
    }
    expect(fs.readdirSync(s.cacheDir).sort()).toEqual(before);

    // After the chown it names, all works again.
    fs.chownSync(s.cacheDir, 0, 0);
    const again = await runKeybroker([], s);
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toMatch(JWT);
  });

  it('an entry a sudo -E run left in the user’s own directory: exit 6 with the chown of the directory', async () => {
    const s = await primed();
    const entry = fs.readdirSync(s.cacheDir).find((f) => f.endsWith('.json'))!;
    fs.chownSync(path.join(s.cacheDir, entry), NOBODY, NOBODY);
    const r = await runKeybroker([], s);
    expect(r).toMatchObject({
      code: 6,
      stdout: '',
      stderr: chownLine(`cache entry ${path.join(s.cacheDir, entry)}`, NOBODY, 0, s.cacheDir),
    });
  });

  it('run as a normal user (uid 65534) with a root-made cache directory: exit 6, not internal error', async () => {
    sb = makeSandbox();
    sb.writeConfig(jwtConfig(writeJwtKey(sb)));
    giveSandboxToNobody(sb);
    fs.mkdirSync(sb.cacheDir, { recursive: true, mode: 0o755 });
    fs.lchownSync(path.dirname(sb.cacheDir), NOBODY, NOBODY);
    fs.chmodSync(sb.cacheDir, 0o755); // as `sudo -E keybroker` makes it: root's, 0700 or 0755
    const line = chownLine(`cache directory ${sb.cacheDir}`, 0, NOBODY, sb.cacheDir);
    const r = await asNobody([], sb);
    expect(r).toMatchObject({ code: 6, stdout: '', stderr: line });
    const clear = await asNobody(['cache', 'clear', '--all'], sb);
    expect(clear).toMatchObject({ code: 6, stdout: '', stderr: line });
    const doctor = await asNobody(['doctor'], sb, sb.dir);
    expect(doctor.stdout).toContain(
      `[FAIL] cache.dir: cache directory ${sb.cacheDir}: owned by uid 0, not by you (uid ${NOBODY})\n`,
    );
    expect(doctor.stdout).not.toContain('[ok  ] cache.dir');
  });

  it('run as a normal user whose ~/.cache root made: exit 6 naming the parent to chown', async () => {
    sb = makeSandbox();
    sb.writeConfig(jwtConfig(writeJwtKey(sb)));
    giveSandboxToNobody(sb);
    const parent = path.dirname(sb.cacheDir);
    fs.mkdirSync(parent, { mode: 0o755 }); // root's
    const r = await asNobody([], sb);
    expect(r).toMatchObject({
      code: 6,
      stdout: '',
      stderr: `keybroker: cache directory ${sb.cacheDir}: cannot be created: ${parent} is owned by uid 0, not by you (uid ${NOBODY}) (run sudo chown -R ${NOBODY} '${parent}' (a sudo -E run leaves it owned by root); run keybroker explain ERR_UNSAFE_OWNER)\n`,
    });
  });
});
