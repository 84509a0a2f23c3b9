/**
 * How a source reports what failed: one typed error per failure, its exit class from
 * contract §1 (config 2, unreachable 3, denied 4, missing 5), a message saying what failed
 * and why, and a hint saying what to do that always ends with the `keybroker explain` entry
 * of the same code. Every source's mapping of HTTP, network and library failures
 * (vault-client.ts, aws-secrets-manager.ts, oidc-client.ts) builds its errors here, so the
 * entry a hint names cannot drift from the error's code.
 */
import { ExitCode, KeybrokerError, seeDocs } from '../errors.js';

/** The exit class of a source's failure. */
export type FailureKind = 'config' | 'unreachable' | 'denied' | 'missing';

const EXIT_CODES = {
  config: ExitCode.config,
  unreachable: ExitCode.unreachable,
  denied: ExitCode.denied,
  missing: ExitCode.missing,
} as const;

export interface FailureDetails {
  /** What was thrown (shown only with --debug). */
  cause?: unknown;
  /** Seconds the source asked us to wait (HTTP Retry-After). */
  retryAfterSec?: number;
}

/** `code` as a KeybrokerError of `kind`: `hint` gets `; run keybroker explain <code>` appended. */
export function sourceError(
  kind: FailureKind,
  code: string,
  message: string,
  hint: string,
  details: FailureDetails = {},
): KeybrokerError {
  return new KeybrokerError(code, EXIT_CODES[kind], message, {
    hint: `${hint}; ${seeDocs(code)}`,
    ...details,
  });
}
