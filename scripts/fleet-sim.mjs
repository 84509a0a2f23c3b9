#!/usr/bin/env node
// Fleet simulation: N laptops × S Claude Code sessions with TTL T against a counting local
// upstream, in virtual time, with the cache policy that ships (src/cache/policy.ts, bundled on
// the fly). Reports upstream requests per second against users / T, the burstiness after a mass
// start (everyone at 9:00), and with --outage how often a dead upstream is asked.
//
//   node scripts/fleet-sim.mjs [--laptops 1000] [--sessions 4] [--ttl-s 300] [--hours 4]
//     [--request-mean-s 30] [--start-spread-s 60] [--kind stored|expiring] [--lifetime-s 3600]
//     [--outage-at-min M --outage-min D] [--bucket-s 10] [--seed 1]
//     [--variant NAME] [--policy other-policy.ts] [--json out.json] [--svg docs/fleet-sim.svg]
//     [--upstream counting|oidc]
//
// --upstream oidc: the upstream is an OpenID provider's token endpoint (oidc-provider, refresh-
// token rotation with reuse detection; scripts/fleet-sim/oidc-upstream.mjs). Each laptop is one
// user with one login; a fetch is a refresh_token grant, and the printed ID token lives
// --lifetime-s by the provider's exp (a token that cannot stay valid for TTL + margin is not
// printed, as keybroker refuses it). Reports the grants, refresh tokens presented twice (goal 0)
// and grants refused.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { maxOf, minOf } from './fleet-sim/extremes.mjs';
import { startOidcUpstream } from './fleet-sim/oidc-upstream.mjs';
import { loadPolicy } from './fleet-sim/policy.mjs';
import { startCountingServer } from './fleet-sim/server.mjs';
import { analyse, simulate } from './fleet-sim/simulate.mjs';
import { lineChart } from './fleet-sim/svg.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const num = (name, dflt) => Number(opt(name, String(dflt)));

export async function run(o) {
  const policy = await loadPolicy(o.policyFile, o.variant);
  const outageFromMs = o.outageAtMs ?? Number.POSITIVE_INFINITY;
  const outageUntilMs = o.outageAtMs !== undefined ? o.outageAtMs + o.outageMs : Number.NEGATIVE_INFINITY;
  const server =
    o.upstream === 'oidc'
      ? await startOidcUpstream({ outageFromMs, outageUntilMs, lifetimeSec: o.lifetimeMs / 1000 })
      : await startCountingServer({ outageFromMs, outageUntilMs });
  const started = performance.now();
  try {
    const { stats, laptops, recovery } = await simulate(policy, server, o);
    const a = analyse(server.times, o);
    const result = {
      options: o,
      stats,
      upstream: { succeeded: server.times.length, failed: server.failures.length },
      ...(server.report ? { oidc: { ...server.report } } : {}),
      usersPerTtlPerS: a.usersPerTtlPerS,
      overallRatePerS: a.overallRatePerS,
      steadyRatePerS: a.steadyRatePerS,
      steadyRatio: a.steadyRatio,
      expectedPerBucket: a.expectedPerBucket,
      cycles: a.cycles,
      buckets: a.buckets,
      // The shortest time between two upstream requests of one laptop: the policy's own pace.
      minGapPerLaptopMs: minOf(
        laptops.map((l) => minOf(l.attempts.slice(1).map((t, i) => t - l.attempts[i]))),
      ),
      wallMs: Math.round(performance.now() - started),
    };
    if (o.outageAtMs !== undefined) {
      // Attempts each laptop made while the upstream was dead, against the backoff steps that fit.
      const per = laptops.map((l) => l.attempts.filter((t) => t >= outageFromMs && t < outageUntilMs).length);
      result.outage = {
        attemptsPerLaptopMax: maxOf(per),
        attemptsPerLaptopMean: per.reduce((x, y) => x + y, 0) / per.length,
        // While a cached token is printed instead, and while nothing is.
        backoffStepsThatFit: backoffSteps(policy, policy.BACKOFF.withToken, o.outageMs),
        backoffStepsThatFitWithoutToken: backoffSteps(policy, policy.BACKOFF.withoutToken, o.outageMs),
        callsServedStale: stats.stale,
        callsFailed: stats.errors,
        // Once the upstream is back: its busiest bucket against the steady rate before the
        // outage, and how long laptops still went without a token.
        recoveryPeakToSteady: a.recovery.peakToSteady,
        recoveryPeakPerBucket: a.recovery.peakPerBucket,
        recoveryPeakAfterMs: a.recovery.peakAtMs,
        lastFailedCallAfterMs:
          recovery.lastFailedCallMs === undefined ? 0 : recovery.lastFailedCallMs - outageUntilMs,
      };
    }
    return result;
  } finally {
    await server.close();
  }
}

/**
 * How many attempts a dead upstream can see from one laptop in `ms` if every step is honoured
 * (shortest jitter), on one ladder of steps.
 */
function backoffSteps(policy, ladder, ms) {
  let t = 0;
  let n = 1; // the attempt that discovers the outage
  for (let f = 1; ; f++) {
    t += policy.backoffStepMs(ladder, f, 0);
    if (t >= ms) return n;
    n++;
  }
}

export function options(overrides = {}) {
  const ttlS = num('ttl-s', 300);
  const o = {
    laptops: num('laptops', 1000),
    sessions: num('sessions', 4),
    ttlMs: ttlS * 1000,
    marginMs: num('margin-s', 120) * 1000,
    staleIfErrorMs: num('stale-if-error-s', 3600) * 1000,
    minRefreshIntervalMs: 10_000,
    durationMs: num('hours', 4) * 3_600_000,
    requestMeanMs: num('request-mean-s', 30) * 1000,
    startSpreadMs: num('start-spread-s', 60) * 1000,
    kind: opt('kind', 'stored'),
    upstream: opt('upstream', 'counting'),
    lifetimeMs: num('lifetime-s', 3600) * 1000,
    bucketMs: num('bucket-s', 10) * 1000,
    seed: num('seed', 1),
    ...(opt('policy') ? { policyFile: opt('policy') } : {}),
    ...(opt('variant') ? { variant: opt('variant') } : {}),
    ...(opt('outage-at-min') !== undefined
      ? { outageAtMs: num('outage-at-min', 60) * 60_000, outageMs: num('outage-min', 15) * 60_000 }
      : {}),
    ...overrides,
  };
  return o;
}

export function summary(r) {
  const o = r.options;
  const c = r.cycles;
  const pick = (i) => (c[i] ? c[i].peakToMean.toFixed(2) : '-');
  const what =
    o.upstream === 'oidc'
      ? `oidc token endpoint (ID token lifetime ${o.lifetimeMs / 1000} s, TTL + margin ${(o.ttlMs + o.marginMs) / 1000} s)`
      : `${o.kind} secret`;
  const lines = [
    `fleet (${o.variant ? `proposal ${o.variant}` : 'shipped policy'}): ${o.laptops} laptops × ${o.sessions} sessions, TTL ${o.ttlMs / 1000} s, ${what}, ${o.durationMs / 3_600_000} h, start spread ${o.startSpreadMs / 1000} s, API request every ${o.requestMeanMs / 1000} s on average`,
    `  users / TTL: ${r.usersPerTtlPerS.toFixed(3)} req/s | upstream steady state (all sessions running, after 2 TTLs${r.options.outageAtMs !== undefined ? ', outside the outage' : ''}): ${r.steadyRatePerS.toFixed(3)} req/s = ${r.steadyRatio.toFixed(3)} × users / TTL (goal <= 1.05)`,
    `  helper calls ${r.stats.calls}: served from cache ${r.stats.served}, fetched ${r.stats.fetched}, refreshed ahead ${r.stats.refreshAhead}, stale ${r.stats.stale}, failed ${r.stats.errors} (${r.stats.heldOff} at once)`,
    `  burstiness (peak / mean of ${o.bucketMs / 1000}-s buckets per TTL-long cycle): cycle 0 ${pick(0)}, 1 ${pick(1)}, 2 ${pick(2)}, after 1 h ${pick(Math.round(3_600_000 / o.ttlMs))}, last ${pick(c.length - 1)}`,
  ];
  if (r.stats.tooShort > 0) {
    lines.push(
      `  tokens living less than TTL + margin (exit 2 ERR_TOKEN_LIFETIME_TOO_SHORT): fetched and refused on ${r.stats.tooShort} calls, refused at once from the kept token on ${r.stats.refusedShortLived} (of ${r.stats.calls} calls)`,
    );
  }
  if (r.oidc) {
    lines.push(
      `  token endpoint: ${r.upstream.succeeded} refresh grants, ${r.oidc.rotated} rotated the refresh token, ${r.oidc.refused} refused; refresh tokens presented ${r.oidc.presented}, presented twice ${r.oidc.presentedTwice} (goal 0)`,
    );
  }
  if (r.outage) {
    lines.push(
      `  outage ${o.outageMs / 60_000} min: attempts per laptop max ${r.outage.attemptsPerLaptopMax}, mean ${r.outage.attemptsPerLaptopMean.toFixed(2)} (goal <= 60; backoff steps that fit: ${r.outage.backoffStepsThatFit} with a cached token, ${r.outage.backoffStepsThatFitWithoutToken} without); calls served stale ${r.outage.callsServedStale}, failed ${r.outage.callsFailed} (${r.stats.heldOff} at once, without asking)`,
      `  recovery: peak ${r.outage.recoveryPeakPerBucket} requests in a ${o.bucketMs / 1000}-s bucket ${(r.outage.recoveryPeakAfterMs / 1000).toFixed(0)} s after the upstream is back = ${r.outage.recoveryPeakToSteady.toFixed(2)} × the steady rate (goal <= 5); last call failed ${(r.outage.lastFailedCallAfterMs / 1000).toFixed(1)} s after (goal <= 60)`,
    );
  }
  lines.push(
    `  shortest gap between two requests of one laptop: ${(r.minGapPerLaptopMs / 1000).toFixed(1)} s (${(r.minGapPerLaptopMs / o.ttlMs).toFixed(2)} × TTL)`,
  );
  lines.push(
    `  simulated in ${(r.wallMs / 1000).toFixed(1)} s against ${o.upstream === 'oidc' ? 'oidc-provider' : 'the counting server'}`,
  );
  return lines.join('\n');
}

/** The chart averages the buckets over one minute, so that it stays small and readable. */
export function chart(r, extra = []) {
  const o = r.options;
  const per = Math.max(1, Math.round(60_000 / o.bucketMs));
  const toSeries = (res, label, color) => {
    const points = [];
    for (let i = 0; i + per <= res.buckets.length; i += per) {
      const n = res.buckets.slice(i, i + per).reduce((a, b) => a + b, 0);
      points.push([(i * o.bucketMs) / 60_000, n / ((per * o.bucketMs) / 1000)]);
    }
    return { label, color, points };
  };
  return lineChart({
    title: `Upstream requests per second: ${o.laptops} laptops × ${o.sessions} Claude Code sessions, TTL ${o.ttlMs / 1000} s`,
    subtitle: `everyone starts at 9:00 (within ${o.startSpreadMs / 1000} s); one-minute averages; steady state ${r.steadyRatio.toFixed(3)} × users / TTL; node scripts/fleet-sim.mjs${o.outageAtMs !== undefined ? ` --outage-at-min ${o.outageAtMs / 60_000} --outage-min ${o.outageMs / 60_000}` : ''} --svg docs/fleet-sim.svg`,
    xLabel: 'minutes after 9:00',
    yLabel: 'upstream requests / s',
    series: [
      toSeries(r, 'shipped policy', '#1f6feb'),
      ...extra.map((e) => toSeries(e.result, e.label, e.color)),
    ],
    refs: [
      { y: r.usersPerTtlPerS, label: 'users / TTL', color: '#2da44e' },
      { y: 1.05 * r.usersPerTtlPerS, label: '1.05 × users / TTL (goal)', color: '#cf222e' },
    ],
    ...(r.outage
      ? {
          spans: [
            {
              from: o.outageAtMs / 60_000,
              to: (o.outageAtMs + o.outageMs) / 60_000,
              label: `outage: at most ${r.outage.attemptsPerLaptopMax} attempts per laptop`,
            },
          ],
          notes: [
            {
              x: (o.outageAtMs + o.outageMs + r.outage.recoveryPeakAfterMs) / 60_000,
              y: r.outage.recoveryPeakPerBucket / (o.bucketMs / 1000),
              label: `recovery peak (${o.bucketMs / 1000}-s bucket): ${r.outage.recoveryPeakToSteady.toFixed(2)} × steady`,
              color: '#8250df',
            },
          ],
        }
      : {}),
  });
}

const isMain =
  process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (isMain && args.includes('--help')) {
  const usage = fs.readFileSync(new URL(import.meta.url), 'utf8').split('\nimport ')[0];
  process.stdout.write(`${usage.replace(/^#!.*\n/, '').replace(/^\/\/ ?/gm, '')}\n`);
} else if (isMain) {
  const o = options();
  const r = await run(o);
  process.stdout.write(`${summary(r)}\n`);
  const json = opt('json');
  if (json) fs.writeFileSync(json, `${JSON.stringify({ ...r, buckets: undefined }, null, 2)}\n`);
  const svg = opt('svg');
  if (svg) {
    fs.writeFileSync(svg, chart(r));
    process.stdout.write(`  wrote ${svg}\n`);
  }
}
