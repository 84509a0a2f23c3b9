#!/usr/bin/env node
// `npm run bench`: ratios, not absolute times. Each comparison alternates its two commands
// (a, b, a, b, ...) in one run so machine noise hits both alike, and reports the ratio of
// medians a/b. Modules in scripts/bench/*.mjs add comparisons through the same harness.
//   node scripts/bench.mjs [--runs N] [--only substring]
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt('--runs', process.env.BENCH_RUNS ?? '30'));
const ONLY = opt('--only', '');
const bin = path.join(root, 'dist', 'keybroker');
const results = [];

if (!fs.existsSync(bin) || process.env.BENCH_BUILD !== '0') {
  spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function timeOnce(c) {
  const t0 = process.hrtime.bigint();
  const r =
    typeof c.cmd === 'string'
      ? // Through `timeout`, so each run has a caller of its own, as each Claude Code process does
        // (the same caller asking again within its TTL would be a rejected token, not a hit).
        spawnSync('timeout', ['120', '/bin/sh', '-c', c.cmd], {
          env: c.env ?? process.env,
          stdio: ['pipe', 'pipe', 'pipe'],
        })
      : spawnSync(c.cmd[0], c.cmd.slice(1), { env: c.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 && !c.allowFail) {
    throw new Error(`${c.label} exited ${r.status}: ${String(r.stderr).slice(0, 300)}`);
  }
  return ms;
}

/** The harness handed to every bench module. */
const h = {
  root,
  bin,
  runs: RUNS,
  /** Alternates a and b `runs` times (after one warm-up each); records the ratio of medians. */
  compare(name, { a, b, runs = RUNS, before }) {
    if (ONLY && !name.includes(ONLY)) return undefined;
    timeOnce(a);
    timeOnce(b);
    const ta = [];
    const tb = [];
    for (let i = 0; i < runs; i++) {
      before?.('a');
      ta.push(timeOnce(a));
      before?.('b');
      tb.push(timeOnce(b));
    }
    const row = {
      name,
      a: a.label,
      b: b.label,
      ratio: median(ta) / median(tb),
      aMedianMs: median(ta),
      bMedianMs: median(tb),
      runs,
    };
    results.push(row);
    process.stdout.write(
      `${name}\n  ${a.label}: median ${row.aMedianMs.toFixed(1)} ms | ${b.label}: median ${row.bMedianMs.toFixed(1)} ms | ratio ${row.ratio.toFixed(2)}\n`,
    );
    return row;
  },
  /** A private sandbox (HOME, XDG dirs) with an environment for running keybroker. */
  sandbox(name) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kb-bench-${name}-`));
    const home = path.join(dir, 'home');
    fs.mkdirSync(path.join(home, '.config', 'keybroker'), { recursive: true, mode: 0o700 });
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_CACHE_HOME: path.join(home, '.cache'),
      XDG_STATE_HOME: path.join(home, '.local', 'state'),
      KEYBROKER_MANAGED_CONFIG: path.join(dir, 'managed.json'),
    };
    return {
      dir,
      home,
      env,
      writeConfig(cfg) {
        fs.writeFileSync(path.join(home, '.config', 'keybroker', 'config.json'), JSON.stringify(cfg), {
          mode: 0o600,
        });
      },
      cleanup() {
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

// --- the token path against the bare runtime -------------------------------------------------
const sb = h.sandbox('jwt');
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyFile = path.join(sb.home, 'key.pem');
fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
sb.writeConfig({ profiles: { default: { source: { type: 'jwt', signingKey: { file: keyFile } } } } });
const node0 = { label: `node -e 0 (${process.version})`, cmd: [process.execPath, '-e', '0'] };
// Claude Code runs the helper through /bin/sh -c; so do the peers here.
const viaSh = (label, cmd, env) => ({ label, cmd, env });
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
const node0sh = viaSh(`sh -c 'node -e 0' (${process.version})`, `${q(process.execPath)} -e 0`, sb.env);
spawnSync('timeout', ['60', '/bin/sh', '-c', `${q(process.execPath)} ${q(bin)}`], { env: sb.env }); // fill the cache
h.compare('cache hit vs bare node (goal <= 1.15)', {
  a: viaSh('keybroker (cache hit)', `${q(process.execPath)} ${q(bin)}`, sb.env),
  b: node0sh,
});
h.compare('cold mint (--no-cache) vs bare node', {
  a: viaSh('keybroker --no-cache (jwt mint)', `${q(process.execPath)} ${q(bin)} --no-cache`, sb.env),
  b: node0sh,
});
h.compare('cold mint vs cache hit', {
  a: viaSh('keybroker --no-cache (jwt mint)', `${q(process.execPath)} ${q(bin)} --no-cache`, sb.env),
  b: viaSh('keybroker (cache hit)', `${q(process.execPath)} ${q(bin)}`, sb.env),
});
void node0;

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
