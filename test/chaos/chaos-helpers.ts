/**
 * What the chaos tests share: dist/keybroker started as Claude Code starts it (`/bin/sh -c`,
 * a stdin that never closes, a fresh caller per run) but with `exec`, so that the process
 * under test is the shell's own pid and can be SIGKILLed alone while its parent (`timeout`)
 * stays alive to reap it, as Claude Code reaps its helpers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, type Sandbox, shq } from '../helpers/run.js';

let privateBin: string | undefined;

/**
 * A private copy of the built executable (dist/keybroker and dist/lib), so that a rebuild of
 * dist/ by another test run during a long chaos run cannot fail a run that was not killed.
 */
export function chaosBin(): string {
  if (privateBin) return privateBin;
  const from = path.dirname(BIN);
  const to = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-chaos-bin-'));
  for (const name of fs.readdirSync(from)) {
    if (name === path.basename(BIN) || name === 'lib' || name === 'package.json') {
      fs.cpSync(path.join(from, name), path.join(to, name), { recursive: true });
    }
  }
  privateBin = path.join(to, path.basename(BIN));
  return privateBin;
}

export function removeChaosBin(): void {
  if (privateBin) fs.rmSync(path.dirname(privateBin), { recursive: true, force: true });
  privateBin = undefined;
}

export interface Started {
  child: ChildProcess;
  /** The pid of the keybroker process itself (the child of `timeout`). */
  pid(): Promise<number>;
  /** stderr as received so far. */
  stderr(): string;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function startKeybroker(
  args: string[],
  sb: Sandbox,
  env: Record<string, string> = {},
  onStderr?: (chunk: string, atMs: number) => void,
): Started {
  const command = `exec ${[shq(chaosBin()), ...args.map(shq)].join(' ')}`;
  const child = spawn('timeout', ['-k', '5', '60', '/bin/sh', '-c', command], {
    cwd: sb.home,
    env: { ...sb.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    onStderr?.(d, performance.now());
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      child.stdin!.destroy();
      resolve({ code, stdout, stderr });
    });
  });
  return {
    child,
    stderr: () => stderr,
    async pid() {
      const file = `/proc/${child.pid}/task/${child.pid}/children`;
      for (let i = 0; i < 5000; i++) {
        try {
          const first = fs.readFileSync(file, 'utf8').trim().split(/\s+/)[0];
          if (first) return Number(first);
        } catch {
          // timeout has exited
          return -1;
        }
        await sleep(1);
      }
      return -1;
    },
    done,
  };
}

/** SIGKILL one process we started; false when it had already gone. */
export function kill(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** The holder's pid from a lock file, or undefined when there is no (readable) lock. */
export function lockHolder(lockFile: string): number | undefined {
  try {
    const o = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as { pid?: unknown };
    return typeof o.pid === 'number' ? o.pid : undefined;
  } catch {
    return undefined;
  }
}

/** Temporary files of interrupted writes and locks set aside while being broken. */
export function leftovers(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => /^\..*\.tmp$/.test(f) || f.includes('.stale-'));
}

/** Seeded, so a failing run can be replayed with CHAOS_SEED. */
export { prng } from '../../scripts/fleet-sim/prng.mjs';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Resolves when `test()` holds, polling every millisecond or two; false after `maxMs`. */
export async function until(test: () => boolean, maxMs: number): Promise<boolean> {
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    if (test()) return true;
    await sleep(1);
  }
  return test();
}
