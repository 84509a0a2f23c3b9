/**
 * First stage. Claude Code runs this on every refresh, so the common case (a fresh cache
 * entry) is answered here with node:fs and node:crypto alone. Anything else, including every
 * error, is handed to the second stage (main.ts), which redoes the request properly and is the
 * only place that prints errors.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { fingerprint } from './cache/entry.js';
import { createFileStore } from './cache/file-store.js';
import { decide } from './cache/policy.js';
import { type ConfigInputs, loadConfig, resolveProfile } from './config/load.js';
import { appendAudit } from './output/audit.js';
import { auditRecord } from './output/audit-record.js';
import { cacheDir } from './platform/paths.js';
import { callerId as detectCaller } from './platform/process-info.js';

const startPerfMs = performance.now();

interface FastArgs {
  profile?: string;
  config?: string;
  json: boolean;
}

/** Only the plain token path is answered here; anything else returns undefined. */
function parseFast(argv: string[]): FastArgs | undefined {
  const out: FastArgs = { json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === 'token' && i === 0) continue;
    if (a === '--json') out.json = true;
    else if (a === '--profile' || a === '--config') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('-')) return undefined;
      out[a === '--profile' ? 'profile' : 'config'] = v;
    } else if (a.startsWith('--profile=')) out.profile = a.slice(10);
    else if (a.startsWith('--config=')) out.config = a.slice(9);
    else return undefined;
  }
  return out;
}

/** Returns the text to print when the cache can answer, else undefined. */
export function tryCacheHit(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  if (env.KEYBROKER_DEBUG === '1') return undefined;
  const args = parseFast(argv);
  if (!args) return undefined;
  const nowMs = Date.now();
  const user = os.userInfo().username;
  const host = os.hostname();
  const inputs: ConfigInputs = {
    env,
    platform: process.platform,
    homeDir: os.homedir(),
    userName: user,
    hostName: host,
    ...(args.config !== undefined ? { configFlag: args.config } : {}),
    ...(args.profile !== undefined ? { profileFlag: args.profile } : {}),
  };
  const resolved = resolveProfile(loadConfig(inputs), inputs);
  if (resolved.warnings.length > 0 || resolved.cache.storage !== 'file') return undefined;
  const store = createFileStore({ dir: cacheDir(inputs), discardCorrupt: false });
  const entry = store.readSync(resolved.cacheKey);
  if (!entry) return undefined;
  const caller = process.stdin.isTTY ? undefined : detectCaller(process.platform);
  const served = caller ? store.readServed(resolved.cacheKey, caller) : undefined;
  const fp = fingerprint(entry.token);
  const decision = decide({
    entry,
    nowMs,
    params: {
      ttlMs: resolved.ttlMs,
      marginMs: resolved.cache.refreshMarginMs,
      staleIfErrorMs: resolved.cache.staleIfErrorMs,
    },
    minRefreshIntervalMs: resolved.cache.minRefreshIntervalMs,
    served,
    entryFingerprint: fp,
    invocationStartMs: performance.timeOrigin,
  });
  if (decision.action !== 'serve') return undefined;
  if (caller) {
    store.writeServed(resolved.cacheKey, caller, {
      fingerprint: fp,
      servedAtMs: Date.now(),
      ttlMs: resolved.ttlMs,
    });
  }
  if (resolved.audit.enabled && resolved.audit.file) {
    const warning = appendAudit(
      resolved.audit.file,
      auditRecord({
        nowMs: Date.now(),
        startedMs: performance.timeOrigin,
        profile: resolved.name,
        source: entry.source,
        user,
        host,
        callerId: caller,
        result: {
          token: entry.token,
          cache: 'hit',
          ...(entry.expiresAtMs !== undefined ? { expiresAtMs: entry.expiresAtMs } : {}),
          ...(entry.jti !== undefined ? { jti: entry.jti } : {}),
        },
      }),
    );
    if (warning) process.stderr.write(`keybroker: ${warning}\n`);
  }
  if (!args.json) return `${entry.token}\n`;
  return `${JSON.stringify({
    token: entry.token,
    expiresAt: entry.expiresAtMs !== undefined ? new Date(entry.expiresAtMs).toISOString() : null,
    source: entry.source,
    profile: resolved.name,
    cache: 'hit',
  })}\n`;
}

type MainModule = { main: (argv: string[], o: { startMs: number }) => Promise<number> };

/** How the second stage is loaded; the release build replaces this for single executables. */
function loadMain(): Promise<MainModule> {
  return import(pathToFileURL(path.join(__dirname, 'lib', 'main.mjs')).href) as Promise<MainModule>;
}

/** Exit once stdout is flushed (pipes are asynchronous on macOS). */
function finish(code: number, text = ''): void {
  process.stdout.write(text, () => process.exit(code));
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
  loadMain()
    .then((m) => m.main(argv, { startMs: startPerfMs }))
    .then(
      (code) => finish(code),
      () => finish(1),
    );
}

run();
