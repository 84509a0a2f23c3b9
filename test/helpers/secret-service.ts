/**
 * A real Secret Service for one test file: gnome-keyring-daemon with an unlocked "login"
 * keyring, on a private session bus started by dbus-run-session, in a temporary HOME. Child
 * processes reach it through `session.env` (DBUS_SESSION_BUS_ADDRESS, HOME, XDG_RUNTIME_DIR).
 *
 * Without the Debian packages the keychain tests are skipped with the install command, except
 * under CI (process.env.CI set), where they must run: there `secretServiceSuite` does not skip,
 * and `startSecretService` fails with the same message.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isKeybrokerError, type KeybrokerError } from '../../src/errors.js';

export const SECRET_SERVICE_PACKAGES = 'gnome-keyring libsecret-tools dbus';
export const SECRET_SERVICE_INSTALL = `apt-get install -y ${SECRET_SERVICE_PACKAGES}`;
const TOOLS = ['dbus-run-session', 'dbus-daemon', 'dbus-send', 'gnome-keyring-daemon', 'secret-tool'];

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      fs.accessSync(path.join(dir, tool), fs.constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

export function missingSecretServiceTools(): string[] {
  return TOOLS.filter((t) => !onPath(t));
}

/**
 * How a describe block decides: `skip` is true only off CI with tools missing; `title` says
 * why and how to install them, so the skip is visible in the report.
 */
export function secretServiceSuite(title: string): { skip: boolean; title: string } {
  const missing = missingSecretServiceTools();
  if (missing.length === 0) return { skip: false, title };
  if (process.env.CI) return { skip: false, title: `${title} (CI: ${missing.join(', ')} missing, failing)` };
  return {
    skip: true,
    title: `${title} [SKIPPED: ${missing.join(', ')} not found; install with: ${SECRET_SERVICE_INSTALL}]`,
  };
}

function requireTools(): void {
  const missing = missingSecretServiceTools();
  if (missing.length > 0) {
    throw new Error(
      `the keychain tests need ${missing.join(', ')} (install with: ${SECRET_SERVICE_INSTALL}); CI must run them, not skip them`,
    );
  }
}

export interface RunOutput {
  stdout: string;
  stderr: string;
  code: number;
}

export interface SecretServiceSession {
  /** DBUS_SESSION_BUS_ADDRESS of the private bus. */
  address: string;
  /** The temporary HOME (keyrings live in home/.local/share/keyrings). */
  home: string;
  /** Environment for child processes that must reach this Secret Service. */
  env: Record<string, string>;
  /** Runs secret-tool against this Secret Service. */
  secretTool(args: string[], input?: string): Promise<RunOutput>;
  /** Runs dbus-send --session against this bus. */
  dbusSend(args: string[]): Promise<RunOutput>;
  stop(): Promise<void>;
}

function run(file: string, args: string[], env: Record<string, string>, input?: string): Promise<RunOutput> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env, timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ stdout, stderr, code });
    });
    child.stdin?.end(input ?? '');
  });
}

function baseEnv(dir: string): { home: string; runtime: string; env: Record<string, string> } {
  const home = path.join(dir, 'home');
  const runtime = path.join(dir, 'run');
  fs.mkdirSync(home, { mode: 0o700 });
  fs.mkdirSync(runtime, { mode: 0o700 });
  return {
    home,
    runtime,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      XDG_RUNTIME_DIR: runtime,
      XDG_DATA_HOME: path.join(home, '.local', 'share'),
      LANG: 'C',
    },
  };
}

/** Waits for a line starting with `prefix` on the child's stdout. */
function waitForLine(child: ChildProcess, prefix: string, what: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => finish(new Error(`${what}: not ready within ${timeoutMs} ms; stderr: ${err}`)),
      timeoutMs,
    );
    const finish = (e?: Error, line?: string) => {
      clearTimeout(timer);
      child.stdout?.off('data', onOut);
      child.off('exit', onExit);
      if (e) reject(e);
      else resolve(line!);
    };
    const onOut = (d: Buffer) => {
      out += d.toString('utf8');
      const line = out.split('\n').find((l) => l.startsWith(prefix));
      if (line !== undefined) finish(undefined, line.slice(prefix.length).trim());
    };
    const onExit = (code: number | null) =>
      finish(new Error(`${what}: exited (${code}) before it was ready; stderr: ${err}`));
    child.stdout?.on('data', onOut);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    child.on('exit', onExit);
  });
}

/** Kills the process group we started (dbus-run-session or dbus-daemon and their children). */
function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
    return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      resolve();
    }
  });
}

const READY_SCRIPT = `
printf %s "$KB_KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 1
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \\
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; do
  i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05
done
echo "BUS=$DBUS_SESSION_BUS_ADDRESS"
exec sleep 2147483647
`;

/** Starts dbus-run-session + gnome-keyring-daemon with an unlocked login keyring (about 0.5-1 s). */
export async function startSecretService(): Promise<SecretServiceSession> {
  requireTools();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-secret-service-'));
  const { home, env } = baseEnv(dir);
  const child = spawn('dbus-run-session', ['--', 'sh', '-c', READY_SCRIPT], {
    env: { ...env, KB_KEYRING_PASSWORD: 'keybroker-test' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let address: string;
  try {
    address = await waitForLine(child, 'BUS=', 'gnome-keyring-daemon under dbus-run-session');
  } catch (e) {
    await killGroup(child);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const sessionEnv = { ...env, DBUS_SESSION_BUS_ADDRESS: address };
  return {
    address,
    home,
    env: sessionEnv,
    secretTool: (args, input) => run('secret-tool', args, sessionEnv, input),
    dbusSend: (args) => run('dbus-send', ['--session', ...args], sessionEnv),
    async stop() {
      await killGroup(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface BareBus {
  address: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * A session bus on which nothing provides org.freedesktop.secrets and nothing can be
 * activated (no service directories): "the keyring daemon is absent".
 */
export async function startBusWithoutSecretService(): Promise<BareBus> {
  requireTools();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-bare-bus-'));
  const { env } = baseEnv(dir);
  const configFile = path.join(dir, 'bus.conf');
  fs.writeFileSync(
    configFile,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${path.join(dir, 'bus')}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
  );
  const child = spawn('dbus-daemon', [`--config-file=${configFile}`, '--nofork', '--print-address=1'], {
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let address: string;
  try {
    address = await waitForLine(child, 'unix:', 'dbus-daemon');
    address = `unix:${address}`;
  } catch (e) {
    await killGroup(child);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    address,
    env: { ...env, DBUS_SESSION_BUS_ADDRESS: address },
    async stop() {
      await killGroup(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The KeybrokerError a promise rejects with (fails the test when it resolves or throws something else). */
export async function rejection(p: Promise<unknown>): Promise<KeybrokerError> {
  try {
    await p;
  } catch (e) {
    if (isKeybrokerError(e)) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}
