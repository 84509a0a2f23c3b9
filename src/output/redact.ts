/**
 * The one redaction and the one sanitizer (contract §7). Every line keybroker shows a person
 * (stderr, the audit log, `status`, `doctor`, `config show`, `--debug`) passes through here:
 *
 * - a password in a URL (a Vault address, a proxy URL, an endpoint) becomes `***`:
 *   `https://user:pass@host` → `https://user:***@host`;
 * - control and escape characters (C0, DEL, C1, and the Unicode marks that reorder or hide
 *   text) become `?`, so text a server sent can neither drive the terminal nor forge lines;
 * - a token is shown as `abcd…wxyz (N chars)`, never more than a quarter of it.
 *
 * Tiny and dependency-free: the first stage's error line uses it.
 */

const URL_PASSWORD_MASK = '***';

/**
 * `scheme://user:password@`: the password runs to the last `@` before the path, as URL
 * parsers read a raw `@` inside it; quotes and whitespace end it (URLs inside JSON or prose).
 */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:"'<>]*):([^\s/?#"'<>]*)@/gi;

/** Every URL password in a text replaced by `***`; the rest of the text as it was. */
export function redactUrls(text: string): string {
  if (!text.includes('@') || !text.includes('://')) return text;
  return text.replace(
    URL_USERINFO,
    (_m, scheme: string, user: string) => `${scheme}${user}:${URL_PASSWORD_MASK}@`,
  );
}

/** One URL (a configured address, a proxy) as it may be shown: its password is `***`. */
export function redactUrl(url: string): string {
  return redactUrls(url);
}

// C0 (but \t and \n), DEL, C1; then bidirectional overrides and isolates, zero-width and
// invisible format characters, line/paragraph separators and the BOM.
const CONTROLS_BUT_NEWLINE =
  /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** One line of text safe for a terminal: every control or escape character (newlines too) is `?`. */
export function sanitizeLine(text: string): string {
  return text.replace(CONTROLS, '?');
}

/** A block of lines safe for a terminal: as sanitizeLine, but newlines and tabs stay. */
function sanitizeBlock(text: string): string {
  return text.replace(CONTROLS_BUT_NEWLINE, '?');
}

/** What every human-facing line goes through: URL passwords masked, controls replaced. */
export function cleanLine(text: string): string {
  return sanitizeLine(redactUrls(text));
}

/** cleanLine for multi-line output (a command's whole stdout). */
export function cleanBlock(text: string): string {
  return sanitizeBlock(redactUrls(text));
}

/**
 * `abcd…wxyz (N chars)`: how a token is ever shown to a person. Each end shows at most an
 * eighth of the value (and at most 4 characters), so never more than a quarter of it is
 * shown; a value under 8 characters shows none.
 */
export function redactToken(token: string): string {
  const shown = Math.min(4, Math.floor(token.length / 8));
  if (shown === 0) return `… (${token.length} chars)`;
  return `${token.slice(0, shown)}…${token.slice(-shown)} (${token.length} chars)`;
}
