/**
 * The one deadline: created once from a timeout (or an absolute time), it tells the time
 * left, aborts a signal when it passes, and races a promise against it. Every bound on the
 * token path (the profile's timeoutMs in the engine and the sources, the hard stop in
 * `keybroker token`, a keychain call, the browser sign-in wait) is one of these, so a timer
 * is always cleared and a timeout always ends in the caller's typed error.
 *
 * The timer is unref'd by default: a deadline alone never keeps the process alive. A caller
 * that waits on something unref'd itself (our D-Bus socket) passes `keepAlive`.
 */

export interface Deadline {
  /** When it passes, ms since the epoch. */
  readonly atMs: number;
  /** Time left, in ms (0 once passed). */
  remainingMs(): number;
  /** Aborted (reason: a TimeoutError DOMException) when the deadline passes or `signal` aborts. */
  readonly signal: AbortSignal;
  /**
   * `work`'s outcome, unless the deadline passes (or has passed) first: then the error
   * `onTimeout()` returns (it may also clean up). Leaves no listener behind.
   */
  race<T>(work: PromiseLike<T>, onTimeout: () => unknown): Promise<T>;
  /** Stops the timer (and the link to an outer signal); `signal` stays as it is. */
  clear(): void;
}

export interface DeadlineOptions {
  /** The clock, ms since the epoch (a fake one in tests). */
  now?: () => number;
  /** An outer signal (the run's): its abort ends this deadline too. */
  signal?: AbortSignal;
  /** Hold the process open until the deadline passes or is cleared. */
  keepAlive?: boolean;
}

/** A deadline `timeoutMs` from now. */
export function createDeadline(timeoutMs: number, options: DeadlineOptions = {}): Deadline {
  const now = options.now ?? Date.now;
  return deadlineAt(now() + timeoutMs, options);
}

/** A deadline at `atMs` (a TokenRequest's `deadlineMs`), ms since the epoch. */
export function deadlineAt(atMs: number, options: DeadlineOptions = {}): Deadline {
  const now = options.now ?? Date.now;
  const outer = options.signal;
  const controller = new AbortController();
  const remainingMs = () => Math.max(0, atMs - now());
  let timer: ReturnType<typeof setTimeout> | undefined;
  const clear = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    outer?.removeEventListener('abort', onOuterAbort);
  };
  function onOuterAbort() {
    clear();
    controller.abort(outer?.reason);
  }
  if (outer?.aborted) onOuterAbort();
  else {
    outer?.addEventListener('abort', onOuterAbort, { once: true });
    timer = setTimeout(
      () => {
        clear();
        controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
      },
      Math.max(1, remainingMs()),
    );
    if (options.keepAlive !== true) timer.unref?.();
  }
  const signal = controller.signal;

  return {
    atMs,
    remainingMs,
    signal,
    clear,
    race<T>(work: PromiseLike<T>, onTimeout: () => unknown): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const expire = () => reject(onTimeout());
        if (signal.aborted) {
          // Settled later or never: nobody waits for it any more.
          Promise.resolve(work).catch(() => {});
          expire();
          return;
        }
        signal.addEventListener('abort', expire, { once: true });
        Promise.resolve(work).then(
          (v) => {
            signal.removeEventListener('abort', expire);
            resolve(v);
          },
          (e: unknown) => {
            signal.removeEventListener('abort', expire);
            reject(e);
          },
        );
      });
    },
  };
}

/**
 * One bounded operation: `work` gets the deadline's signal; the result is its outcome or, if
 * `timeoutMs` passes first, `onTimeout()`'s error. The timer is cleared either way.
 */
export async function withDeadline<T>(
  timeoutMs: number,
  work: (signal: AbortSignal) => PromiseLike<T>,
  onTimeout: () => unknown,
  options: DeadlineOptions = {},
): Promise<T> {
  const deadline = createDeadline(timeoutMs, options);
  try {
    return await deadline.race(work(deadline.signal), onTimeout);
  } finally {
    deadline.clear();
  }
}
