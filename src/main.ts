/**
 * Second stage: every command. The first stage (src/entry.ts) hands over here whenever it
 * cannot answer from the cache alone. The token path (`keybroker [token]` and its few flags)
 * runs without a CLI parser; yargs and the other commands load only for everything else.
 * This is the only place that turns an error into a stderr line and an exit code.
 */
import * as os from 'node:os';
import type { Argv } from 'yargs';
import { BUILD_INFO } from './build-info.js';
import { COMMANDS } from './cli/commands.js';
import { closest, orList } from './cli/suggest.js';
import { parseTokenArgv } from './cli/token-args.js';
import { ignoredConfigFlagWarning, managedDocsUrl } from './config/docs-url.js';
import { configInputs } from './config/inputs.js';
import type { AppContext, GlobalOptions } from './context.js';
import { configError, ExitCode, formatErrorLine, isKeybrokerError } from './errors.js';
import { createLogger } from './output/logger.js';
import { cleanBlock } from './output/redact.js';
import { stdinIsInteractive } from './platform/process-info.js';
import { printableAscii } from './platform/text.js';

export interface MainOptions {
  /** Date.now() when the first stage started, for --debug timings. */
  startEpochMs?: number;
}

function createContext(globals: GlobalOptions, startEpochMs?: number): AppContext {
  const env = process.env;
  const debug = globals.debug || env.KEYBROKER_DEBUG === '1';
  // Only --debug reads the clock its timings use: the global `performance` loads perf_hooks.
  const startMs =
    debug && startEpochMs !== undefined ? performance.now() - (Date.now() - startEpochMs) : undefined;
  let userName = '';
  try {
    userName = os.userInfo().username;
  } catch {
    userName = env.USER ?? env.USERNAME ?? '';
  }
  return {
    env,
    now: () => Date.now(),
    platform: process.platform,
    homeDir: os.homedir(),
    cwd: process.cwd(),
    userName,
    hostName: os.hostname(),
    logger: createLogger({ debug, ...(startMs === undefined ? {} : { startMs }) }),
    stdout: (text, kind) => {
      process.stdout.write(kind === 'token' ? text : cleanBlock(text));
    },
    execPath: process.env.KEYBROKER_EXEC_PATH ?? process.argv[1] ?? process.execPath,
    stdinIsTTY: stdinIsInteractive(),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    globals: { ...globals, debug },
    version: BUILD_INFO.version,
    commit: BUILD_INFO.commit,
  };
}

function quickGlobals(argv: string[]): GlobalOptions {
  const g: GlobalOptions = { debug: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--debug') g.debug = true;
    else if (a === '--profile' || a === '--config') {
      const v = argv[i + 1];
      if (v !== undefined) g[a === '--profile' ? 'profile' : 'config'] = v;
      i++;
    } else if (a.startsWith('--profile=')) g.profile = a.slice(10);
    else if (a.startsWith('--config=')) g.config = a.slice(9);
  }
  return g;
}

async function buildParser(argv: string[], ctx: AppContext): Promise<Argv> {
  const [{ default: yargs }, commands] = await Promise.all([
    import('yargs'),
    Promise.all(Object.values(COMMANDS).map((load) => load())),
  ]);
  let y: Argv = yargs(argv)
    .scriptName('keybroker')
    .usage('keybroker [command] [options]\n\nPrints a short-lived credential for Claude Code (apiKeyHelper).')
    .option('profile', {
      type: 'string',
      describe: 'profile to use (else KEYBROKER_PROFILE, defaultProfile, "default")',
      global: true,
    })
    .option('config', {
      type: 'string',
      describe: 'user config file (else KEYBROKER_CONFIG, ~/.config/keybroker/config.json)',
      global: true,
    })
    .option('debug', {
      type: 'boolean',
      describe: 'timed trace of each step on stderr, secrets redacted',
      global: true,
    })
    .version(`${BUILD_INFO.version} (${BUILD_INFO.commit})`)
    .help()
    .alias('help', 'h')
    .strict()
    .recommendCommands()
    .wrap(Math.min(110, process.stderr.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw usageError(msg, argv);
    });
  for (const c of commands) y = c.register(y, ctx);
  // `completion` itself is answered in main() (yargs would go on parsing after printing it);
  // this registers the hidden --get-yargs-completions the script calls back.
  // The default command is registered as `$0`, which is not something to type: keep it out.
  const completeCommands = (
    _current: string,
    _argv: unknown,
    completionFilter: (
      onCompleted?: (err: Error | null, completions: string[] | undefined) => void,
    ) => unknown,
    done: (completions: string[]) => unknown,
  ): void => {
    completionFilter((err, completions) =>
      done(err ? [] : (completions ?? []).filter((c) => c !== '$0' && !c.startsWith('$0:'))),
    );
  };
  y = y.completion('completion', 'print a bash/zsh completion script', completeCommands);
  return y;
}

/** Every command a person can type (for "did you mean"): the commands' modules and yargs' `completion`. */
export const COMMAND_NAMES = [...Object.keys(COMMANDS), 'completion'];

/** yargs' raw messages, said the way a person can act on (clig.dev: suggest, show usage). */
function usageError(msg: string, argv: string[]) {
  const first = argv[0];
  if (first !== undefined && !first.startsWith('-') && msg === `Unknown argument: ${first}`) {
    const near = closest(first, COMMAND_NAMES);
    const shown = printableAscii(first);
    return configError('ERR_USAGE', `usage: unknown command ${shown}`, {
      hint: near.length > 0 ? `did you mean ${orList(near)}?` : 'run keybroker --help for the commands',
    });
  }
  if (
    first !== undefined &&
    COMMAND_NAMES.includes(first) &&
    msg.startsWith('Not enough non-option arguments')
  ) {
    return configError('ERR_USAGE', `usage: keybroker ${first} needs a subcommand`, {
      hint: `run keybroker ${first} --help`,
    });
  }
  return configError('ERR_USAGE', `usage: ${asTyped(msg, argv)}`, { hint: 'run keybroker --help' });
}

/** yargs names `--no-cache` as the argument `cache`: say it as it was typed. */
function asTyped(msg: string, argv: string[]): string {
  const m = /^(Unknown arguments?: )(.*)$/.exec(msg);
  if (!m) return msg;
  const names = m[2]!
    .split(', ')
    .map((n) =>
      !argv.includes(`--${n}`) && argv.some((a) => a === `--no-${n}` || a.startsWith(`--no-${n}=`))
        ? `no-${n}`
        : n,
    );
  return `${m[1]}${names.join(', ')}`;
}

/** Runs one invocation; resolves to the exit code. Never throws. */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const tokenPath = parseTokenArgv(argv);
  const globals: GlobalOptions = tokenPath
    ? {
        debug: tokenPath.debug,
        ...(tokenPath.profile !== undefined ? { profile: tokenPath.profile } : {}),
        ...(tokenPath.config !== undefined ? { config: tokenPath.config } : {}),
      }
    : quickGlobals(argv);
  const ctx = createContext(globals, options.startEpochMs);
  const ignored = ignoredConfigFlagWarning(configInputs(ctx, ctx.globals));
  if (ignored) ctx.logger.warn(ignored);
  try {
    if (tokenPath) {
      const { runToken } = await import('./cli/token.js');
      await runToken(ctx, tokenPath);
      return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
    }
    // --help / --version output goes to stdout only for those commands, never on the token path.
    if (argv[0] === 'completion') return await completion(argv.slice(1), ctx);
    const parser = await buildParser(argv, ctx);
    await parser.parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (e) {
    process.stderr.write(`${formatErrorLine(e, managedDocsUrl(configInputs(ctx, ctx.globals)))}\n`);
    if (ctx.globals.debug && e instanceof Error && e.stack) {
      process.stderr.write(ctx.logger.debugEnabled ? `keybroker: debug stack: ${redactStack(e)}\n` : '');
    }
    return isKeybrokerError(e) ? e.exitCode : ExitCode.internal;
  }
}

const COMPLETION_HELP = `keybroker completion [bash|zsh]

print a completion script for bash or zsh (without one: the shell $SHELL names)

  keybroker completion bash >> ~/.bashrc
  keybroker completion zsh > "\${fpath[1]}/_keybroker"
`;

/**
 * `keybroker completion [bash|zsh]`, answered here: yargs' own command takes no shell
 * argument (it picks the script from $SHELL and then goes on parsing).
 */
async function completion(rest: string[], ctx: AppContext): Promise<number> {
  if (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) {
    ctx.stdout(COMPLETION_HELP);
    return ExitCode.ok;
  }
  const shell = rest[0];
  if (rest.length > 1 || (shell !== undefined && shell !== 'bash' && shell !== 'zsh')) {
    throw configError('ERR_USAGE', 'usage: keybroker completion [bash|zsh]', {
      hint: 'run keybroker completion --help',
    });
  }
  if (shell !== undefined) {
    // yargs picks its template from these when the parser is built.
    process.env.SHELL = `/bin/${shell}`;
    delete process.env.ZSH_NAME;
  }
  (await buildParser([], ctx)).showCompletionScript();
  return ExitCode.ok;
}

function redactStack(e: Error): string {
  // Frames only: the message line of a cause could carry a value.
  const frames = (e.stack ?? '').split('\n').filter((l) => l.trimStart().startsWith('at '));
  const code = isKeybrokerError(e) ? e.code : e.name;
  return `${code}\n${frames.join('\n')}`;
}
