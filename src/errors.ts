/**
 * Typed errors. Only src/main.ts (and the first stage) turns them into a stderr line and an
 * exit code; everything else throws. Callers switch on `code`, never on message text.
 *
 * Line shape (contract §1): `keybroker: <what failed>: <why> (<what to do>)`.
 * `message` holds "<what failed>: <why>", `hint` holds "<what to do>". Neither may contain a
 * secret value: name variables, paths and fields, never their values.
 */

import { redactUrls } from './output/redact.js';

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

export const TROUBLESHOOTING = 'docs/troubleshooting.md';

/** "see docs/troubleshooting.md#err_vault_denied" — every hint may end with its anchor. */
export function seeDocs(code: string): string {
  return `see ${TROUBLESHOOTING}#${code.toLowerCase()}`;
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
export function formatErrorLine(e: unknown): string {
  if (isKeybrokerError(e)) {
    const hint = e.hint ? ` (${e.hint})` : '';
    return `keybroker: ${oneLine(e.message)}${hint ? oneLine(hint) : ''}`;
  }
  const name = e instanceof Error ? e.name : typeof e;
  return `keybroker: internal error: ${oneLine(name)} (this is a bug; rerun with --debug and report it with the output at https://github.com/keybroker/keybroker/issues)`;
}

function oneLine(s: string): string {
  return redactUrls(s)
    .replace(/[\r\n]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?');
}
