/** Temporary managed/user config files and the inputs that point the loader at them. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ConfigInputs } from '../../src/config/load.js';
import { formatErrorLine, isKeybrokerError } from '../../src/errors.js';

export interface ConfigFixture {
  dir: string;
  managedPath: string;
  userPath: string;
  inputs(over?: Partial<ConfigInputs> & { extraEnv?: Record<string, string | undefined> }): ConfigInputs;
  writeManaged(config: unknown): void;
  writeUser(config: unknown): void;
  cleanup(): void;
}

export function makeConfigFixture(): ConfigFixture {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-config-'));
  const managedPath = path.join(dir, 'etc', 'managed.json');
  const userPath = path.join(dir, 'home', '.config', 'keybroker', 'config.json');
  fs.mkdirSync(path.dirname(managedPath), { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.dirname(userPath), { recursive: true, mode: 0o700 });
  const write = (p: string, config: unknown) =>
    fs.writeFileSync(p, typeof config === 'string' ? config : JSON.stringify(config, null, 2), {
      mode: 0o600,
    });
  return {
    dir,
    managedPath,
    userPath,
    inputs(over = {}) {
      const { extraEnv, ...rest } = over;
      return {
        env: {
          KEYBROKER_MANAGED_CONFIG: managedPath,
          XDG_CONFIG_HOME: path.join(dir, 'home', '.config'),
          XDG_STATE_HOME: path.join(dir, 'home', '.local', 'state'),
          ...extraEnv,
        },
        platform: 'linux',
        homeDir: path.join(dir, 'home'),
        userName: 'alice',
        hostName: 'laptop-1',
        ...rest,
      };
    },
    writeManaged: (config) => write(managedPath, config),
    writeUser: (config) => write(userPath, config),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs fn, expects a KeybrokerError, returns [exit code, code, stderr line]. */
export function failure(fn: () => unknown): [number, string, string] {
  try {
    fn();
  } catch (e) {
    if (!isKeybrokerError(e)) throw e;
    return [e.exitCode, e.code, formatErrorLine(e)];
  }
  throw new Error('expected a KeybrokerError, got success');
}
