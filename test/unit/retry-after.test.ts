/**
 * parseRetryAfter (src/sources/vault-adapter.ts): RFC 9110 §10.2.3 delay-seconds and
 * HTTP-dates into whole seconds from a fixed now, capped, and nothing for what is neither.
 */
import { describe, expect, it } from 'vitest';
import { RETRY_AFTER_MAX_SEC } from '../../src/cache/policy.js';
import { parseRetryAfter } from '../../src/sources/vault-adapter.js';

const NOW = Date.parse('2026-11-29T12:00:00.000Z');

describe('parseRetryAfter', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
    expect(parseRetryAfter(['7', '9'], NOW)).toBe(7);
  });

  it('reads the three HTTP-date forms as seconds from now, rounded up', () => {
    expect(parseRetryAfter('Sun, 29 Nov 2026 12:01:30 GMT', NOW)).toBe(90);
    expect(parseRetryAfter('Sunday, 29-Nov-26 12:01:30 GMT', NOW)).toBe(90);
    expect(parseRetryAfter('Sun Nov 29 12:01:30 2026', NOW)).toBe(90);
    expect(parseRetryAfter('Sun, 29 Nov 2026 12:00:00 GMT', NOW - 1)).toBe(1);
    expect(parseRetryAfter('Sun Nov  9 12:00:00 2026', Date.parse('2026-11-09T11:59:00Z'))).toBe(60);
  });

  it('a date in the past means no wait', () => {
    expect(parseRetryAfter('Sun, 29 Nov 2026 11:00:00 GMT', NOW)).toBe(0);
  });

  it(`caps the wait at ${RETRY_AFTER_MAX_SEC} s`, () => {
    expect(parseRetryAfter('999999999999', NOW)).toBe(RETRY_AFTER_MAX_SEC);
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', NOW)).toBe(RETRY_AFTER_MAX_SEC);
  });

  it('ignores what is neither', () => {
    for (const v of [
      undefined,
      null,
      12,
      '',
      '-5',
      '1.5',
      '2 minutes',
      'soon',
      '2026-11-29T12:01:30Z',
      'Sun, 99 Foo 2026 GMT',
    ]) {
      expect(parseRetryAfter(v, NOW)).toBeUndefined();
    }
  });
});
