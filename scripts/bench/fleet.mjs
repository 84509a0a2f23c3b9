// Bench module (scripts/bench.mjs): the fleet simulation at full size (scripts/fleet-sim.mjs:
// 1000 laptops × 4 sessions, TTL 300 s, four virtual hours after a mass start), its outage
// variant, and 10 and 20 busy spread-out sessions per laptop; redraws docs/fleet-sim.svg.
// Run alone: `node scripts/fleet-sim.mjs`. A scenario that fails makes the bench fail.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? process.argv[i + 1] : '';
})();

export default async function fleetBench(h) {
  if (ONLY && !'fleet simulation'.includes(ONLY)) return;
  const script = path.join(h.root, 'scripts', 'fleet-sim.mjs');
  const scenarios = [
    ['--svg', path.join(h.root, 'docs', 'fleet-sim.svg')],
    ['--outage-at-min', '120', '--outage-min', '15'],
    ['--sessions', '10', '--request-mean-s', '10', '--start-spread-s', '3600'],
    ['--sessions', '20', '--request-mean-s', '10', '--start-spread-s', '3600'],
  ];
  for (const args of scenarios) {
    const cmd = `node scripts/fleet-sim.mjs ${args.join(' ').replace(h.root + path.sep, '')}`;
    process.stdout.write(`fleet simulation: ${cmd}\n`);
    const run = spawnSync(process.execPath, [script, ...args], { cwd: h.root, stdio: 'inherit' });
    if (run.status !== 0) {
      process.stdout.write(`fleet simulation failed (exit ${run.status ?? run.signal}): ${cmd}\n`);
      process.exitCode = 1;
    }
  }
}
