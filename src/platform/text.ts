/**
 * Small checks on text and values used across stages. Stage 1 imports this, so it imports
 * nothing.
 */

/** The longest value Claude Code accepts as a key (contract §1). */
export const MAX_TOKEN_CHARS = 16_384;

/** Printable ASCII without space: what a token may hold (contract §1). */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/** A value keybroker may print as a token as it is: non-empty, at most MAX_TOKEN_CHARS, printable ASCII. */
export function isTokenText(s: string): boolean {
  return s.length > 0 && s.length <= MAX_TOKEN_CHARS && TOKEN_CHARS.test(s);
}

/** A plain object (not null, not an array): what JSON objects parse to. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Each character outside printable ASCII (space to `~`) as `?`: text from outside, safe on one line. */
export function printableAscii(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

/** Text from outside quoted in a message, on one line: non-printable characters as `?`, cut at `max`. */
export function printable(s: string, ellipsis = '…', max = 64): string {
  const clean = printableAscii(s);
  return clean.length > max ? `${clean.slice(0, max)}${ellipsis}` : clean;
}
