/**
 * isAlive (src/platform/process-info.ts) against real processes: a live one, one that has
 * exited and been reaped, a reused pid (wrong start token), and a zombie, which still answers
 * kill(pid, 0) but will never release anything.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, procInfo } from '../../src/platform/process-info.js';
import { makeZombie } from '../helpers/zombie.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

const state = (pid: number) => procInfo(pid, 'linux')?.state;

async function until(what: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !what(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(what()).toBe(true);
}

describe.runIf(process.platform === 'linux')('isAlive on Linux', () => {
  it('a running process with its start token is alive; with another token it is a reused pid', async () => {
    const child = spawn('sleep', ['30']);
    children.push(child);
    const pid = child.pid!;
    await until(() => procInfo(pid, 'linux') !== undefined);
    const start = procInfo(pid, 'linux')!.start;
    expect(isAlive(pid, start)).toBe(true);
    expect(isAlive(pid, '')).toBe(true);
    expect(isAlive(pid, `${start}1`)).toBe(false);
  });

  it('a reaped process is not alive', async () => {
    const child = spawn('true');
    const pid = child.pid!;
    await new Promise((r) => child.once('exit', r));
    await until(() => !fs.existsSync(`/proc/${pid}`));
    expect(isAlive(pid, '')).toBe(false);
  });

  it('a zombie (exited, never reaped by its parent) is not alive', async () => {
    const zombie = await makeZombie(['true']);
    try {
      expect(state(zombie.pid)).toBe('Z');
      expect(() => process.kill(zombie.pid, 0)).not.toThrow();
      expect(isAlive(zombie.pid, '')).toBe(false);
      expect(isAlive(zombie.pid, procInfo(zombie.pid, 'linux')!.start)).toBe(false);
    } finally {
      zombie.release();
    }
  });
});
