// The fleet in virtual time: N laptops (one user, one cache each) × S Claude Code sessions.
// A session calls the helper when it starts and, after that, on its first API request once the
// TTL it was given has run out (contract §1: after the TTL the next request triggers the helper),
// with API requests arriving as a Poisson process. Each call runs the shipped cache policy
// (decide, gate, nextBackoff, staleUsable from src/cache/policy.ts) the way
// src/broker/broker.ts does; a fetch is a real HTTP request to the counting server, stamped with
// the virtual time.
import { maxOf } from './extremes.mjs';
import { prng } from './prng.mjs';

/** Binary min-heap of events ordered by time. */
class Heap {
  items = [];
  push(e) {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p].t <= a[i].t) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop() {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l].t < a[m].t) m = l;
        if (r < a.length && a[r].t < a[m].t) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
  get size() {
    return this.items.length;
  }
}

/**
 * options: laptops, sessions, ttlMs, marginMs, staleIfErrorMs, minRefreshIntervalMs, durationMs,
 * requestMeanMs (mean gap between a session's API requests), startSpreadMs, kind ('stored' |
 * 'expiring'), lifetimeMs (for 'expiring'), upstream ('counting' | 'oidc': the expiry then comes
 * from the provider's token), seed.
 */
export async function simulate(policy, server, o) {
  const rnd = prng(o.seed);
  const exp = (mean) => -Math.log(1 - rnd()) * mean;
  const params = { ttlMs: o.ttlMs, marginMs: o.marginMs, staleIfErrorMs: o.staleIfErrorMs };
  // `kept`: the backoff record kept beside the entry while there is none.
  const laptops = Array.from({ length: o.laptops }, () => ({
    entry: undefined,
    kept: undefined,
    attempts: [],
  }));
  const heap = new Heap();
  for (let l = 0; l < o.laptops; l++) {
    for (let s = 0; s < o.sessions; s++) heap.push({ t: rnd() * o.startSpreadMs, laptop: l });
  }
  const stats = {
    calls: 0,
    served: 0,
    fetched: 0,
    refreshAhead: 0,
    stale: 0,
    failed: 0,
    errors: 0,
    heldOff: 0,
    // Fetched, but living less than TTL + margin: not printed (exit 2, ERR_TOKEN_LIFETIME_TOO_SHORT).
    tooShort: 0,
    // The same error at once, from the kept short-lived token, without asking (policy tooShortLived).
    refusedShortLived: 0,
  };
  // After the outage: how long laptops still went without a token once the upstream was back.
  const backAtMs = o.outageAtMs !== undefined ? o.outageAtMs + o.outageMs : Number.POSITIVE_INFINITY;
  const recovery = { lastFailedCallMs: undefined };
  while (heap.size > 0) {
    const ev = heap.pop();
    if (ev.t >= o.durationMs) continue;
    stats.calls++;
    const lap = laptops[ev.laptop];
    const t = ev.t;
    const entry = lap.entry;
    const decision = policy.decide({
      entry,
      nowMs: t,
      params,
      minRefreshIntervalMs: o.minRefreshIntervalMs,
      served: undefined,
      entryFingerprint: undefined,
      invocationStartMs: t,
    });
    let printed = true;
    // The broker's order: a fresh entry is served; else the backoff gate; else the source.
    const record = entry ?? lap.kept;
    const g =
      decision.action === 'serve' || decision.action === 'refuse-short-lived'
        ? undefined
        : policy.gate({ decision: decision.action, entry, record, nowMs: t, params, refresh: false });
    if (decision.action === 'refuse-short-lived') {
      stats.refusedShortLived++;
      stats.errors++;
      printed = false;
    } else if (!g) {
      stats.served++;
    } else if (g.action === 'serve') {
      if (g.stale) stats.stale++;
      else stats.served++;
    } else if (g.action === 'fail') {
      stats.errors++;
      stats.heldOff++;
      printed = false;
    } else {
      lap.attempts.push(t);
      const res = await server.request(t, ev.laptop);
      // The token's own expiry: what the upstream said (an OIDC provider's exp), else the
      // configured lifetime of an expiring secret.
      const expiresAtMs = res.expiresAtMs ?? (o.kind === 'expiring' ? t + o.lifetimeMs : undefined);
      if (res.ok && !policy.livesLongEnough(expiresAtMs, t, params)) {
        stats.tooShort++;
        if (decision.action === 'refresh-ahead' && entry) {
          // The engine prints the cached token and backs off, as after a failed refresh.
          lap.entry = {
            ...entry,
            ...policy.nextBackoff({
              record: entry,
              nowMs: t,
              random: rnd(),
              servableUntilMs: policy.servableUntilMs(entry, params),
            }),
          };
        } else {
          // A configuration error (exit 2); the token is kept, marked, so that the next calls
          // fail at once until it expires instead of asking again.
          stats.errors++;
          printed = false;
          lap.kept = undefined;
          lap.entry = {
            v: 1,
            key: 'sim',
            profile: 'default',
            source: o.upstream === 'oidc' ? 'oidc' : 'vault-identity',
            token: res.token,
            fetchedAtMs: t,
            expiresAtMs,
            shortLivedFromMs: t,
          };
        }
      } else if (res.ok) {
        if (decision.action === 'refresh-ahead') stats.refreshAhead++;
        else stats.fetched++;
        lap.kept = undefined;
        lap.entry = {
          v: 1,
          key: 'sim',
          profile: 'default',
          source: o.upstream === 'oidc' ? 'oidc' : o.kind === 'expiring' ? 'vault-identity' : 'vault',
          token: res.token,
          fetchedAtMs: t,
          ...(expiresAtMs !== undefined ? { expiresAtMs } : {}),
        };
      } else {
        stats.failed++;
        const next = policy.nextBackoff({
          record,
          nowMs: t,
          random: rnd(),
          servableUntilMs: entry ? policy.servableUntilMs(entry, params) : undefined,
        });
        if (entry) lap.entry = { ...entry, ...next };
        else lap.kept = next;
        const usable = entry && (decision.action === 'refresh-ahead' || policy.staleUsable(entry, t, params));
        if (usable) stats.stale++;
        else {
          stats.errors++;
          printed = false;
        }
      }
    }
    if (t >= backAtMs && !printed) recovery.lastFailedCallMs = t;
    // Claude Code holds what it got for the TTL, then calls again on its next API request; after
    // a failure it calls again on its next request.
    const next = printed ? t + o.ttlMs + exp(o.requestMeanMs) : t + exp(o.requestMeanMs);
    heap.push({ t: next, laptop: ev.laptop });
  }
  return { stats, laptops, recovery };
}

/** Requests per bucket, the rate against users / TTL, and burstiness per TTL-long cycle. */
export function analyse(times, o) {
  const bucketMs = o.bucketMs;
  const nb = Math.ceil(o.durationMs / bucketMs);
  const buckets = new Array(nb).fill(0);
  for (const t of times) buckets[Math.min(nb - 1, Math.floor(t / bucketMs))]++;
  const usersPerTtlPerS = o.laptops / (o.ttlMs / 1000);
  const rateIn = (fromMs, toMs) =>
    times.filter((t) => t >= fromMs && t < toMs).length / ((toMs - fromMs) / 1000);
  // Steady state: from two TTLs after the last session started to the end; with an outage,
  // before it, or from two TTLs after it when it starts earlier.
  let steadyFrom = o.startSpreadMs + 2 * o.ttlMs;
  let steadyTo = o.durationMs;
  if (o.outageAtMs !== undefined) {
    if (o.outageAtMs > steadyFrom) steadyTo = o.outageAtMs;
    else steadyFrom = Math.max(steadyFrom, o.outageAtMs + o.outageMs + 2 * o.ttlMs);
  }
  const steadyRatePerS = rateIn(steadyFrom, steadyTo);
  const perCycle = Math.round(o.ttlMs / bucketMs);
  const cycles = [];
  for (let c = 0; c * perCycle < nb; c++) {
    const slice = buckets.slice(c * perCycle, (c + 1) * perCycle);
    if (slice.length < perCycle) break;
    const mean = slice.reduce((a, b) => a + b, 0) / slice.length;
    cycles.push({ cycle: c, peakToMean: mean > 0 ? maxOf(slice) / mean : 0 });
  }
  // A uniform (Poisson) fleet would still show some peak: its expected level, for comparison.
  const expectedPerBucket = usersPerTtlPerS * (bucketMs / 1000);
  // Recovery peak: the busiest bucket once the upstream is back, against the steady rate.
  let recovery;
  if (o.outageAtMs !== undefined) {
    const first = Math.floor((o.outageAtMs + o.outageMs) / bucketMs);
    const after = buckets.slice(first);
    const peak = maxOf(after);
    recovery = {
      peakPerBucket: peak,
      peakToSteady: peak / (steadyRatePerS * (bucketMs / 1000)),
      peakAtMs: (first + after.indexOf(peak)) * bucketMs - (o.outageAtMs + o.outageMs),
    };
  }
  return {
    usersPerTtlPerS,
    overallRatePerS: times.length / (o.durationMs / 1000),
    steadyRatePerS,
    steadyRatio: steadyRatePerS / usersPerTtlPerS,
    expectedPerBucket,
    cycles,
    buckets,
    ...(recovery ? { recovery } : {}),
  };
}
