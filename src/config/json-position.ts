/**
 * Where JSON text stops being valid, as line and column, and what was expected there: for
 * config errors that point at the spot without quoting the text (Node's own message does, and
 * a config may hold a secret). Stage 1 imports this through config/load.ts: it imports nothing.
 */

/** Line and column (from 1) of the first invalid character, and what was expected there. */
export function jsonErrorPosition(text: string): { line: number; column: number; expected: string } {
  const { offset, expected } = locateJsonError(text);
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1, expected };
}

/**
 * Finds where JSON text stops being valid, and what was expected there. Only runs after
 * JSON.parse has failed.
 */
export function locateJsonError(s: string): { offset: number; expected: string } {
  let i = 0;
  const n = s.length;
  class Stop {
    constructor(readonly expected: string) {}
  }
  const fail = (expected: string): never => {
    throw new Stop(i >= n ? `unexpected end of file, expected ${expected}` : `expected ${expected}`);
  };
  const ws = () => {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const HEX4 = /[0-9a-fA-F]{4}/y;
  const str = () => {
    i++; // opening quote
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c === 92) {
        const e = s[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u') {
          HEX4.lastIndex = i + 2;
          if (!HEX4.test(s)) {
            i += 2;
            fail('4 hex digits after \\u');
          }
          i += 6;
        } else {
          i++;
          fail('a valid escape after \\');
        }
        continue;
      }
      if (c < 32) fail('a closing quote (control characters must be escaped)');
      i++;
    }
    fail('a closing quote');
  };
  /** An object's or an array's members after its opening character, up to `close`. */
  const members = (close: '}' | ']', member: () => void): void => {
    i++;
    ws();
    if (s[i] === close) {
      i++;
      return;
    }
    for (;;) {
      member();
      ws();
      if (s[i] === ',') {
        i++;
        continue;
      }
      if (s[i] === close) {
        i++;
        return;
      }
      fail(`',' or '${close}'`);
    }
  };
  const property = (): void => {
    ws();
    if (s[i] !== '"') fail('a property name in double quotes');
    str();
    ws();
    if (s[i] !== ':') fail("':'");
    i++;
    value();
  };
  const value = (): void => {
    ws();
    const c = s[i];
    if (c === '{') {
      members('}', property);
      return;
    }
    if (c === '[') {
      members(']', value);
      return;
    }
    if (c === '"') {
      str();
      return;
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      if (!NUMBER.test(s)) fail('a number');
      i = NUMBER.lastIndex;
      return;
    }
    for (const lit of ['true', 'false', 'null']) {
      if (s.startsWith(lit, i)) {
        i += lit.length;
        return;
      }
    }
    fail('a value');
  };
  try {
    value();
    ws();
    if (i < n) fail('the end of the file after the top-level value');
    return { offset: i, expected: 'unknown syntax error' };
  } catch (e) {
    if (e instanceof Stop) return { offset: i, expected: e.expected };
    // Nesting too deep for this scanner: no position, but still no quoted content.
    return { offset: 0, expected: 'nesting too deep' };
  }
}
