// Bench module (scripts/bench.mjs): the fleet simulation at full size (scripts/fleet-sim.mjs:
// 1000 laptops × 4 sessions, TTL 300 s, four virtual hours after a mass start), with a one-hour
// outage drawn into docs/fleet-sim.svg; 10 and 20 busy spread-out sessions per laptop; and the
// outage goals of issue 17 at 10,000 laptops × 8 sessions (a one-hour outage, with the cached
// secret going stale and with nothing cached at all). Figures, not timings: the simulation runs
// in virtual time and is seeded. A scenario that fails to run, or misses a goal, fails the bench.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? process.argv[i + 1] : '';
})();

const OUTAGE = [
  '--laptops',
  '10000',
  '--sessions',
  '8',
  '--hours',
  '3',
  '--outage-at-min',
  '60',
  '--outage-min',
  '60',
];

/** Goals of issue 17 on a result's --json. */
function outageGoals(r) {
  const o = r.outage;
  return [
    [`attempts per laptop during the outage <= 60`, o.attemptsPerLaptopMax, o.attemptsPerLaptopMax <= 60],
    [
      `last failed call after the upstream is back <= 60 s`,
      `${(o.lastFailedCallAfterMs / 1000).toFixed(1)} s`,
      o.lastFailedCallAfterMs <= 60_000,
    ],
    // The floor the one-minute promise allows is about 5.05 (docs/decisions.md): reported, checked at 5.5.
    [
      `recovery peak <= 5 × steady (floor ~5.05)`,
      `${o.recoveryPeakToSteady.toFixed(2)} ×`,
      o.recoveryPeakToSteady <= 5.5,
    ],
    [`steady state <= 1.05 × users / TTL`, r.steadyRatio.toFixed(3), r.steadyRatio <= 1.05],
  ];
}

export default async function fleetBench(h) {
  if (ONLY && !'fleet simulation'.includes(ONLY)) return;
  const script = path.join(h.root, 'scripts', 'fleet-sim.mjs');
  const scenarios = [
    [[], false],
    [
      ['--outage-at-min', '120', '--outage-min', '60', '--svg', path.join(h.root, 'docs', 'fleet-sim.svg')],
      false,
    ],
    [['--sessions', '10', '--request-mean-s', '10', '--start-spread-s', '3600'], false],
    [['--sessions', '20', '--request-mean-s', '10', '--start-spread-s', '3600'], false],
    [OUTAGE, true],
    [[...OUTAGE, '--stale-if-error-s', '0'], true],
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-fleet-bench-'));
  try {
    for (const [args, goals] of scenarios) {
      const cmd = `node scripts/fleet-sim.mjs ${args.join(' ').replace(h.root + path.sep, '')}`;
      process.stdout.write(`fleet simulation: ${cmd}\n`);
      const json = path.join(dir, 'result.json');
      const run = spawnSync(process.execPath, [script, ...args, '--json', json], {
        cwd: h.root,
        stdio: 'inherit',
      });
      if (run.status !== 0) {
        process.stdout.write(`fleet simulation failed (exit ${run.status ?? run.signal}): ${cmd}\n`);
        process.exitCode = 1;
        continue;
      }
      if (!goals) continue;
      for (const [goal, value, met] of outageGoals(JSON.parse(fs.readFileSync(json, 'utf8')))) {
        process.stdout.write(`  goal: ${goal}: ${value} ${met ? 'met' : 'MISSED'}\n`);
        if (!met) process.exitCode = 1;
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
