#!/usr/bin/env node
// `npm run bench`: ratios, not absolute times. Each comparison alternates its two commands
// (a, b, a, b, ...) in one run so machine noise hits both alike, and reports the ratio of
// medians a/b. Modules in scripts/bench/*.mjs add comparisons through the same harness
// (scripts/bench/lib/harness.mjs).
//   node scripts/bench.mjs [--runs N] [--only substring]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { jwtSandbox, q } from './bench/lib/fixtures.mjs';
import { createHarness, root } from './bench/lib/harness.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt('--runs', process.env.BENCH_RUNS ?? '30'));

/** The harness handed to every bench module. */
const h = createHarness({ runs: RUNS, only: opt('--only', '') });
const { bin, results } = h;

if (!fs.existsSync(bin) || process.env.BENCH_BUILD !== '0') {
  spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
}

// --- the token path against the bare runtime -------------------------------------------------
const sb = jwtSandbox(h, 'jwt');
// Claude Code runs the helper through /bin/sh -c; so do the peers here.
const viaSh = (label, cmd, env) => ({ label, cmd, env });
const node0sh = viaSh(`sh -c 'node -e 0' (${process.version})`, `${q(process.execPath)} -e 0`, sb.env);
spawnSync('timeout', ['60', '/bin/sh', '-c', `${q(process.execPath)} ${q(bin)}`], { env: sb.env }); // fill the cache
h.compare('cache hit vs bare node (goal <= 1.15)', {
  a: viaSh('keybroker (cache hit)', `${q(process.execPath)} ${q(bin)}`, sb.env),
  b: node0sh,
});
// A common corporate setting: Node 20 reads the whole system bundle at every start (about 30 ms).
const SYSTEM_CA = '/etc/ssl/certs/ca-certificates.crt';
if (fs.existsSync(SYSTEM_CA)) {
  const caEnv = { ...sb.env, NODE_EXTRA_CA_CERTS: SYSTEM_CA };
  h.compare('cache hit vs bare node, both with NODE_EXTRA_CA_CERTS=system bundle (goal <= 1.15)', {
    a: viaSh('keybroker (cache hit, NODE_EXTRA_CA_CERTS)', `${q(process.execPath)} ${q(bin)}`, caEnv),
    b: viaSh(`sh -c 'node -e 0' (NODE_EXTRA_CA_CERTS)`, `${q(process.execPath)} -e 0`, caEnv),
  });
}
h.compare('cold mint (--no-cache) vs bare node', {
  a: viaSh('keybroker --no-cache (jwt mint)', `${q(process.execPath)} ${q(bin)} --no-cache`, sb.env),
  b: node0sh,
});
h.compare('cold mint vs cache hit', {
  a: viaSh('keybroker --no-cache (jwt mint)', `${q(process.execPath)} ${q(bin)} --no-cache`, sb.env),
  b: viaSh('keybroker (cache hit)', `${q(process.execPath)} ${q(bin)}`, sb.env),
});

// --- comparisons contributed by each source / issue -------------------------------------------
const benchDir = path.join(root, 'scripts', 'bench');
for (const f of fs.existsSync(benchDir) ? fs.readdirSync(benchDir).sort() : []) {
  if (!f.endsWith('.mjs')) continue;
  try {
    const mod = await import(pathToFileURL(path.join(benchDir, f)).href);
    if (typeof mod.default === 'function') await mod.default(h);
  } catch (e) {
    process.stdout.write(`${f}: skipped (${e instanceof Error ? e.message : e})\n`);
  }
}

sb.cleanup();
const out = path.join(root, 'dist', 'bench.json');
fs.writeFileSync(out, `${JSON.stringify({ node: process.version, runs: RUNS, results }, null, 2)}\n`);
process.stdout.write(`\nwrote ${path.relative(root, out)}\n`);
