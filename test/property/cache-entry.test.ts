/**
 * Property tests for the cache entry parser (src/cache/entry.ts): whatever bytes sit in a
 * cache file (truncated writes, another version's format, a tampered file), parseEntry
 * answers undefined or an entry that is valid in every field; it never throws. The first
 * stage prints an accepted entry's token as is, so "valid" includes the token rule of
 * contract §1 (one printable-ASCII token of at most 16,384 characters).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseEntry } from '../../src/cache/entry.js';
import type { CacheEntry } from '../../src/cache/types.js';

const KEY = 'default-0123456789abcdef';
const NUM_RUNS = 10_000;

const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
/** A time the broker can print: new Date(t).toISOString() throws beyond ±8.64e15 ms. */
const isTime = (v: unknown) => finite(v) && Math.abs(v as number) <= 8.64e15;
const TOKEN_RULE = /^[\x21-\x7e]{1,16384}$/;

/**
 * An independent statement of what a usable entry is (src/cache/types.ts and contract §1).
 * A plain predicate, not expect(): it runs 10,000 times per property.
 */
function isValidEntry(e: CacheEntry, key: string): boolean {
  const optionalTimes = [e.expiresAtMs, e.forcedAtMs, e.backoffUntilMs];
  return (
    e.v === 1 &&
    e.key === key &&
    typeof e.profile === 'string' &&
    typeof e.source === 'string' &&
    typeof e.token === 'string' &&
    TOKEN_RULE.test(e.token) &&
    isTime(e.fetchedAtMs) &&
    optionalTimes.every((n) => n === undefined || isTime(n)) &&
    (e.failures === undefined || finite(e.failures)) &&
    (e.jti === undefined || typeof e.jti === 'string') &&
    (e.meta === undefined ||
      (typeof e.meta === 'object' &&
        e.meta !== null &&
        !Array.isArray(e.meta) &&
        Object.values(e.meta).every((v) => ['string', 'number', 'boolean'].includes(typeof v))))
  );
}

/** parseEntry never throws (fast-check reports a throw as a failure) and accepts only valid entries. */
function check(text: string, key = KEY): boolean {
  const parsed = parseEntry(text, key);
  return parsed === undefined || isValidEntry(parsed, key);
}

const tokenArb = fc.stringMatching(/^[\x21-\x7e]{1,80}$/);
const validEntryArb: fc.Arbitrary<CacheEntry> = fc.record(
  {
    v: fc.constant(1 as const),
    key: fc.constant(KEY),
    profile: fc.constant('default'),
    source: fc.constantFrom('jwt', 'vault', 'vault-identity', 'aws-secrets-manager', 'keychain'),
    token: tokenArb,
    fetchedAtMs: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    expiresAtMs: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    jti: fc.stringMatching(/^[0-9a-f]{32}$/),
    meta: fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()),
      { maxKeys: 3 },
    ),
    forcedAtMs: fc.integer({ min: 0 }),
    backoffUntilMs: fc.integer({ min: 0 }),
    failures: fc.nat(20),
  },
  { requiredKeys: ['v', 'key', 'profile', 'source', 'token', 'fetchedAtMs'] },
);

/** A value of any JSON type, including the odd ones (-0, huge numbers, "__proto__" keys). */
const anyJson = fc.jsonValue({ maxDepth: 3 });
const FIELDS = [
  'v',
  'key',
  'profile',
  'source',
  'token',
  'fetchedAtMs',
  'expiresAtMs',
  'jti',
  'meta',
  'forcedAtMs',
  'backoffUntilMs',
  'failures',
  '__proto__',
  'constructor',
] as const;

/** A valid entry with one field replaced, removed or added with any JSON value. */
const mutatedEntryText = fc
  .tuple(
    validEntryArb,
    fc.constantFrom(...FIELDS),
    fc.oneof(
      anyJson,
      fc.constant(undefined),
      fc.string(),
      fc.constantFrom(
        1e300,
        -1e300,
        8.64e15 + 1,
        '',
        ' ',
        'a b',
        'tok\nen',
        '\u00e9t\u00e9',
        'x'.repeat(16_385),
        '\x00',
        '\x7f',
      ),
    ),
  )
  .map(([entry, field, value]) => {
    const o: Record<string, unknown> = { ...entry };
    if (value === undefined) delete o[field];
    else Object.defineProperty(o, field, { value, enumerable: true, configurable: true, writable: true });
    return JSON.stringify(o);
  });

/** A valid entry's text cut short or with bytes flipped, as after a torn write. */
const damagedEntryText = fc
  .tuple(validEntryArb, fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffff }))
  .map(([entry, cut, at, code]) => {
    const text = JSON.stringify(entry);
    const truncated = text.slice(0, cut % (text.length + 1));
    const i = at % (truncated.length + 1);
    return truncated.slice(0, i) + String.fromCharCode(code) + truncated.slice(i + 1);
  });

describe('parseEntry (cache entry parser)', () => {
  it('accepts every valid entry and gives it back unchanged', () => {
    fc.assert(
      fc.property(validEntryArb, (entry) => {
        const parsed = parseEntry(JSON.stringify(entry), KEY);
        return parsed !== undefined && JSON.stringify(parsed) === JSON.stringify(entry);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('never throws on random text and accepts only valid entries', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.json()), (text) => check(text)),
      { numRuns: NUM_RUNS },
    );
  });

  it('never throws on random bytes decoded as a file would be', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => check(Buffer.from(bytes).toString('utf8'))),
      { numRuns: NUM_RUNS },
    );
  });

  it('a valid entry with any one field changed is refused or still valid', () => {
    fc.assert(
      fc.property(mutatedEntryText, (text) => check(text)),
      { numRuns: NUM_RUNS },
    );
  });

  it('a torn or bit-flipped entry is refused or still valid', () => {
    fc.assert(
      fc.property(damagedEntryText, (text) => check(text)),
      { numRuns: NUM_RUNS },
    );
  });

  it('an entry written under another key is refused', () => {
    fc.assert(
      fc.property(validEntryArb, fc.string({ minLength: 1, maxLength: 40 }), (entry, other) => {
        fc.pre(other !== KEY);
        return parseEntry(JSON.stringify(entry), other) === undefined;
      }),
      { numRuns: NUM_RUNS },
    );
  });

  // Regressions found by the properties above: the first stage printed these tokens as is.
  it.each([
    ['a token holding a newline', 'tok\nen'],
    ['a token holding a space', 'tok en'],
    ['a token of only whitespace', '  '],
    ['a token that is not ASCII', 'jeton-\u00e9t\u00e9'],
    ['a token longer than 16,384 characters', 'x'.repeat(16_385)],
  ])('refuses %s', (_what, token) => {
    const text = JSON.stringify({ v: 1, key: KEY, profile: 'default', source: 'jwt', token, fetchedAtMs: 1 });
    expect(parseEntry(text, KEY)).toBeUndefined();
  });

  // Regression: the broker prints entry times with toISOString(), which threw (exit 1).
  it.each(['fetchedAtMs', 'expiresAtMs', 'backoffUntilMs', 'forcedAtMs'])(
    'refuses a %s beyond what a Date holds',
    (field) => {
      const entry = {
        v: 1,
        key: KEY,
        profile: 'default',
        source: 'jwt',
        token: 't0ken',
        fetchedAtMs: 1,
        [field]: 1e300,
      };
      expect(parseEntry(JSON.stringify(entry), KEY)).toBeUndefined();
    },
  );

  it('refuses meta values that are not string, number or boolean', () => {
    const text = JSON.stringify({
      v: 1,
      key: KEY,
      profile: 'default',
      source: 'vault',
      token: 't0ken',
      fetchedAtMs: 1,
      meta: { kvVersion: { nested: true } },
    });
    expect(parseEntry(text, KEY)).toBeUndefined();
  });
});
