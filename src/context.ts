/**
 * What comes in from the edge: environment, clock, platform facts, stderr logger, stdout.
 * main.ts builds one; tests build their own. Commands and the broker take it as a parameter
 * instead of reading process.* themselves.
 */
import type { Logger } from './output/logger.js';

export interface GlobalOptions {
  profile?: string;
  config?: string;
  debug: boolean;
}

export interface AppContext {
  env: Readonly<Record<string, string | undefined>>;
  /** ms since epoch. */
  now: () => number;
  platform: NodeJS.Platform;
  homeDir: string;
  cwd: string;
  /** Login name, for ${user}. */
  userName: string;
  hostName: string;
  logger: Logger;
  /**
   * The only way anything reaches stdout. Text is cleaned (URL passwords masked, control
   * characters replaced: output/redact.ts) unless it is the token path's `'token'` output.
   */
  stdout: (text: string, kind?: 'token') => void;
  /** Absolute path of the running executable (for init's apiKeyHelper). */
  execPath: string;
  stdinIsTTY: boolean;
  /** Reads all of stdin (only `keychain set` uses it; the token path never does). */
  readStdin: () => Promise<string>;
  globals: GlobalOptions;
  version: string;
  commit: string;
}
