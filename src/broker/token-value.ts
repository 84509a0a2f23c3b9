/** The value check of contract §1: what Claude Code would refuse, keybroker refuses first (exit 5). */
import { missingError, seeDocs } from '../errors.js';
import { isTokenText, MAX_TOKEN_CHARS } from '../platform/text.js';

export function checkTokenValue(raw: string, what: string): string {
  const value = raw.trim();
  if (value.length === 0) {
    throw missingError('ERR_TOKEN_EMPTY', `${what}: the value is empty`, {
      hint: `store a non-empty token at the source; ${seeDocs('ERR_TOKEN_EMPTY')}`,
    });
  }
  if (value.length > MAX_TOKEN_CHARS) {
    throw missingError(
      'ERR_TOKEN_TOO_LONG',
      `${what}: the value is ${value.length} characters, over ${MAX_TOKEN_CHARS}`,
      {
        hint: `Claude Code refuses longer values; store the token itself; ${seeDocs('ERR_TOKEN_TOO_LONG')}`,
      },
    );
  }
  if (!isTokenText(value)) {
    throw missingError(
      'ERR_TOKEN_INVALID',
      `${what}: the value holds whitespace or characters that are not printable ASCII`,
      {
        hint: `Claude Code accepts one printable-ASCII token; check what is stored at the source; ${seeDocs('ERR_TOKEN_INVALID')}`,
      },
    );
  }
  return value;
}
