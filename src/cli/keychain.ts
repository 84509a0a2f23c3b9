/**
 * `keybroker keychain set|delete --service S --account A`: stores or removes one keychain
 * item. The value comes from stdin, or from a hidden prompt when stdin is a terminal; never
 * from a flag (it would land in shell history and `ps`). On Linux the item carries the
 * `service` and `account` attributes (and `username`), so `secret-tool lookup service S
 * account A`, keytar-based tools and keyring-rs find it too.
 */
import type { Argv } from 'yargs';
import { DEFAULTS } from '../config/types.js';
import type { AppContext } from '../context.js';
import { configError, missingError, seeDocs } from '../errors.js';

interface KeychainArgs {
  service: string;
  account?: string;
}

function itemOptions(c: Argv, ctx: AppContext): Argv<KeychainArgs> {
  return c
    .option('service', { type: 'string', demandOption: true, describe: 'service attribute of the item' })
    .option('account', {
      type: 'string',
      describe: `account attribute of the item (default: your login name, ${ctx.userName || 'unknown'})`,
    }) as unknown as Argv<KeychainArgs>;
}

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command('keychain', 'store or remove an OS keychain item (a token or signing key)', (c) =>
    c
      .command(
        'set',
        'store an item; the value is read from stdin, or from a hidden prompt on a terminal',
        (s) => itemOptions(s, ctx),
        async (argv) => runKeychainSet(argv as unknown as KeychainArgs, ctx),
      )
      .command(
        'delete',
        'remove an item',
        (s) => itemOptions(s, ctx),
        async (argv) => runKeychainDelete(argv as unknown as KeychainArgs, ctx),
      )
      .demandCommand(1, 'name a keychain command: set or delete'),
  );
}

function target(args: KeychainArgs, ctx: AppContext) {
  const service = args.service;
  const account = args.account ?? ctx.userName;
  if (!service || !account) {
    throw configError('ERR_USAGE', 'usage: keychain: --service and --account must not be empty', {
      hint: 'run keybroker keychain --help',
    });
  }
  return { service, account, where: `service=${service} account=${account}` };
}

async function open(ctx: AppContext) {
  const { openKeyring } = await import('../platform/keyring.js');
  return openKeyring({ env: ctx.env, platform: ctx.platform, timeoutMs: DEFAULTS.timeoutMs });
}

/** Removes one trailing newline (`\n` or `\r\n`), as `echo` and a terminal add it. */
function trimOneNewline(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}

async function runKeychainSet(args: KeychainArgs, ctx: AppContext): Promise<void> {
  const { service, account, where } = target(args, ctx);
  const raw = ctx.stdinIsTTY
    ? await readHidden(`keybroker: value for ${where} (input hidden): `)
    : await ctx.readStdin();
  const value = trimOneNewline(raw);
  if (value === '') {
    throw configError('ERR_KEYCHAIN_EMPTY_VALUE', `keychain set ${where}: the value is empty`, {
      hint: `pipe the value on stdin, e.g. printf %s "$TOKEN" | keybroker keychain set --service ${service} --account ${account}; ${seeDocs('ERR_KEYCHAIN_EMPTY_VALUE')}`,
    });
  }
  const keyring = await open(ctx);
  await keyring.set(service, account, value);
  ctx.logger.warn(`stored keychain item ${where} (${keyring.backend})`);
}

async function runKeychainDelete(args: KeychainArgs, ctx: AppContext): Promise<void> {
  const { service, account, where } = target(args, ctx);
  const keyring = await open(ctx);
  if (!(await keyring.delete(service, account))) {
    throw missingError('ERR_KEYCHAIN_ITEM_MISSING', `keychain item ${where}: not found`, {
      hint: `check --service and --account; ${seeDocs('ERR_KEYCHAIN_ITEM_MISSING')}`,
    });
  }
  ctx.logger.warn(`deleted keychain item ${where} (${keyring.backend})`);
}

/** Reads one line from the terminal without echoing it. Ctrl-C or Ctrl-D on an empty line aborts. */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo goes off before the prompt shows: a person who types at once is never echoed.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || (ch === '\u0004' && value === '')) {
          return done(
            configError('ERR_KEYCHAIN_EMPTY_VALUE', 'keychain set: cancelled', {
              hint: `nothing was stored; ${seeDocs('ERR_KEYCHAIN_EMPTY_VALUE')}`,
            }),
          );
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}
