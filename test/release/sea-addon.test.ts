/**
 * How a single executable's native addon reaches the disk (src/platform/sea.ts): once, whole,
 * content-addressed, in a private directory, and loadable with process.dlopen. Uses the real
 * @napi-rs/keyring addon for this machine.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addonDir, materializeAddon } from '../../src/platform/sea.js';

const require = createRequire(import.meta.url);
const addonPath = require.resolve(`@napi-rs/keyring-${process.platform}-${process.arch}-gnu/package.json`);
const addonFile = fs
  .readdirSync(path.dirname(addonPath))
  .map((f) => path.join(path.dirname(addonPath), f))
  .find((f) => f.endsWith('.node'))!;
const bytes = new Uint8Array(fs.readFileSync(addonFile));

describe.runIf(process.platform === 'linux' && process.arch === 'x64')('materializeAddon', () => {
  let dir: string;
  let base: string;
  beforeEach(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-addon-'));
    dir = path.join(base, 'native');
  });
  afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

  it('writes the addon once to <dir>/<stem>-<sha256>.node, 0700 dir, and it loads', () => {
    const file = materializeAddon(bytes, dir, 'keyring');
    expect(path.basename(file)).toMatch(/^keyring-[0-9a-f]{32}\.node$/);
    expect(fs.readFileSync(file).equals(Buffer.from(bytes))).toBe(true);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(file).mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(dir)).toEqual([path.basename(file)]); // no temporary file left
    const mod = { exports: {} as Record<string, unknown> };
    process.dlopen(mod, file);
    expect(typeof mod.exports.Entry).toBe('function');
  });

  it('reuses an intact copy without rewriting it', () => {
    const file = materializeAddon(bytes, dir, 'keyring');
    const inode = fs.statSync(file).ino;
    expect(materializeAddon(bytes, dir, 'keyring')).toBe(file);
    expect(fs.statSync(file).ino).toBe(inode);
  });

  it('replaces a truncated or tampered copy', () => {
    const file = materializeAddon(bytes, dir, 'keyring');
    fs.writeFileSync(file, 'half an addon');
    expect(materializeAddon(bytes, dir, 'keyring')).toBe(file);
    expect(fs.readFileSync(file).equals(Buffer.from(bytes))).toBe(true);
  });

  it('replaces a symlink planted at the content-addressed name instead of following it', () => {
    const file = materializeAddon(bytes, dir, 'keyring');
    const decoy = path.join(base, 'decoy.node');
    fs.copyFileSync(addonFile, decoy);
    fs.rmSync(file);
    fs.symlinkSync(decoy, file);
    expect(materializeAddon(bytes, dir, 'keyring')).toBe(file);
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(false);
  });

  it('refuses a directory that others can write (exit 6)', () => {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chmodSync(dir, 0o777);
    expect(() => materializeAddon(bytes, dir, 'keyring')).toThrow(
      expect.objectContaining({ code: 'ERR_UNSAFE_PERMISSIONS', exitCode: 6 }),
    );
  });
});

describe('addonDir', () => {
  it('is private per user and outside the token cache directory', () => {
    expect(addonDir({ LOCALAPPDATA: 'C:\\Users\\a\\AppData\\Local' }, 'win32', 'C:\\Users\\a')).toBe(
      'C:\\Users\\a\\AppData\\Local\\keybroker\\native',
    );
    expect(addonDir({}, 'darwin', '/Users/a')).toBe('/Users/a/Library/Application Support/keybroker/native');
    expect(addonDir({}, 'linux', '/home/a')).toBe('/home/a/.local/share/keybroker/native');
    expect(addonDir({ XDG_DATA_HOME: '/x' }, 'linux', '/home/a')).toBe('/x/keybroker/native');
  });
});
