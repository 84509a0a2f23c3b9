/**
 * The one stderr logger. Warnings are single lines starting `keybroker:`; debug lines appear
 * only with --debug / KEYBROKER_DEBUG=1, carry elapsed time, and pass through redaction.
 */
import { cleanLine } from './redact.js';

export { redactToken } from './redact.js';

export interface Logger {
  warn(message: string): void;
  debug(message: string): void;
  readonly debugEnabled: boolean;
  /** Register a secret value so that it is masked in every later line. */
  addSecret(value: string): void;
}

export interface LoggerOptions {
  debug: boolean;
  write?: (line: string) => void;
  startMs?: number;
  now?: () => number;
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = options.now ?? (() => performance.now());
  // Without --debug no line carries a time, and the clock is never read.
  const start = options.debug ? (options.startMs ?? now()) : 0;
  const secrets = new Set<string>();
  const redact = (s: string) => {
    let out = s;
    for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join('[redacted]');
    return cleanLine(out.replace(/[\r\n]+/g, ' '));
  };
  return {
    debugEnabled: options.debug,
    warn(message) {
      write(`keybroker: ${redact(message)}`);
    },
    debug(message) {
      if (!options.debug) return;
      const ms = (now() - start).toFixed(1).padStart(7);
      write(`keybroker: debug +${ms}ms ${redact(message)}`);
    },
    addSecret(value) {
      if (value) secrets.add(value);
    },
  };
}
