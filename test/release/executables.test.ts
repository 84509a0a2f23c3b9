/**
 * The release executables (npm run package) behave as dist/keybroker does, through /bin/sh
 * with a stdin that never closes, and say nothing on stderr (no SEA warning, no rejected
 * code cache). linux-arm64 runs under qemu-user and win-x64 under wine when installed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, type RunResult, runShell, type Sandbox, shq } from '../helpers/run.js';
import {
  AARCH64_SYSROOT,
  manifest,
  QEMU_REASON,
  RELEASE_TESTS,
  ROOT,
  releaseFile,
  WINE_REASON,
} from './release-env.js';

const pkgVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/;

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));
}

/** A sandbox with an ES256 key made by `keygen` of the executable itself and a jwt profile. */
async function jwtSandbox(prefix: string, keyPath: (s: Sandbox) => string): Promise<Sandbox> {
  const s = makeSandbox();
  const gen = await runShell(`${prefix} keygen --out ${shq(keyPath(s))}`, s);
  expect(gen.code, gen.stderr).toBe(0);
  s.writeConfig({
    profiles: {
      default: {
        source: {
          type: 'jwt',
          signingKey: { file: keyPath(s) },
          issuer: 'release-test',
          audience: 'gateway',
        },
      },
    },
  });
  return s;
}

function expectJwt(r: RunResult): void {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(JWT);
  expect(claims(r.stdout.trim())).toMatchObject({ iss: 'release-test', aud: 'gateway' });
}

describe.runIf(RELEASE_TESTS)('keybroker-linux-x64', () => {
  const exe = () => shq(releaseFile('keybroker-linux-x64'));
  let s: Sandbox;
  beforeAll(async () => {
    s = await jwtSandbox(exe(), (sb) => path.join(sb.home, 'signing-key.pem'));
  });
  afterAll(() => s?.cleanup());

  it('--version prints the version and the commit it was built from', async () => {
    const r = await runShell(`${exe()} --version`, s);
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: `${pkgVersion} (${manifest().commit})\n` });
  });

  it('prints a JWT from a jwt profile, then serves it from the cache', async () => {
    const first = await runShell(`${exe()} --json`, s);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ profile: 'default', cache: 'miss' });
    // Another caller (a separate non-shell parent process) gets the cached token.
    const node = shq(process.execPath);
    const viaOtherCaller = `${node} -e ${shq(
      "const r=require('child_process').spawnSync(process.argv[1],['--json'],{stdio:'inherit'});process.exit(r.status)",
    )} ${exe()}`;
    const second = await runShell(viaOtherCaller, s);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({ ...JSON.parse(first.stdout), cache: 'hit' });
    expectJwt(await runShell(`${exe()} --refresh`, s));
  });

  it('a usage error exits 2 with the same stderr line as dist/keybroker', async () => {
    const r = await runShell(`${exe()} --profile nope`, s);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^keybroker: profile "nope" \(from --profile\): .*run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE\)\n$/,
    );
    const dist = await runShell(`${shq(path.join(ROOT, 'dist', 'keybroker'))} --profile nope`, s);
    expect(r.stderr).toBe(dist.stderr);
  });

  it('a key file others can read is refused with exit 6', async () => {
    const key = path.join(s.home, 'signing-key.pem');
    fs.chmodSync(key, 0o644);
    try {
      const r = await runShell(`${exe()} --no-cache`, s);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 6, stdout: '' });
      expect(r.stderr).toMatch(/^keybroker: .*signing-key\.pem.*\n$/);
    } finally {
      fs.chmodSync(key, 0o600);
    }
  });

  it('ignores NODE_OPTIONS: no rejected code cache warning, no --require of foreign code', async () => {
    const hook = path.join(s.dir, 'hook.cjs');
    fs.writeFileSync(hook, "process.stdout.write('hooked\\n');");
    const r = await runShell(`${exe()} --version`, s, {
      env: { NODE_OPTIONS: `--max-old-space-size=100 --require ${hook}` },
    });
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: `${pkgVersion} (${manifest().commit})\n` });
  });

  it('init, run from PATH, names the absolute path of the executable', async () => {
    const exePath = releaseFile('keybroker-linux-x64');
    const r = await runShell('keybroker-linux-x64 init --print', s, {
      env: { PATH: `${path.dirname(exePath)}:${s.env.PATH}` },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).apiKeyHelper).toBe(exePath);
  });

  it('embeds a code cache for itself (manifest) and the pinned Node version', () => {
    const m = manifest();
    expect(m.node).toBe('26.10.0');
    expect(m.targets['linux-x64']).toMatchObject({ codeCache: true, assets: [] });
    const out = spawnSync(releaseFile('keybroker-linux-x64'), ['-p', 'process.version'], {
      encoding: 'utf8',
    });
    // A SEA ignores node's own options: `-p` is an unknown keybroker argument (exit 2).
    expect(out.status).toBe(2);
  });
});

describe.runIf(RELEASE_TESTS)('keybroker-linux-arm64 under qemu-user', () => {
  it.skipIf(QEMU_REASON !== '')(
    `--version, a JWT and an error exit code${QEMU_REASON ? ` (skipped: ${QEMU_REASON})` : ''}`,
    async () => {
      const exe = `qemu-aarch64 -L ${AARCH64_SYSROOT} ${shq(releaseFile('keybroker-linux-arm64'))}`;
      const s = await jwtSandbox(exe, (sb) => path.join(sb.home, 'signing-key.pem'));
      try {
        const v = await runShell(`${exe} --version`, s, { killAfterMs: 120_000 });
        expect(v).toMatchObject({ code: 0, stderr: '', stdout: `${pkgVersion} (${manifest().commit})\n` });
        expectJwt(await runShell(exe, s, { killAfterMs: 120_000 }));
        const bad = await runShell(`${exe} --profile nope`, s, { killAfterMs: 120_000 });
        expect({ code: bad.code, stdout: bad.stdout }).toEqual({ code: 2, stdout: '' });
        expect(bad.stderr).toMatch(
          /^keybroker: profile "nope" .*run keybroker explain ERR_CONFIG_UNKNOWN_PROFILE\)\n$/,
        );
      } finally {
        s.cleanup();
      }
    },
    300_000,
  );
});

describe.runIf(RELEASE_TESTS)('keybroker-win-x64.exe', () => {
  // wine 8 (Debian 12) cannot start Node 26 (V8 aborts with "SegmentedTable::InitializeTable"
  // while reserving its pointer tables), so the Windows executable is checked as a file here,
  // like the macOS ones: the official node.exe of the release's version with the SEA blob
  // injected (postject flips the fuse and adds the NODE_SEA_BLOB resource).
  it('is the official Node with the first stage injected and the SEA fuse set', () => {
    const exe = fs.readFileSync(releaseFile('keybroker-win-x64.exe'));
    expect(exe.includes(Buffer.from('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1'))).toBe(true);
    expect(exe.includes(Buffer.from('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:0'))).toBe(false);
    expect(exe.includes(Buffer.from('NODE_SEA_BLOB', 'utf16le'))).toBe(true);
    expect(exe.includes(Buffer.from(`v${manifest().node}`))).toBe(true);
    expect(exe.includes(Buffer.from(manifest().commit))).toBe(true);
  });
});
