// Bench module (scripts/bench.mjs): 20 concurrent cold invocations (the cache emptied before each
// batch, as when 20 Claude Code sessions start at once) against one cold invocation, jwt profile,
// through /bin/sh -c. Single flight means the batch mints once: the audit log is checked for
// exactly one `miss` per cold batch. Run alone: `node scripts/bench.mjs --only concurrent`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { jwtSandbox, kb, recordExtra } from './lib/fixtures.mjs';

const N = 20;

export default async function concurrencyBench(h) {
  const sb = jwtSandbox(h, 'concurrency');
  const cacheDir = path.join(sb.home, '.cache', 'keybroker');
  const audit = path.join(sb.home, '.local', 'state', 'keybroker', 'audit.log');
  const one = `${kb(h)} >/dev/null`;
  const batch = `i=0; while [ $i -lt ${N} ]; do ${one} & i=$((i+1)); done; wait`;
  let batches = 0;
  try {
    const row = h.compare(`${N} concurrent cold invocations vs one cold invocation`, {
      a: { label: `${N} × keybroker at once (cold cache)`, cmd: batch, env: sb.env },
      b: { label: '1 × keybroker (cold cache)', cmd: one, env: sb.env },
      runs: Math.min(h.runs, 10),
      before: () => {
        fs.rmSync(cacheDir, { recursive: true, force: true });
        batches++;
      },
    });
    if (!row) return;
    // The same shape with the bare runtime: what the machine alone costs for 20 processes at once.
    const node0 = `${kb(h).split(' ')[0]} -e 0`;
    const ref = h.compare(`${N} concurrent node -e 0 vs one (reference for the row above)`, {
      a: {
        label: `${N} × node -e 0 at once`,
        cmd: `i=0; while [ $i -lt ${N} ]; do ${node0} & i=$((i+1)); done; wait`,
        env: sb.env,
      },
      b: { label: '1 × node -e 0', cmd: node0, env: sb.env },
      runs: Math.min(h.runs, 10),
    });
    const records = fs
      .readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const misses = records.filter((r) => r.cache === 'miss').length;
    const served = records.length;
    // The warm-up batch starts cold too (the warm-up single run then hits its entry).
    const coldRuns = batches + 1;
    process.stdout.write(
      `  single flight: ${misses} mints for ${coldRuns} cold starts (${served} tokens printed)${misses === coldRuns ? '' : '  <-- NOT ONE MINT PER COLD START'}\n`,
    );
    recordExtra('concurrency', {
      concurrent: N,
      ratio: row.ratio,
      bareNodeRatio: ref?.ratio,
      batchMedianMs: row.aMedianMs,
      singleMedianMs: row.bMedianMs,
      mints: misses,
      coldStarts: coldRuns,
      tokensPrinted: served,
    });
  } finally {
    sb.cleanup();
  }
}
