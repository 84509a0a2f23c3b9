/**
 * `keybroker [token]`: the token path (contract §1). stdout gets exactly the token and one
 * newline on success, nothing on failure.
 */
import type { Argv } from 'yargs';
import { getToken, type TokenResult } from '../broker/broker.js';
import { createFileStore } from '../cache/file-store.js';
import { loadChecked } from '../config/checked.js';
import { validatedMarkerName } from '../config/config-digest.js';
import { managedDocsUrl } from '../config/docs-url.js';
import { configInputs as buildConfigInputs } from '../config/inputs.js';
import { type ConfigInputs, resolveProfile } from '../config/load.js';
import type { AppContext } from '../context.js';
import { formatErrorLine, seeDocs, unreachableError } from '../errors.js';
import { writeAudit } from '../output/audit-record.js';
import { renderToken } from '../output/token-output.js';
import { createDeadline } from '../platform/deadline.js';
import { assertSafeNodeDebug } from '../platform/node-debug.js';
import { callerRule, callerId as detectCaller } from '../platform/process-info.js';
import type { TokenFlags } from './token-args.js';

type TokenArgs = Partial<Pick<TokenFlags, 'refresh' | 'cache' | 'json'>>;

export function configInputs(ctx: AppContext): ConfigInputs {
  return buildConfigInputs(ctx, ctx.globals);
}

/**
 * Loads, validates and resolves the profile: the one way every command gets its config.
 * `lastGood: false` (--no-cache) neither reads nor keeps the last managed config that validated.
 */
export function resolveForCommand(ctx: AppContext, options: { lastGood?: boolean } = {}) {
  const inputs = configInputs(ctx);
  const loaded = loadChecked(inputs, {
    lastGood: options.lastGood !== false,
    warn: (w) => ctx.logger.warn(w),
  });
  const resolved = resolveProfile(loaded, inputs);
  for (const w of resolved.warnings) ctx.logger.warn(`warning: ${w}`);
  return { inputs, loaded, resolved };
}

export async function runToken(ctx: AppContext, args: TokenArgs): Promise<void> {
  // Cached or not: the same answer whichever stage runs, and nothing contacted.
  assertSafeNodeDebug(ctx.env);
  const startedMs = Date.now() - process.uptime() * 1000;
  const noCache = args.cache === false;
  const { resolved, loaded } = resolveForCommand(ctx, { lastGood: !noCache });
  const callerId = noCache || ctx.stdinIsTTY ? undefined : detectCaller(ctx.platform, ctx.env);
  ctx.logger.debug(
    noCache
      ? 'rejected-token detection off: --no-cache keeps no record of what was handed out'
      : ctx.stdinIsTTY
        ? 'rejected-token detection off: stdin is a terminal, so a person is calling, not Claude Code'
        : callerRule(ctx.env, callerId),
  );
  // A source that ignores its abort signal must not hold Claude Code past the deadline.
  const hardStop = createDeadline(resolved.timeoutMs + 500);
  hardStop.signal.addEventListener('abort', () => {
    const err = unreachableError(
      'ERR_TIMEOUT',
      `profile ${resolved.name}: no token within timeoutMs (${resolved.timeoutMs} ms)`,
      {
        hint: `check that the source is reachable, or raise timeoutMs; ${seeDocs('ERR_TIMEOUT')}`,
      },
    );
    process.stderr.write(`${formatErrorLine(err, managedDocsUrl(configInputs(ctx)))}\n`);
    process.exit(err.exitCode);
  });
  const audit = (facts: { result?: TokenResult; error?: unknown }) => {
    const warning = writeAudit(resolved.audit, {
      nowMs: ctx.now(),
      startedMs,
      profile: resolved.name,
      source: resolved.source.type,
      user: ctx.userName,
      host: ctx.hostName,
      callerId,
      ...facts,
    });
    if (warning) ctx.logger.warn(warning);
  };
  let result: TokenResult;
  try {
    result = await getToken(ctx, resolved, {
      refresh: args.refresh === true,
      noCache,
      invocationStartMs: startedMs,
      ...(callerId !== undefined ? { callerId } : {}),
    });
  } catch (e) {
    audit({ error: e });
    throw e;
  } finally {
    hardStop.clear();
  }
  audit({ result });
  // Tell the first stage this config passed validation, so it may answer hits under it.
  if (!noCache && resolved.cache.storage === 'file') {
    try {
      createFileStore({ dir: resolved.cacheDir }).setMarker(validatedMarkerName(loaded));
    } catch {
      // only costs the next run a trip through the second stage
    }
  }
  ctx.stdout(renderToken(result, args.json === true), 'token');
}

export function register(y: Argv, ctx: AppContext): Argv {
  // `--no-cache` is the flag a person types; yargs parses it as `cache` (kept hidden so no help
  // shows `--cache [default: true]`). `keybroker` alone takes the same flags, but the top-level
  // help must not list them as if every command took them (an epilogue points here instead).
  const builder = (hidden: boolean) => (c: Argv) =>
    c
      .option('refresh', { type: 'boolean', hidden, describe: 'skip the cached entry and replace it' })
      .option('cache', { type: 'boolean', hidden: true })
      .option('no-cache', { type: 'boolean', hidden, describe: 'neither read nor write the cache' })
      .option('json', {
        type: 'boolean',
        hidden,
        describe: 'print one JSON object: token, expiresAt, source, profile, cache',
      });
  const handler = (argv: TokenArgs) => runToken(ctx, argv);
  return y
    .command('$0', 'print a token for the profile (the token path Claude Code runs)', builder(true), handler)
    .command('token', 'print a token for the profile (same as no command)', builder(false), handler)
    .epilogue('keybroker [token] also takes --refresh, --no-cache and --json (see keybroker token --help)');
}
