/**
 * Runs the built executable exactly as Claude Code does: `/bin/sh -c "<command>"`, with a
 * stdin that never closes (a pipe we keep open), an isolated HOME and XDG directories.
 * KEYBROKER_BIN selects the executable under test (default dist/keybroker), so the same
 * end-to-end tests run against the release binary.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const BIN = path.resolve(ROOT, process.env.KEYBROKER_BIN ?? 'dist/keybroker');

export interface Sandbox {
  dir: string;
  home: string;
  env: Record<string, string>;
  configPath: string;
  cacheDir: string;
  /** Writes the user config (mode 0600) and returns its path. */
  writeConfig(config: unknown): string;
  cleanup(): void;
}

export function makeSandbox(extraEnv: Record<string, string> = {}): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-test-'));
  fs.chmodSync(dir, 0o700);
  const home = path.join(dir, 'home');
  fs.mkdirSync(home, { mode: 0o700 });
  const configPath = path.join(home, '.config', 'keybroker', 'config.json');
  const cacheDir = path.join(home, '.cache', 'keybroker');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    USER: os.userInfo().username,
    LANG: 'C',
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    XDG_STATE_HOME: path.join(home, '.local', 'state'),
    KEYBROKER_MANAGED_CONFIG: path.join(dir, 'managed.json'),
    ...extraEnv,
  };
  return {
    dir,
    home,
    env,
    configPath,
    cacheDir,
    writeConfig(config: unknown) {
      fs.mkdirSync(path.dirname(configPath), { recursive: true, mode: 0o700 });
      fs.writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
      return configPath;
    },
    cleanup() {
      // A helper run that outlived its caller (Claude Code does not wait for a background
      // refresh) may still be writing here; rmSync retries ENOTEMPTY and friends.
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}

/**
 * Waits until no process whose environment points HOME into the sandbox is left (Linux /proc),
 * so a keybroker that a caller started and did not wait for ends before the sandbox goes.
 * Returns the pids still alive after `limitMs` (a safety net; empty when all ended).
 */
export async function waitForSandboxProcesses(sb: Sandbox, limitMs = 20_000): Promise<number[]> {
  const needle = Buffer.from(`HOME=${sb.home}\0`);
  const deadline = Date.now() + limitMs;
  for (;;) {
    const alive: number[] = [];
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
      try {
        if (fs.readFileSync(`/proc/${name}/environ`).includes(needle)) alive.push(Number(name));
      } catch {
        // gone or not ours to read
      }
    }
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * What Claude Code puts in its helper's environment (2.1.332: `CLAUDE_CODE_ENTRYPOINT` is `cli`
 * or `sdk-cli`, `AI_AGENT` is `claude-code_<version>_harness`). Only such a caller's repeated
 * call counts as a rejected token (contract §2); a test simulating Claude Code sets it.
 */
export const CLAUDE_CODE_ENV = { CLAUDE_CODE_ENTRYPOINT: 'cli', AI_AGENT: 'claude-code_2.1.332_harness' };

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  pid: number;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Kill after this many ms (test safety net only; never a timing assertion). */
  killAfterMs?: number;
  /**
   * Who the caller (the nearest non-shell ancestor, contract §2 "Rejected tokens") is:
   * 'fresh' (default) puts a short-lived `timeout` process between this test and /bin/sh, so
   * every run looks like a new Claude Code process; 'shared' spawns /bin/sh directly from the
   * test process, so repeated runs look like the same Claude Code process asking again.
   */
  caller?: 'fresh' | 'shared';
  /** Called with the child as soon as it is spawned. */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
}

/** Quote one argument for /bin/sh. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs `<bin> <args>` through /bin/sh -c with a never-closing stdin. */
export function runKeybroker(args: string[], sandbox: Sandbox, options: RunOptions = {}): Promise<RunResult> {
  const command = [shq(BIN), ...args.map(shq)].join(' ');
  return runShell(command, sandbox, options);
}

export function runShell(command: string, sandbox: Sandbox, options: RunOptions = {}): Promise<RunResult> {
  const env: Record<string, string> = { ...sandbox.env };
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const [file, argv] =
      options.caller === 'shared'
        ? ['/bin/sh', ['-c', command]]
        : ['timeout', ['-k', '5', '120', '/bin/sh', '-c', command]];
    const child = spawn(file as string, argv as string[], {
      cwd: options.cwd ?? sandbox.home,
      env,
      // stdin is a pipe we never end: a helper that reads stdin would hang here.
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    options.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ stdout, stderr, code, signal, pid: child.pid ?? -1 });
    });
  });
}
