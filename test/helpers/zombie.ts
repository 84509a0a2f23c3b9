/**
 * A process that has exited but is never reaped: perl forks, the child execs the command, and
 * the parent sleeps without ever calling wait(). (A shell cannot be trusted with this: dash may
 * reap a background job before it execs the next command, depending on timing.) perl is part of
 * every Debian base system.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';

const NEVER_REAP =
  '$|=1; defined(my $p = fork()) or die "fork: $!"; if ($p == 0) { exec @ARGV or exit 127 } print "$p\\n"; sleep 120';

export interface Zombie {
  pid: number;
  /** Kill the parent; init then reaps the zombie. */
  release(): void;
}

const stateOf = (pid: number): string | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
};

/** Runs argv as a child that is left a zombie; resolves once /proc shows it in state Z. */
export async function makeZombie(argv: string[]): Promise<Zombie> {
  const parent: ChildProcess = spawn('perl', ['-e', NEVER_REAP, ...argv], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const release = () => parent.kill('SIGKILL');
  try {
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      parent.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      parent.once('error', reject);
      parent.once('exit', (code) => reject(new Error(`perl exited ${code} before forking`)));
    });
    for (let i = 0; i < 400 && stateOf(pid) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 25));
    if (stateOf(pid) !== 'Z') throw new Error(`pid ${pid} did not become a zombie (state ${stateOf(pid)})`);
    return { pid, release };
  } catch (err) {
    release();
    throw err;
  }
}
