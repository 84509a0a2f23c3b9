/**
 * The one deadline (src/platform/deadline.ts), driven by fake timers: the time left, the
 * signal, the race with the caller's typed error, and no timer or listener left behind.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { unreachableError } from '../../src/errors.js';
import { createDeadline, deadlineAt, withDeadline } from '../../src/platform/deadline.js';

const T0 = Date.parse('2026-12-04T12:00:00Z');
const timedOut = () => unreachableError('ERR_TEST_TIMEOUT', 'test: no answer in time');

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

function later<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms));
}

describe('createDeadline', () => {
  it('counts down from timeoutMs and aborts its signal with a TimeoutError when it passes', async () => {
    const d = createDeadline(1000);
    expect(d.atMs).toBe(T0 + 1000);
    expect(d.remainingMs()).toBe(1000);
    await vi.advanceTimersByTimeAsync(400);
    expect(d.remainingMs()).toBe(600);
    expect(d.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(600);
    expect(d.signal.aborted).toBe(true);
    expect((d.signal.reason as DOMException).name).toBe('TimeoutError');
    expect(d.remainingMs()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('takes its clock from `now`', () => {
    const d = createDeadline(50, { now: () => 7_000 });
    expect(d.atMs).toBe(7_050);
    expect(d.remainingMs()).toBe(50);
  });

  it('clear() stops the timer: the signal is never aborted', async () => {
    const d = createDeadline(1000);
    expect(vi.getTimerCount()).toBe(1);
    d.clear();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(d.signal.aborted).toBe(false);
  });

  it('an outer signal that aborts ends the deadline early, with its reason', () => {
    const outer = new AbortController();
    const d = createDeadline(1000, { signal: outer.signal });
    outer.abort('stop');
    expect(d.signal.aborted).toBe(true);
    expect(d.signal.reason).toBe('stop');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an outer signal already aborted makes a deadline that has passed, with no timer', () => {
    const outer = new AbortController();
    outer.abort();
    const d = createDeadline(1000, { signal: outer.signal });
    expect(d.signal.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('deadlineAt', () => {
  it('is the deadline at an absolute time (a TokenRequest deadlineMs)', async () => {
    const d = deadlineAt(T0 + 250);
    expect(d.remainingMs()).toBe(250);
    await vi.advanceTimersByTimeAsync(250);
    expect(d.signal.aborted).toBe(true);
  });

  it('a time already past still aborts, on the next tick', async () => {
    const d = deadlineAt(T0 - 10);
    expect(d.remainingMs()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(d.signal.aborted).toBe(true);
  });
});

describe('race', () => {
  it("gives the work's value when it settles first, and leaves no listener behind", async () => {
    const d = createDeadline(1000);
    const spy = vi.spyOn(d.signal, 'removeEventListener');
    const result = d.race(later(100, 'token'), timedOut);
    await vi.advanceTimersByTimeAsync(100);
    await expect(result).resolves.toBe('token');
    expect(spy).toHaveBeenCalledWith('abort', expect.any(Function));
  });

  it("gives the work's own error when it fails first", async () => {
    const d = createDeadline(1000);
    await expect(d.race(Promise.reject(new Error('refused')), timedOut)).rejects.toThrow('refused');
  });

  it("rejects with the caller's typed error when the deadline passes first", async () => {
    const d = createDeadline(1000);
    const onTimeout = vi.fn(timedOut);
    const result = d.race(new Promise(() => {}), onTimeout);
    const settled = expect(result).rejects.toMatchObject({ code: 'ERR_TEST_TIMEOUT', exitCode: 3 });
    await vi.advanceTimersByTimeAsync(999);
    expect(onTimeout).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await settled;
    expect(onTimeout).toHaveBeenCalledTimes(1);
  });

  it('rejects at once when the deadline has already passed', async () => {
    const d = createDeadline(10);
    await vi.advanceTimersByTimeAsync(10);
    const failing = Promise.reject(new Error('late'));
    await expect(d.race(failing, timedOut)).rejects.toMatchObject({ code: 'ERR_TEST_TIMEOUT' });
  });
});

describe('withDeadline', () => {
  it('passes the signal to the work and clears its timer when the work is done', async () => {
    let seen: AbortSignal | undefined;
    const result = withDeadline(
      1000,
      (signal) => {
        seen = signal;
        return later(10, 42);
      },
      timedOut,
    );
    await vi.advanceTimersByTimeAsync(10);
    await expect(result).resolves.toBe(42);
    expect(seen?.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clears its timer when the work fails', async () => {
    await expect(withDeadline(1000, () => Promise.reject(new Error('no')), timedOut)).rejects.toThrow('no');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('on timeout aborts the signal, runs onTimeout (for clean-up) and rejects with its error', async () => {
    let seen: AbortSignal | undefined;
    const cleanup = vi.fn();
    const result = withDeadline(
      500,
      (signal) => {
        seen = signal;
        return new Promise<never>(() => {});
      },
      () => {
        cleanup();
        return timedOut();
      },
    );
    const settled = expect(result).rejects.toMatchObject({ code: 'ERR_TEST_TIMEOUT' });
    await vi.advanceTimersByTimeAsync(500);
    await settled;
    expect(seen?.aborted).toBe(true);
    expect(cleanup).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keepAlive leaves the timer ref’d; by default it is unref’d', () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    createDeadline(1000).clear();
    const unrefd = spy.mock.results[0]!.value as NodeJS.Timeout;
    createDeadline(1000, { keepAlive: true }).clear();
    const kept = spy.mock.results[1]!.value as NodeJS.Timeout;
    expect(unrefd.hasRef()).toBe(false);
    expect(kept.hasRef()).toBe(true);
    spy.mockRestore();
  });
});
