/**
 * `keybroker keygen [--algorithm A] [--out PATH | --keychain SERVICE/ACCOUNT]`: creates a signing
 * key for a jwt profile and prints its kid. Never overwrites an existing key: tokens signed with
 * it would stop verifying at the gateway.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import type { JwtAlgorithm } from '../config/types.js';
import type { AppContext } from '../context.js';
import { configError, seeDocs } from '../errors.js';
import { expandHome, userConfigDir } from '../platform/paths.js';
import { ensurePrivateDir } from '../platform/safe-fs.js';
import { DEFAULT_JWT_ALGORITHM, generateSigningKey, JWT_ALGORITHMS } from '../sources/signing-key.js';

const KEYCHAIN_TIMEOUT_MS = 8_000;

interface KeygenArgs {
  algorithm: JwtAlgorithm;
  out?: string;
  keychain?: string;
}

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'keygen',
    'create a signing key for a jwt profile (file 0600) and print its kid',
    (c) =>
      c
        .option('algorithm', {
          type: 'string',
          choices: JWT_ALGORITHMS as JwtAlgorithm[],
          default: DEFAULT_JWT_ALGORITHM,
          describe: 'JWT algorithm the key is for',
        })
        .option('out', {
          type: 'string',
          describe: 'file to create (default <user config dir>/signing-key.pem, .json for HS256)',
        })
        .option('keychain', {
          type: 'string',
          describe: 'store the key in the OS keychain as SERVICE/ACCOUNT instead of a file',
        })
        .conflicts('out', 'keychain'),
    async (argv) => {
      await runKeygen(argv as unknown as KeygenArgs, ctx);
    },
  );
}

export async function runKeygen(args: KeygenArgs, ctx: AppContext): Promise<void> {
  if (args.keychain !== undefined) {
    const { service, account } = parseKeychainTarget(args.keychain, ctx.userName);
    const { openKeyring } = await import('../platform/keyring.js');
    const keyring = await openKeyring({
      env: ctx.env,
      platform: ctx.platform,
      timeoutMs: KEYCHAIN_TIMEOUT_MS,
    });
    if ((await keyring.get(service, account)) !== undefined) {
      throw configError(
        'ERR_KEYGEN_EXISTS',
        `keygen: keychain item service=${service} account=${account} already exists`,
        {
          hint: `choose another item, or remove the old key first with keybroker keychain delete --service '${service}' --account '${account}' (tokens signed with it stop verifying); ${seeDocs('ERR_KEYGEN_EXISTS')}`,
        },
      );
    }
    const key = await generateSigningKey(args.algorithm);
    await keyring.set(service, account, key.material, `keybroker ${key.alg} signing key`);
    ctx.logger.warn(
      `stored a new ${key.alg} signing key in the keychain; use "signingKey": {"keychain": {"service": "${service}", "account": "${account}"}}`,
    );
    ctx.stdout(`${key.kid}\n`);
    return;
  }
  const file =
    args.out !== undefined && args.out !== ''
      ? path.resolve(ctx.cwd, expandHome(args.out, ctx.homeDir))
      : path.join(userConfigDir(ctx), args.algorithm === 'HS256' ? 'signing-key.json' : 'signing-key.pem');
  const key = await generateSigningKey(args.algorithm);
  writeNewPrivateFile(file, key.material);
  ctx.logger.warn(`wrote a new ${key.alg} signing key to ${file}; use "signingKey": {"file": "${file}"}`);
  ctx.stdout(`${key.kid}\n`);
}

/** `SERVICE/ACCOUNT`, or `SERVICE` alone for the login name as account. */
export function parseKeychainTarget(target: string, userName: string): { service: string; account: string } {
  const slash = target.indexOf('/');
  const service = slash === -1 ? target : target.slice(0, slash);
  const account = slash === -1 ? userName : target.slice(slash + 1);
  if (service === '' || account === '') {
    throw configError('ERR_USAGE', `keygen: --keychain "${target}" is not SERVICE/ACCOUNT`, {
      hint: 'e.g. --keychain keybroker/signing-key',
    });
  }
  return { service, account };
}

/** Creates `file` with mode 0600 and O_EXCL (never replaces anything, a symlink included). */
function writeNewPrivateFile(file: string, data: string): void {
  const dir = path.dirname(file);
  try {
    if (!fs.existsSync(dir)) ensurePrivateDir(dir);
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    } catch (e) {
      // A half-written key must not stay behind looking like a key.
      fs.closeSync(fd);
      fs.unlinkSync(file);
      throw e;
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw configError('ERR_KEYGEN_EXISTS', `keygen: ${file} already exists`, {
        hint: `choose another path with --out, or move the old key away first (tokens signed with it stop verifying); ${seeDocs('ERR_KEYGEN_EXISTS')}`,
      });
    }
    if (typeof code === 'string') {
      throw configError('ERR_KEYGEN_WRITE', `keygen: cannot create ${file} (${code})`, {
        hint: `check the directory exists and is writable, or choose another path with --out; ${seeDocs('ERR_KEYGEN_WRITE')}`,
      });
    }
    throw e;
  }
}
