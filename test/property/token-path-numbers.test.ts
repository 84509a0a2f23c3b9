/**
 * A property over the whole token path (contract §1, §2): whatever numbers the config and
 * CLAUDE_CODE_API_KEY_HELPER_TTL_MS hold — 0, 1, 2^31 - 1, 2^53 - 1, a hundred years, random
 * ones — dist/keybroker run twice (a miss, then what the cache makes of it) prints a token
 * and only the warnings numbers can cause, one line each (exit 0), or nothing on stdout and one
 * error line with exit 2
 * (or 3, when timeoutMs is too short to do anything); never an internal error (exit 1) or a
 * stack trace.
 *
 * Each case runs the built executable twice through /bin/sh, so this runs 25 cases, not
 * 10,000.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtConfig, writeJwtKey } from '../helpers/jwt-profile.js';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';

const RUNS = 25;
const TOKEN_LINE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/;

/** The warnings numbers can cause: a malformed TTL variable, and the lifetime cap (contract §3). */
const isKnownWarning = (line: string) =>
  /^keybroker: warning: (CLAUDE_CODE_API_KEY_HELPER_TTL_MS=.* is not a positive integer|.* is above (what )?the lifetime cap( allows)? \(maxLifetimeSec \d+\)); using .*$/.test(
    line,
  );

const extreme = fc.oneof(
  fc.constantFrom(0, 1, 59, 2 ** 31 - 1, 2 ** 53 - 1, 3_153_600_000, 3_153_600_000_000, 1e15),
  fc.integer({ min: 0, max: 2 ** 40 }),
);

/** Most keys unset, so that runs that succeed are as common as runs that fail. */
const sometimes = fc.oneof(
  { weight: 5, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: extreme },
);

const none = {
  ttlMs: undefined,
  timeoutMs: undefined,
  lifetimeSec: undefined,
  notBeforeSkewSec: undefined,
  refreshMarginMs: undefined,
  staleIfErrorMs: undefined,
  minRefreshIntervalMs: undefined,
};

let sb: Sandbox;
let keyFile: string;
beforeAll(() => {
  sb = makeSandbox();
  keyFile = writeJwtKey(sb);
});
afterAll(() => sb.cleanup());

describe('token path with extreme numbers', () => {
  it('prints a token (exit 0) or fails with exit 2 or 3 and one line, never exit 1', {
    timeout: 600_000,
  }, async () => {
    const seen = new Set<number | null>();
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          ttlMs: sometimes,
          timeoutMs: sometimes,
          lifetimeSec: sometimes,
          notBeforeSkewSec: sometimes,
          refreshMarginMs: sometimes,
          staleIfErrorMs: sometimes,
          minRefreshIntervalMs: sometimes,
        }),
        fc.option(fc.oneof(extreme.map(String), fc.constantFrom('999999999999999', '-1', '1e3', '')), {
          nil: undefined,
        }),
        async (n, envTtl) => {
          const { ttlMs, timeoutMs, lifetimeSec, notBeforeSkewSec, ...rest } = n;
          const cache = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
          const source: Record<string, unknown> = {};
          if (lifetimeSec !== undefined) source.lifetimeSec = lifetimeSec;
          if (notBeforeSkewSec !== undefined) source.notBeforeSkewSec = notBeforeSkewSec;
          const profile: Record<string, unknown> = {};
          if (ttlMs !== undefined) profile.ttlMs = ttlMs;
          if (timeoutMs !== undefined) profile.timeoutMs = timeoutMs;
          sb.writeConfig({ ...jwtConfig(keyFile, source, profile), cache });
          const env = envTtl === undefined ? {} : { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: envTtl };
          for (const args of [['--refresh'], []]) {
            const r = await runKeybroker(args, sb, { env });
            seen.add(r.code);
            const lines = r.stderr.split('\n').filter(Boolean);
            if (r.code === 0) {
              // At most one warning per thing the config or environment got wrong: the malformed
              // TTL variable, and a TTL or lifetime above the managed lifetime cap.
              if (!TOKEN_LINE.test(r.stdout) || lines.length > 3) return false;
              if (!lines.every(isKnownWarning)) return false;
            } else {
              // 3: a timeoutMs of a few ms ends the run before the key is read (ERR_TIMEOUT).
              if (r.code !== 2 && r.code !== 3) return false;
              // One error line, after at most one warning (a malformed TTL variable).
              const error = lines.at(-1) ?? '';
              const warnings = lines.slice(0, -1);
              if (r.stdout !== '' || warnings.length > 3) return false;
              if (!warnings.every(isKnownWarning)) return false;
              if (!/^keybroker: [\x20-\x7e]+$/.test(error) || error.startsWith('keybroker: warning:'))
                return false;
            }
          }
          return true;
        },
      ),
      {
        numRuns: RUNS,
        // The defaults (a token), then regressions: each made an expiry past what a Date holds,
        // a RangeError and exit 1.
        examples: [
          [none, undefined],
          [{ ...none, ttlMs: 2 ** 53 - 1 }, undefined],
          [{ ...none, refreshMarginMs: 2 ** 53 - 1 }, undefined],
          [{ ...none, lifetimeSec: 9e12 }, undefined],
          // Two warnings at once: a malformed TTL variable and a TTL above the lifetime cap.
          [{ ...none, ttlMs: 43_140_001 }, '1e3'],
        ],
      },
    );
    expect([...seen]).toContain(0);
    expect([...seen]).toContain(2);
  });
});
