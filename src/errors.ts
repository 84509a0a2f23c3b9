/**
 * Typed errors. Only src/main.ts (and the first stage) turns them into a stderr line and an
 * exit code; everything else throws. Callers switch on `code`, never on message text.
 *
 * Line shape (contract §1): `keybroker: <what failed>: <why> (<what to do>)`.
 * `message` holds "<what failed>: <why>", `hint` holds "<what to do>". Neither may contain a
 * secret value: name variables, paths and fields, never their values.
 */

import { redactUrls } from './output/redact.js';
import { printableAscii } from './platform/text.js';

export const ExitCode = {
  ok: 0,
  internal: 1,
  config: 2,
  unreachable: 3,
  denied: 4,
  missing: 5,
  unsafe: 6,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface KeybrokerErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Seconds the source asked us to wait (HTTP Retry-After), for negative caching. */
  retryAfterSec?: number;
}

export class KeybrokerError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  readonly retryAfterSec: number | undefined;

  constructor(code: string, exitCode: ExitCodeValue, message: string, options: KeybrokerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeybrokerError';
    this.code = code;
    this.exitCode = exitCode;
    this.hint = options.hint;
    this.retryAfterSec = options.retryAfterSec;
  }
}

/**
 * "run keybroker explain ERR_VAULT_DENIED": every hint may end with it. The entry is built into
 * the executable (docs/troubleshooting.md), so it works on a laptop that has no docs.
 */
export function seeDocs(code: string): string {
  return `run keybroker explain ${code}`;
}

/** A hint without its trailing `; run keybroker explain ERR_X`, to wrap under another code. */
export function withoutDocs(hint: string): string {
  return hint.replace(/(?:; )?run keybroker explain ERR_[A-Z0-9_]+$/, '');
}

/**
 * With a managed `docsUrl`, each `run keybroker explain ERR_X` in a line also points at the
 * company's page: `run keybroker explain ERR_X or see <docsUrl>#err_x`. Applied where lines are
 * printed, so every hint gets it whoever built it.
 */
export function withDocsUrl(text: string, docsUrl: string | undefined): string {
  if (!docsUrl) return text;
  const base = docsUrl.replace(/#.*$/, '');
  return text.replace(
    /run keybroker explain (ERR_[A-Z0-9_]+)(?! or see )/g,
    (m, code: string) => `${m} or see ${base}#${code.toLowerCase()}`,
  );
}

function make(exitCode: ExitCodeValue) {
  return (code: string, message: string, options?: KeybrokerErrorOptions) =>
    new KeybrokerError(code, exitCode, message, options);
}

/** 2: usage or configuration error. */
export const configError = make(ExitCode.config);
/** 3: source unreachable or timed out (network, DNS, TLS, sealed, 5xx). */
export const unreachableError = make(ExitCode.unreachable);
/** 4: denied by the source (bad credentials, expired login, 403). */
export const deniedError = make(ExitCode.denied);
/** 5: secret missing or malformed at the source. */
export const missingError = make(ExitCode.missing);
/** 6: local safety check failed (permissions, ownership, symlinks). */
export const unsafeError = make(ExitCode.unsafe);
/** 1: a bug. */
export const internalError = make(ExitCode.internal);

export function isKeybrokerError(e: unknown): e is KeybrokerError {
  return e instanceof KeybrokerError;
}

/** The one-line stderr rendering of an error (no stack). */
export function formatErrorLine(e: unknown, docsUrl?: string): string {
  if (isKeybrokerError(e)) {
    const hint = e.hint ? ` (${withDocsUrl(e.hint, docsUrl)})` : '';
    return `keybroker: ${oneLine(e.message)}${hint ? oneLine(hint) : ''}`;
  }
  const name = e instanceof Error ? e.name : typeof e;
  return `keybroker: internal error: ${oneLine(name)} (this is a bug; rerun with --debug and report it with the output at https://github.com/keybroker/keybroker/issues)`;
}

function oneLine(s: string): string {
  return printableAscii(redactUrls(s).replace(/[\r\n]+/g, ' '));
}
