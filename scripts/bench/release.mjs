#!/usr/bin/env node
/**
 * Startup of the release executable, a cache hit and a cold JWT mint (`--no-cache`), each
 * against `node -e 0` of the Node it embeds (the same official binary, from
 * .cache/package/node/linux-x64/node), side by side.
 *
 *   node scripts/bench/release.mjs [--runs 40] [--loop]     (after npm run package)
 *
 * For the lead's harness (scripts/bench.mjs): `export default async function (h)` calls
 * `h.compare(name, { a, b, runs })`. Alone, it uses hyperfine when installed (Debian
 * package hyperfine), else (or with --loop) an alternating loop of spawns, which is fairer
 * on a machine whose load changes, and prints medians and the ratio.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { q } from './lib/fixtures.mjs';
import { root } from './lib/harness.mjs';

const releaseExe = path.join(root, 'dist', 'release', 'keybroker-linux-x64');
const embeddedNode = path.join(root, '.cache', 'package', 'node', 'linux-x64', 'node');

/** A private HOME with a jwt profile whose cache entry is fresh, and the env to use it. */
export function prepareHitSandbox(exe = releaseExe) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-bench-'));
  fs.chmodSync(dir, 0o700);
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    LANG: 'C',
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_STATE_HOME: path.join(dir, 'state'),
    KEYBROKER_MANAGED_CONFIG: path.join(dir, 'managed.json'),
    CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '300000',
  };
  const key = path.join(dir, 'key.pem');
  execFileSync(exe, ['keygen', '--out', key], { env, stdio: 'ignore' });
  const configDir = path.join(dir, 'config', 'keybroker');
  fs.mkdirSync(configDir, { recursive: true, mode: 0o700 });
  // The benchmark runner is one caller asking again and again: a long minimum refresh
  // interval keeps the rejected-token rule from forcing refreshes during the runs.
  fs.writeFileSync(
    path.join(configDir, 'config.json'),
    JSON.stringify({
      cache: { minRefreshIntervalMs: 86_400_000 },
      profiles: {
        default: { source: { type: 'jwt', signingKey: { file: key }, issuer: 'bench', audience: 'bench' } },
      },
    }),
    { mode: 0o600 },
  );
  // From one caller: a miss, then a forced refresh (the caller asked again within its TTL),
  // then hits: within the minimum refresh interval the newest token is served from the cache.
  const seen = [1, 2, 3].map(
    () => JSON.parse(execFileSync(exe, ['--json'], { env, encoding: 'utf8' })).cache,
  );
  if (seen[2] !== 'hit') throw new Error(`cache not primed: ${seen.join(', ')}`);
  return { dir, env, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Copies of the executable and of its Node, made the same way. How a file was written decides
 * how the kernel caches it: a file written in one large write (postject's output, a stripped
 * binary) can sit in the page cache in large folios and start about 10 ms sooner than a copy of
 * the same bytes (measured on this machine, Linux 6.18, ext4). Timing dist/release's fresh
 * output against the tar-extracted Node would credit keybroker with that.
 */
function sameCacheState(sandbox) {
  const bin = path.join(sandbox.dir, 'bin');
  fs.mkdirSync(bin);
  const copy = (from, name) => {
    const to = path.join(bin, name);
    fs.writeFileSync(to, fs.readFileSync(from), { mode: 0o755 });
    return to;
  };
  return { exe: copy(releaseExe, 'keybroker-linux-x64'), node: copy(embeddedNode, 'node') };
}

/** a / b is the ratio the harness reports: the executable's hit over bare node. */
function cases(sandbox, bins) {
  return {
    a: { label: 'keybroker-linux-x64 (cache hit)', cmd: q(bins.exe), env: sandbox.env },
    b: { label: `node -e 0 (Node ${nodeVersion()})`, cmd: `${q(bins.node)} -e 0`, env: sandbox.env },
  };
}

function nodeVersion() {
  return execFileSync(embeddedNode, ['--version'], { encoding: 'utf8' }).trim();
}

function checkInputs() {
  for (const f of [releaseExe, embeddedNode]) {
    if (!fs.existsSync(f)) throw new Error(`${path.relative(root, f)} is missing: run npm run package first`);
  }
}

/** A cold JWT mint (`--no-cache`: no cache read or write) against the same `node -e 0`. */
function mintCases(sandbox, bins) {
  const { a, b } = cases(sandbox, bins);
  return { a: { ...a, label: 'keybroker-linux-x64 --no-cache (jwt mint)', cmd: `${a.cmd} --no-cache` }, b };
}

/** Entry point for scripts/bench.mjs. */
export default async function bench(h, runs = h.runs ?? 40) {
  checkInputs();
  const sandbox = prepareHitSandbox();
  const bins = sameCacheState(sandbox);
  try {
    const hit = await h.compare('release executable cache hit vs node -e 0 of its Node (goal <= 1.0)', {
      ...cases(sandbox, bins),
      runs,
    });
    const mint = await h.compare(
      'release executable cold JWT mint (--no-cache) vs node -e 0 of its Node (goal <= 1.6)',
      { ...mintCases(sandbox, bins), runs },
    );
    return [hit, mint];
  } finally {
    sandbox.cleanup();
  }
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function hyperfineCompare({ a, b, runs }) {
  const out = path.join(os.tmpdir(), `kb-bench-${process.pid}.json`);
  execFileSync(
    'hyperfine',
    [
      '-N',
      '--warmup',
      '5',
      '--runs',
      String(runs),
      '--export-json',
      out,
      '-n',
      a.label,
      a.cmd,
      '-n',
      b.label,
      b.cmd,
    ],
    { env: a.env, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const results = JSON.parse(fs.readFileSync(out, 'utf8')).results;
  fs.rmSync(out, { force: true });
  return results.map((r) => ({ label: r.command, medianMs: r.median * 1000, minMs: r.min * 1000 }));
}

function loopCompare({ a, b, runs }) {
  const times = [[], []];
  const once = (c) => {
    const t = process.hrtime.bigint();
    // As scripts/bench.mjs does: through /bin/sh, under `timeout` so each run is its own caller.
    const r = spawnSync('timeout', ['120', '/bin/sh', '-c', c.cmd], { env: c.env, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${c.label} exited ${r.status}`);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  for (let i = 0; i < 5; i++) [a, b].forEach(once);
  for (let i = 0; i < runs; i++) {
    [a, b].forEach((c, j) => {
      times[j].push(once(c));
    });
  }
  return [a, b].map((c, j) => ({ label: c.label, medianMs: median(times[j]), minMs: Math.min(...times[j]) }));
}

function hasHyperfine() {
  return spawnSync('hyperfine', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A stand-alone harness: hyperfine when present, else alternating spawns. */
export const standaloneHarness = {
  async compare(name, spec) {
    const tool = hasHyperfine() && !process.argv.includes('--loop') ? 'hyperfine' : 'alternating loop';
    const [ra, rb] = tool === 'hyperfine' ? hyperfineCompare(spec) : loopCompare(spec);
    const ratio = ra.medianMs / rb.medianMs;
    const lines = [
      `${name} (${tool}, ${spec.runs} runs each)`,
      ...[ra, rb].map(
        (r) => `  ${r.label.padEnd(40)} median ${r.medianMs.toFixed(1)} ms (min ${r.minMs.toFixed(1)})`,
      ),
      `  ratio ${ratio.toFixed(2)} x`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return { name, tool, a: ra, b: rb, ratio };
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--runs');
  await bench(standaloneHarness, i > 0 ? Number(process.argv[i + 1]) : 40);
}
