// Bench module (scripts/bench.mjs): peak memory (maximum resident set of the keybroker process,
// from /usr/bin/time) of a cache hit, a cold JWT mint and a cold Vault fetch, against `node -e 0`,
// each the median of several runs through /bin/sh -c. Run alone:
// `node scripts/bench.mjs --only memory`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  jwtSandbox,
  kb,
  median,
  peakRssKb,
  q,
  recordExtra,
  startVault,
  vaultSandbox,
} from './lib/fixtures.mjs';

const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? process.argv[i + 1] : '';
})();

export default async function memoryBench(h) {
  const name = 'peak memory (max RSS) vs node -e 0';
  if (ONLY && !name.includes(ONLY)) return;
  if (!fs.existsSync('/usr/bin/time')) {
    process.stdout.write(`${name}: skipped (no /usr/bin/time)\n`);
    return;
  }
  const runs = Math.max(5, Math.min(15, h.runs));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-bench-mem-'));
  const vault = await startVault(dir);
  const j = jwtSandbox(h, 'memory');
  const v = vaultSandbox(h, 'memory-vault', vault);
  try {
    // Fill the jwt cache so that the plain run is a hit.
    peakRssKb(kb(h), j.env);
    const cases = [
      { label: `node -e 0 (${process.version})`, cmd: `${q(process.execPath)} -e 0`, env: j.env },
      { label: 'keybroker (cache hit)', cmd: kb(h), env: j.env },
      { label: 'keybroker --no-cache (jwt mint)', cmd: kb(h, '--no-cache'), env: j.env },
      { label: 'keybroker --no-cache (vault kv)', cmd: kb(h, '--no-cache'), env: v.env },
    ];
    const kbs = cases.map(() => []);
    for (let i = 0; i < runs; i++) {
      for (const [k, c] of cases.entries()) kbs[k].push(peakRssKb(c.cmd, c.env));
    }
    const base = median(kbs[0]);
    process.stdout.write(`${name} (median of ${runs})\n`);
    const rows = cases.map((c, k) => {
      const mib = median(kbs[k]) / 1024;
      const ratio = median(kbs[k]) / base;
      process.stdout.write(`  ${c.label}: ${mib.toFixed(1)} MiB | ratio ${ratio.toFixed(2)}\n`);
      return { label: c.label, medianMiB: Number(mib.toFixed(1)), ratio: Number(ratio.toFixed(2)) };
    });
    recordExtra('memory', { runs, rows });
  } finally {
    vault.stop();
    j.cleanup();
    v.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
