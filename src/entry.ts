/**
 * First stage. Claude Code runs this on every refresh, so the common case (a fresh cache
 * entry) is answered here with node:fs alone. Anything else, including every
 * error, is handed to the second stage (main.ts), which redoes the request properly and is the
 * only place that prints errors.
 */
import { writeSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hitPolicy, serveHitSync } from './broker/hit.js';
import { createFileStore } from './cache/file-store.js';
import { parseTokenArgv } from './cli/token-args.js';
import { validatedMarkerName } from './config/config-digest.js';
import { configInputs } from './config/inputs.js';
import { loadConfig, resolveProfile } from './config/load.js';
import { writeAudit } from './output/audit-record.js';
import { renderToken } from './output/token-output.js';
import { unsafeDebugSections } from './platform/node-debug.js';
import { callerId as detectCaller, stdinIsInteractive } from './platform/process-info.js';
import { loadSeaMain } from './platform/sea.js';
import { deferWindowsAclCheck } from './platform/win-acl.js';

// Not `performance`: its module costs milliseconds to load on the hit path.
const startEpochMs = Date.now();
/** When this process started, ms since epoch (concurrent siblings are not rejections). */
const processStartMs = startEpochMs - process.uptime() * 1000;

/** Returns the text to print when the cache can answer, else undefined. */
export function tryCacheHit(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  if (env.KEYBROKER_DEBUG === '1') return undefined;
  // The second stage refuses the token path under an unsafe NODE_DEBUG, cached or not.
  if (unsafeDebugSections(env.NODE_DEBUG).length > 0) return undefined;
  const args = parseTokenArgv(argv);
  // Only the plain token path is answered here.
  if (!args || args.refresh || !args.cache || args.debug) return undefined;
  deferWindowsAclCheck();
  const user = userInfo().username;
  const host = hostname();
  const inputs = configInputs(
    { env, platform: process.platform, homeDir: homedir(), userName: user, hostName: host },
    args,
  );
  const loaded = loadConfig(inputs);
  // An ignored --config is said on stderr, which the second stage does.
  if (args.config !== undefined && loaded.policy.lockdown) return undefined;
  const resolved = resolveProfile(loaded, inputs);
  if (resolved.warnings.length > 0 || resolved.cache.storage !== 'file') return undefined;
  const store = createFileStore({ dir: resolved.cacheDir, discardCorrupt: false });
  if (!store.hasMarker(validatedMarkerName(loaded))) return undefined;
  const caller = stdinIsInteractive() ? undefined : detectCaller(process.platform, env);
  const hit = serveHitSync(store, resolved.cacheKey, hitPolicy(resolved), {
    nowMs: Date.now,
    invocationStartMs: processStartMs,
    callerId: caller,
  });
  if (!hit) return undefined;
  const { entry } = hit;
  const warning = writeAudit(resolved.audit, {
    nowMs: Date.now(),
    startedMs: processStartMs,
    profile: resolved.name,
    source: entry.source,
    user,
    host,
    callerId: caller,
    result: {
      token: entry.token,
      fingerprint: hit.fingerprint,
      cache: 'hit',
      ...(entry.expiresAtMs !== undefined ? { expiresAtMs: entry.expiresAtMs } : {}),
      ...(entry.jti !== undefined ? { jti: entry.jti } : {}),
    },
  });
  if (warning) process.stderr.write(`keybroker: ${warning}\n`);
  return renderToken({ ...entry, profile: resolved.name, cache: 'hit' }, args.json);
}

type MainModule = { main: (argv: string[], o: { startEpochMs: number }) => Promise<number> };

/** Defined as true only by scripts/package.mjs, for the single executables. */
declare const __KEYBROKER_SEA__: boolean | undefined;

/** How the second stage is loaded: beside this file, or from the single executable's assets. */
function loadMain(): Promise<MainModule> {
  if (typeof __KEYBROKER_SEA__ === 'boolean' && __KEYBROKER_SEA__) {
    return Promise.resolve().then(() => loadSeaMain<MainModule>());
  }
  return import(pathToFileURL(join(__dirname, 'lib', 'main.mjs')).href) as Promise<MainModule>;
}

/** Exit once stdout is flushed. A direct write avoids loading the stream modules for the hit. */
function finish(code: number, text = ''): void {
  let rest = Buffer.from(text);
  try {
    while (rest.length > 0) rest = rest.subarray(writeSync(1, rest));
  } catch {
    // EAGAIN on a non-blocking pipe: let the stream machinery finish the rest
  }
  if (rest.length === 0) process.exit(code);
  process.stdout.write(rest, () => process.exit(code));
}

function run(): void {
  const argv = process.argv.slice(2);
  let text: string | undefined;
  try {
    text = tryCacheHit(argv, process.env);
  } catch {
    text = undefined; // the second stage redoes it and reports any error properly
  }
  if (text !== undefined) {
    finish(0, text);
    return;
  }
  const internal = (what: string) => (e: unknown) => {
    const why = e instanceof Error ? ((e as NodeJS.ErrnoException).code ?? e.name) : 'error';
    process.stderr.write(
      `keybroker: internal error: ${what}: ${why} (reinstall keybroker; if it persists, report it with the output of keybroker --version)\n`,
    );
    finish(1);
  };
  loadMain().then(
    (m) =>
      m
        .main(argv, { startEpochMs })
        .then((code) => finish(code), internal('the command failed unexpectedly')),
    internal(`cannot load the second stage next to ${__filename}`),
  );
}

run();
