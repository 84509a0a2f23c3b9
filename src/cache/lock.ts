/**
 * Cross-process single flight: one lock file per cache key, created with O_EXCL. The holder
 * writes its pid, start time and a nonce; a waiter that finds the holder dead (or its pid
 * reused, or the lock older than any run may last) breaks the lock at once instead of waiting
 * for the deadline.
 *
 * Waiters block: they watch the lock file (fs.watch) and wake when it goes, with a slow,
 * jittered poll behind the watch for the cases it misses (a holder killed without a trace,
 * file systems without notifications). Polling every few ms and reading /proc each time left
 * the holder about 1% of a core with 199 waiters on two cores. The file, not the directory, is
 * watched: every run writes its served record into the directory, and 200 waiters woken by each
 * of those writes would cost what the poll did. On each wake a waiter first asks whether a peer
 * already stored what it needs (`peerDone`), so finished peers release the rest at once
 * instead of passing the lock along 200 times.
 */

import {
  existsSync,
  type FSWatcher,
  linkSync,
  lstatSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { seeDocs, unreachableError } from '../errors.js';
import { isAlive, selfStart } from '../platform/process-info.js';
import { uniqueSuffix } from '../platform/safe-fs.js';

export interface LockOptions {
  dir: string;
  key: string;
  /** Absolute deadline, ms since epoch. */
  deadlineMs: number;
  now: () => number;
  /** A lock older than this is abandoned whatever its holder says. */
  maxHoldMs: number;
  signal?: AbortSignal;
  /**
   * Asked on each wake while the lock is held by another run: true when that run already
   * stored what this one needs, so it need not take the lock at all.
   */
  peerDone?: () => Promise<boolean>;
  /** In [0, 1): jitter for the fallback poll. */
  random?: () => number;
  /** Called once, when this run first finds the lock held by a live run and starts waiting. */
  onWait?: (holderPid: number | undefined) => void;
}

/** The lock was not taken because a peer finished the work meanwhile. */
export interface PeerDone {
  peerDone: true;
}

export interface Lock {
  release(): void;
  /** True when the lock had to be taken from a dead holder. */
  recovered: boolean;
  waitedMs: number;
}

interface LockContent {
  pid: number;
  start: string;
  nonce: string;
  createdAtMs: number;
}

/** The fallback poll: first after about this long, doubling up to the maximum, ±50% jitter. */
const POLL_FIRST_MS = 50;
const POLL_MAX_MS = 1000;

/**
 * Resolves when the lock file changes or goes (its watch), after `ms`, or on abort, whichever
 * is first. A file already gone resolves at once, so a release between the last look and
 * the watch is not missed.
 */
function waitForRelease(file: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    let watcher: FSWatcher | undefined;
    const done = () => {
      clearTimeout(timer);
      watcher?.close();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    try {
      watcher = watch(file, { persistent: false }, done);
      watcher.on('error', done);
    } catch {
      // Gone already (ENOENT), or no watching here: the poll alone.
    }
    if (!existsSync(file)) done();
  });
}

function readLock(file: string): { content?: LockContent; mtimeMs: number } | undefined {
  try {
    const st = statSync(file);
    let content: LockContent | undefined;
    try {
      const o = JSON.parse(readFileSync(file, 'utf8')) as LockContent;
      if (typeof o.pid === 'number' && typeof o.nonce === 'string') content = o;
    } catch {
      content = undefined;
    }
    return content ? { content, mtimeMs: st.mtimeMs } : { mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  }
}

/** Break a stale lock without removing a fresh one that replaced it meanwhile. */
function breakLock(file: string, judged: LockContent | undefined): void {
  const aside = `${file}.stale-${process.pid}-${uniqueSuffix()}`;
  try {
    renameSync(file, aside);
  } catch {
    return; // someone else broke or released it
  }
  const now = readLock(aside);
  if (judged && now?.content && now.content.nonce !== judged.nonce) {
    // We moved a live lock that replaced the stale one: put it back if the place is free.
    try {
      linkSync(aside, file);
    } catch {
      // a third process holds it now; the one we moved will find its lock gone on release
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // gone
  }
}

/**
 * Creates the lock file with its content in one step (write a private temporary file, then
 * link it into place), so a holder killed at any instant never leaves an empty lock that
 * waiters could only judge by its age. False when the lock is held.
 */
function createWithContent(file: string, mine: LockContent): boolean {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${uniqueSuffix()}.tmp`);
  writeFileSync(tmp, JSON.stringify(mine), { flag: 'wx', mode: 0o600 });
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // gone
    }
  }
}

/** `.<name>.<pid>.<suffix>.tmp` (safe-fs writeFileAtomic, the lock) and `<key>.lock.stale-<pid>-<suffix>`. */
const LEFTOVER = /^\.(.+)\.(\d+)\.[a-z0-9]+\.tmp$|^(.+)\.lock\.stale-(\d+)-[a-z0-9]+$/;

/**
 * The lock holder removes what killed runs left for this key: temporary files of interrupted
 * writes and locks set aside while being broken. Only files whose writer is dead (or that are
 * older than any run may last) go; a live writer's temporary file is left alone.
 */
function sweepLeftovers(dir: string, key: string, maxAgeMs: number): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = LEFTOVER.exec(name);
    if (!m) continue;
    const base = m[1] ?? m[3] ?? '';
    if (base !== key && !base.startsWith(`${key}.`)) continue;
    const pid = Number(m[2] ?? m[4]);
    const file = join(dir, name);
    try {
      const abandoned = !isAlive(pid, '') || Date.now() - lstatSync(file).mtimeMs > maxAgeMs;
      if (abandoned && pid !== process.pid) {
        unlinkSync(file);
        removed++;
      }
    } catch {
      // removed by another run meanwhile
    }
  }
  return removed;
}

/** Without `peerDone` the lock is always taken (or the wait fails). */
export function acquireLock(options: Omit<LockOptions, 'peerDone'>): Promise<Lock>;
export function acquireLock(options: LockOptions): Promise<Lock | PeerDone>;
export async function acquireLock(options: LockOptions): Promise<Lock | PeerDone> {
  const file = join(options.dir, `${options.key}.lock`);
  const mine: LockContent = {
    pid: process.pid,
    start: selfStart(),
    nonce: `${process.pid}-${uniqueSuffix()}`,
    createdAtMs: options.now(),
  };
  const began = options.now();
  let recovered = false;
  let waiting = false;
  let poll = POLL_FIRST_MS;
  const random = options.random ?? Math.random;
  for (;;) {
    if (createWithContent(file, mine)) {
      sweepLeftovers(options.dir, options.key, options.maxHoldMs);
      return {
        recovered,
        waitedMs: options.now() - began,
        release() {
          const cur = readLock(file);
          if (cur?.content?.nonce === mine.nonce) {
            try {
              unlinkSync(file);
            } catch {
              // already gone
            }
          }
        },
      };
    }
    const held = readLock(file);
    if (held) {
      const c = held.content;
      const ageMs = Date.now() - held.mtimeMs;
      const stale = c
        ? !isAlive(c.pid, c.start) ||
          options.now() - c.createdAtMs > options.maxHoldMs ||
          ageMs > options.maxHoldMs
        : ageMs > 2_000; // a holder writes its content right after creating the file
      if (stale) {
        breakLock(file, c);
        recovered = true;
        continue;
      }
    }
    if (options.signal?.aborted || options.now() >= options.deadlineMs) {
      throw unreachableError(
        'ERR_LOCK_TIMEOUT',
        `waiting for another keybroker run (lock ${file}): timed out`,
        {
          hint: `the source may be slow; raise timeoutMs or run keybroker cache clear; ${seeDocs('ERR_LOCK_TIMEOUT')}`,
        },
      );
    }
    if (!waiting) {
      waiting = true;
      options.onWait?.(held?.content?.pid);
    }
    const jittered = poll * (0.5 + random());
    await waitForRelease(
      file,
      Math.min(jittered, Math.max(1, options.deadlineMs - options.now())),
      options.signal,
    );
    poll = Math.min(POLL_MAX_MS, poll * 2);
    if (options.peerDone && (await options.peerDone().catch(() => false))) return { peerDone: true };
  }
}
