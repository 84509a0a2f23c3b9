/**
 * Who called us, and is a given process still the one we think it is. pids are reused, so a
 * process is its pid plus its start time. Linux reads /proc (cheap); macOS asks ps once;
 * Windows has no cheap equivalent here, so a caller there is its pid alone.
 */

import { fstatSync, readFileSync, statSync } from 'node:fs';
import { printableAscii } from './text.js';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Opaque start-time token; equal tokens mean the same process. '' when unknown. */
  start: string;
  name: string;
  /** Linux's one-letter state (`R`, `S`, `Z` for exited but not yet reaped...); absent elsewhere. */
  state?: string;
}

const SHELLS = new Set([
  'sh',
  'dash',
  'bash',
  'zsh',
  'ksh',
  'mksh',
  'fish',
  'busybox',
  'ash',
  'tcsh',
  'csh',
  'cmd.exe',
  'powershell.exe',
  'pwsh',
  'pwsh.exe',
]);

function isShell(name: string): boolean {
  const base = name.replace(/^.*[\\/]/, '').replace(/^-/, '');
  return SHELLS.has(base);
}

function linuxProc(pid: number): ProcInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open < 0 || close < 0) return undefined;
  const name = stat.slice(open + 1, close);
  const rest = stat.slice(close + 2).split(' ');
  // rest[0] = state (field 3), rest[1] = ppid (field 4), rest[19] = starttime (field 22)
  const ppid = Number(rest[1]);
  const start = rest[19] ?? '';
  if (!Number.isInteger(ppid)) return undefined;
  return { pid, ppid, start, name, state: rest[0] ?? '' };
}

function psProc(pid: number): ProcInfo | undefined {
  try {
    // Loaded only here: node:child_process costs tens of ms to load, too much for the hit path.
    const { execFileSync } = process.getBuiltinModule(
      'node:child_process',
    ) as typeof import('node:child_process');
    const out = execFileSync('ps', ['-o', 'ppid=,lstart=,comm=', '-p', String(pid)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 2000,
    }).trim();
    const m = /^(\d+)\s+(\w{3}\s+\w{3}\s+\d+\s+[\d:]+\s+\d{4})\s+(.*)$/.exec(out);
    if (!m) return undefined;
    return { pid, ppid: Number(m[1]), start: m[2]!, name: m[3]! };
  } catch {
    return undefined;
  }
}

export function procInfo(pid: number, platform: NodeJS.Platform = process.platform): ProcInfo | undefined {
  if (platform === 'linux') return linuxProc(pid);
  if (platform === 'win32') return undefined;
  return psProc(pid);
}

/**
 * Claude Code gives its helper `CLAUDE_CODE_ENTRYPOINT` (`cli`, `sdk-cli`, ...; measured with
 * 2.1.332, which also sets `AI_AGENT=claude-code_<version>_harness`). A script calling keybroker
 * has neither, and its second call within the TTL is not a rejected token.
 */
function calledByClaudeCode(env: Readonly<Record<string, string | undefined>>): boolean {
  return (env.CLAUDE_CODE_ENTRYPOINT ?? '') !== '';
}

/** The rule the token path applies to this caller, in words, for --debug. */
export function callerRule(
  env: Readonly<Record<string, string | undefined>>,
  callerId: string | undefined,
): string {
  if (!calledByClaudeCode(env)) {
    return 'rejected-token detection off: CLAUDE_CODE_ENTRYPOINT is not set, so the caller is not Claude Code (a repeated call is served from the cache)';
  }
  if (callerId === undefined) {
    return 'rejected-token detection off: the calling Claude Code process could not be identified';
  }
  return `rejected-token detection on: called by Claude Code (CLAUDE_CODE_ENTRYPOINT=${printableAscii(env.CLAUDE_CODE_ENTRYPOINT!).replaceAll(' ', '?').slice(0, 32)}), process ${callerId}; a second call from it within the TTL fetches a new token`;
}

/**
 * A person at a terminal, not Claude Code (whose stdin is a socket): rejected-token detection
 * is off for them. Both stages ask this same question. Not `process.stdin.isTTY`: creating
 * process.stdin loads the stream, net and tty modules, which costs a cache hit more than all
 * its own work and a cold run about 5 ms.
 */
export function stdinIsInteractive(platform: NodeJS.Platform = process.platform): boolean {
  if (platform === 'win32') return Boolean(process.stdin.isTTY);
  try {
    const st = fstatSync(0);
    return st.isCharacterDevice() && st.rdev !== statSync('/dev/null').rdev;
  } catch {
    return false;
  }
}

/**
 * The Claude Code process that called: the nearest ancestor that is not a shell, as `pid-start`
 * (a file-name-safe id); undefined when the environment is not Claude Code's (see above).
 */
export function callerId(
  platform: NodeJS.Platform = process.platform,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  if (!calledByClaudeCode(env)) return undefined;
  let pid = process.ppid;
  if (platform === 'win32') return pid > 0 ? `${pid}` : undefined;
  for (let depth = 0; depth < 8 && pid > 1; depth++) {
    const info = procInfo(pid, platform);
    if (!info) return undefined;
    if (!isShell(info.name)) return `${pid}-${info.start.replace(/[^A-Za-z0-9]/g, '')}`;
    pid = info.ppid;
  }
  return undefined;
}

/**
 * Is the process that wrote `pid`/`start` still alive (and not a reused pid)? A zombie (exited,
 * its parent has not reaped it yet) still answers kill(pid, 0) but will never release a lock:
 * on Linux its state says so.
 */
export function isAlive(pid: number, start: string, platform: NodeJS.Platform = process.platform): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const info = start || platform === 'linux' ? procInfo(pid, platform) : undefined;
  if (info?.state === 'Z' || info?.state === 'X') return false;
  if (!start) return true;
  if (!info) return platform === 'win32';
  return info.start === start;
}

/** This process's own start token, written into lock files. */
export function selfStart(platform: NodeJS.Platform = process.platform): string {
  return procInfo(process.pid, platform)?.start ?? '';
}
