/**
 * When the release tests run: after `npm run package` (dist/release exists) or when CI asks
 * with KEYBROKER_RELEASE_TESTS=1 (then a missing file is a failure, not a skip).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const RELEASE_DIR = path.join(ROOT, 'dist', 'release');
export const RELEASE_TESTS = process.env.KEYBROKER_RELEASE_TESTS === '1' || fs.existsSync(RELEASE_DIR);

export function releaseFile(name: string): string {
  const p = path.join(RELEASE_DIR, name);
  if (!fs.existsSync(p)) throw new Error(`${path.relative(ROOT, p)} is missing: run npm run package first`);
  return p;
}

export interface Manifest {
  version: string;
  commit: string;
  node: string;
  targets: Record<string, { file: string; codeCache: boolean; signed: string; assets: string[] }>;
  files: Record<string, number>;
}

export function manifest(): Manifest {
  return JSON.parse(fs.readFileSync(releaseFile('manifest.json'), 'utf8')) as Manifest;
}

/** True when `cmd` is on PATH. */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';
export const QEMU_REASON = !hasCommand('qemu-aarch64')
  ? 'qemu-aarch64 is not installed (Debian qemu-user)'
  : !fs.existsSync(path.join(AARCH64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))
    ? `no arm64 libraries in ${AARCH64_SYSROOT} (Debian libc6-arm64-cross libstdc++6-arm64-cross)`
    : '';
export const WINE_REASON = hasCommand('wine') ? '' : 'wine is not installed (Debian wine, wine64)';
