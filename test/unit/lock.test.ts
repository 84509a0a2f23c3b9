/**
 * acquireLock (src/cache/lock.ts) in one process: a waiter blocks on the lock file's watch and
 * takes the lock once the holder lets go; asked on a wake, a peer that finished releases it
 * without the lock. No timing is asserted.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, type Lock } from '../../src/cache/lock.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-lock-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const options = (over: Partial<Parameters<typeof acquireLock>[0]> = {}) => ({
  dir,
  key: 'default-0123',
  deadlineMs: Date.now() + 60_000,
  now: Date.now,
  maxHoldMs: 60_000,
  ...over,
});

describe('acquireLock', () => {
  it('a waiter takes the lock once the holder releases it', async () => {
    const holder = (await acquireLock(options())) as Lock;
    let waiterHas = false;
    const waiter = acquireLock(options()).then((l) => {
      waiterHas = true;
      return l as Lock;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(waiterHas).toBe(false);
    holder.release();
    const second = await waiter;
    expect(second.recovered).toBe(false);
    expect(fs.existsSync(path.join(dir, 'default-0123.lock'))).toBe(true);
    second.release();
    expect(fs.existsSync(path.join(dir, 'default-0123.lock'))).toBe(false);
  });

  it('a waiter says once that it waits, naming the holder', async () => {
    const holder = (await acquireLock(options())) as Lock;
    const told: (number | undefined)[] = [];
    const waiter = acquireLock(options({ onWait: (pid) => told.push(pid) }));
    await new Promise((r) => setTimeout(r, 300));
    holder.release();
    (await waiter).release();
    expect(told).toEqual([process.pid]);
    const alone = (await acquireLock(options({ onWait: () => told.push(-1) }))) as Lock;
    alone.release();
    expect(told).toEqual([process.pid]);
  });

  it('a waiter whose peer finished returns without taking the lock', async () => {
    const holder = (await acquireLock(options())) as Lock;
    let asked = 0;
    const got = await acquireLock(
      options({
        peerDone: async () => {
          asked++;
          return asked >= 2;
        },
      }),
    );
    expect(got).toEqual({ peerDone: true });
    expect(asked).toBe(2);
    holder.release();
  });

  it('past the deadline the waiter gives up with ERR_LOCK_TIMEOUT', async () => {
    const holder = (await acquireLock(options())) as Lock;
    await expect(acquireLock(options({ deadlineMs: Date.now() + 100 }))).rejects.toMatchObject({
      code: 'ERR_LOCK_TIMEOUT',
    });
    holder.release();
  });
});
