// Bench module (scripts/bench.mjs): the fleet simulation with an OpenID provider's token endpoint
// as the upstream (`node scripts/fleet-sim.mjs --upstream oidc`: oidc-provider in process,
// refresh-token rotation with reuse detection, one login per laptop). The provider's ID token
// against TTL + margin (300 s + 120 s): living 1 h (Okta, Entra ID, Google), 10 min (usable for
// less than a TTL), and 5 min (Keycloak's default: never printable). Figures, not timings: the
// simulation runs in virtual time and is seeded. Goals: the default scenario at most
// 1.05 × users / TTL; in every scenario no refresh token presented twice and no grant refused.
// Run alone: `node scripts/bench.mjs --only oidc`.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { recordExtra } from './lib/fixtures.mjs';

const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? process.argv[i + 1] : '';
})();

/** [arguments, goal on the steady rate] */
const SCENARIOS = [
  [['--upstream', 'oidc'], true],
  [['--upstream', 'oidc', '--lifetime-s', '600'], false],
  // Every call of every session is a grant here: a small fleet tells the same ratio.
  [['--upstream', 'oidc', '--lifetime-s', '300', '--laptops', '20', '--hours', '1'], false],
];

function goals(r, steadyGoal) {
  return [
    ...(steadyGoal
      ? [[`token endpoint <= 1.05 × users / TTL`, r.steadyRatio.toFixed(3), r.steadyRatio <= 1.05]]
      : []),
    [`refresh tokens presented twice = 0`, r.oidc.presentedTwice, r.oidc.presentedTwice === 0],
    [`refresh grants refused = 0`, r.oidc.refused, r.oidc.refused === 0],
  ];
}

export default async function oidcFleetBench(h) {
  if (ONLY && !'oidc fleet simulation'.includes(ONLY)) return;
  const script = path.join(h.root, 'scripts', 'fleet-sim.mjs');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-fleet-oidc-bench-'));
  try {
    for (const [args, steadyGoal] of SCENARIOS) {
      const cmd = `node scripts/fleet-sim.mjs ${args.join(' ')}`;
      process.stdout.write(`oidc fleet simulation: ${cmd}\n`);
      const json = path.join(dir, 'result.json');
      const run = spawnSync(process.execPath, [script, ...args, '--json', json], {
        cwd: h.root,
        stdio: 'inherit',
      });
      if (run.status !== 0) {
        process.stdout.write(`oidc fleet simulation failed (exit ${run.status ?? run.signal}): ${cmd}\n`);
        process.exitCode = 1;
        continue;
      }
      const r = JSON.parse(fs.readFileSync(json, 'utf8'));
      recordExtra(`oidc fleet simulation: ${args.slice(2).join(' ') || 'default'}`, {
        command: cmd,
        steadyRatio: r.steadyRatio,
        grants: r.upstream.succeeded,
        tooShort: r.stats.tooShort,
        refusedShortLived: r.stats.refusedShortLived,
        presentedTwice: r.oidc.presentedTwice,
        refused: r.oidc.refused,
      });
      for (const [goal, value, met] of goals(r, steadyGoal)) {
        process.stdout.write(`  goal: ${goal}: ${value} ${met ? 'met' : 'MISSED'}\n`);
        if (!met) process.exitCode = 1;
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
