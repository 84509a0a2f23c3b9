/**
 * The fleet simulation at CI size (scripts/fleet-sim.mjs; the full size is in docs/performance.md):
 * 100 laptops × 4 Claude Code sessions, TTL 300 s, two virtual hours after a mass start, with the
 * cache policy that ships, against the counting server.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/run.js';

interface SimResult {
  options: { ttlMs: number };
  stats: {
    calls: number;
    served: number;
    fetched: number;
    refreshAhead: number;
    stale: number;
    errors: number;
    tooShort: number;
    refusedShortLived: number;
  };
  upstream: { succeeded: number; failed: number };
  steadyRatio: number;
  cycles: { cycle: number; peakToMean: number }[];
  minGapPerLaptopMs: number;
  outage?: { attemptsPerLaptopMax: number; backoffStepsThatFit: number; callsFailed: number };
  oidc?: { refused: number; presented: number; presentedTwice: number; rotated: number };
}

function sim(args: string[]): SimResult {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kb-fleet-')), 'result.json');
  execFileSync(
    process.execPath,
    // The first occurrence of an option wins: a test's own --laptops and --hours come first.
    [path.join(ROOT, 'scripts', 'fleet-sim.mjs'), ...args, '--laptops', '100', '--hours', '2', '--json', out],
    { cwd: ROOT, stdio: 'pipe' },
  );
  const r = JSON.parse(fs.readFileSync(out, 'utf8')) as SimResult;
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return r;
}

describe('fleet simulation (CI size)', () => {
  it('after a mass start the upstream sees at most 1.05 × users / TTL, one laptop never faster than 3/4 TTL', () => {
    const r = sim([]);
    // Every fetch the laptops made reached the counting server, and nothing else did.
    expect(r.upstream.succeeded).toBe(r.stats.fetched + r.stats.refreshAhead);
    expect(r.stats.calls).toBe(r.stats.served + r.stats.fetched + r.stats.refreshAhead);
    expect(r.steadyRatio).toBeLessThanOrEqual(1.05);
    expect(r.minGapPerLaptopMs).toBeGreaterThanOrEqual(0.75 * r.options.ttlMs);
    // The 9:00 burst fades: within two hours the busiest 10-s bucket is back near the level a
    // uniform fleet shows by chance (about 2× the mean at this size).
    expect(r.cycles[0]!.peakToMean).toBeGreaterThan(5);
    expect(r.cycles.at(-1)!.peakToMean).toBeLessThan(3.5);
  });

  it('during a 15-minute outage each laptop tries at most once per backoff step and every call is still answered', () => {
    const r = sim(['--outage-at-min', '60', '--outage-min', '15']);
    expect(r.upstream.failed).toBeGreaterThan(0);
    expect(r.outage!.attemptsPerLaptopMax).toBeLessThanOrEqual(r.outage!.backoffStepsThatFit);
    expect(r.outage!.callsFailed).toBe(0);
    expect(r.stats.errors).toBe(0);
  });
});

describe('fleet simulation with an OpenID provider as the upstream (CI size)', () => {
  it('ID tokens living 1 h: one refresh grant per user per usable life, each presenting the newest refresh token', () => {
    const r = sim(['--upstream', 'oidc']);
    expect(r.upstream.succeeded).toBe(r.stats.fetched + r.stats.refreshAhead);
    expect(r.oidc).toEqual({
      refused: 0,
      presented: r.upstream.succeeded,
      presentedTwice: 0,
      rotated: r.upstream.succeeded,
    });
    expect(r.stats.tooShort).toBe(0);
    expect(r.steadyRatio).toBeLessThanOrEqual(1.05);
    // A 1-h token is usable for 1 h - (TTL + margin): renewals are that far apart, not a TTL.
    expect(r.minGapPerLaptopMs).toBeGreaterThanOrEqual(0.75 * (3600_000 - 420_000));
  });

  it('ID tokens living less than TTL + margin: no call prints anything, and the provider is asked once per token lifetime, not on every call', () => {
    const r = sim(['--upstream', 'oidc', '--lifetime-s', '300', '--laptops', '5', '--hours', '1']);
    expect(r.stats.calls).toBeGreaterThan(0);
    expect(r.stats.errors).toBe(r.stats.calls);
    expect(r.stats.tooShort + r.stats.refusedShortLived).toBe(r.stats.calls);
    expect(r.upstream.succeeded).toBe(r.stats.tooShort);
    // The kept token answers every call until it expires: one grant per laptop per 300 s.
    expect(r.minGapPerLaptopMs).toBeGreaterThanOrEqual(300_000);
    expect(r.upstream.succeeded).toBeLessThanOrEqual(5 * (3600 / 300));
    expect(r.oidc!.presentedTwice).toBe(0);
  });
});
