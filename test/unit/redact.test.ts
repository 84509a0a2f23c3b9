/**
 * The one redaction and sanitizer (src/output/redact.ts, contract §7): URL passwords,
 * control and escape characters, and how much of a token a person ever sees.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cleanBlock,
  cleanLine,
  redactToken,
  redactUrl,
  redactUrls,
  sanitizeLine,
} from '../../src/output/redact.js';

describe('finding 8: one redaction for URL passwords', () => {
  it('masks the password of a Vault address, a proxy URL and an endpoint, keeping the user', () => {
    expect(redactUrl('https://user:pass@host')).toBe('https://user:***@host');
    expect(redactUrl('https://ops:s3cret@127.0.0.1:8200/v1')).toBe('https://ops:***@127.0.0.1:8200/v1');
    expect(redactUrl('http://proxyuser:pr0xy%40pw@proxy.corp:3128')).toBe(
      'http://proxyuser:***@proxy.corp:3128',
    );
    expect(redactUrl('socks5://u:p@10.0.0.1:1080')).toBe('socks5://u:***@10.0.0.1:1080');
  });

  it('takes a raw @ inside the password as URL parsers do (up to the last @ of the authority)', () => {
    expect(redactUrl('https://alice:p@ss@vault.corp/x@y')).toBe('https://alice:***@vault.corp/x@y');
    expect(new URL('https://alice:p@ss@vault.corp/x@y').host).toBe('vault.corp');
  });

  it('masks every URL in a line of prose or JSON, and nothing else', () => {
    expect(redactUrls('vault at https://a:b@h1: refused; proxy http://c:d@h2:3128 (check it)')).toBe(
      'vault at https://a:***@h1: refused; proxy http://c:***@h2:3128 (check it)',
    );
    expect(redactUrls('{"address":"https://a:b@h","user":"x:y@z"}')).toBe(
      '{"address":"https://a:***@h","user":"x:y@z"}',
    );
    expect(redactUrls('https://host/path?user=a:b@c')).toBe('https://host/path?user=a:b@c');
    expect(redactUrls('https://token@host and mail me at a:b@c')).toBe(
      'https://token@host and mail me at a:b@c',
    );
  });

  it('a password never survives, whatever it holds', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/),
        fc.stringMatching(/^[A-Za-z0-9._~!$&()*+,;=%:@-]{4,24}$/),
        fc.constantFrom('https', 'http', 'socks5'),
        (user, password, scheme) => {
          const shown = redactUrls(`at ${scheme}://${user}:${password}@host.example:8200/v1 failed`);
          expect(shown).toBe(`at ${scheme}://${user}:***@host.example:8200/v1 failed`);
        },
      ),
    );
  });
});

describe('finding 9: server text is sanitized, tokens shown at most a quarter', () => {
  const hostile = '\x1b]0;pwned\x07\x1b[31m1.18.0\x1b[0m\r\n[ok  ] forged\u202e\x9b2J';

  it('replaces every control and escape character (newlines too) in one line', () => {
    expect(sanitizeLine(hostile)).toBe('?]0;pwned??[31m1.18.0?[0m??[ok  ] forged??2J');
    expect(sanitizeLine('plain text, ünïcode stays')).toBe('plain text, ünïcode stays');
  });

  it('a block keeps its newlines and tabs but no other control', () => {
    expect(cleanBlock('a\tb\nc\x1b[2Jd https://u:p@h\n')).toBe('a\tb\nc?[2Jd https://u:***@h\n');
    expect(cleanLine('x\ny https://u:p@h')).toBe('x?y https://u:***@h');
  });

  it('doctor --probe shows at most 1/8 of each end: a 13-character secret shows 2 of 13', () => {
    expect(redactToken('abcdefghijklm')).toBe('a…m (13 chars)');
    expect(redactToken('sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz')).toBe('sk-a…wxyz (49 chars)');
    expect(redactToken('short')).toBe('… (5 chars)');
    expect(redactToken('')).toBe('… (0 chars)');
  });

  it('never shows more than a quarter of any value', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 0, maxLength: 300 }), (value) => {
        const shown = redactToken(value);
        const m = /^(.*)…(.*) \((\d+) chars\)$/s.exec(shown);
        expect(m).not.toBeNull();
        const [, head = '', tail = '', n] = m!;
        expect(Number(n)).toBe(value.length);
        expect(head.length + tail.length).toBeLessThanOrEqual(value.length / 4);
        expect(value.startsWith(head) && value.endsWith(tail)).toBe(true);
      }),
    );
  });
});
