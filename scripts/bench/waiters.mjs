// Bench module (scripts/bench.mjs): many concurrent cold runs against a slow Vault (every
// request answered after 300 ms, AppRole login, timeoutMs 30000), as when a fleet's sessions
// start at once. One run logs in and reads; the others wait on the lock. Reports the exit codes,
// the Vault requests (goal: 1 login, 1 KV read), the wall time and the CPU time all runs used
// (user + system, from /usr/bin/time over the batch) beside the same number of `node -e 0`.
// Run alone: `node scripts/bench.mjs --only waiters` (BENCH_WAITERS=N to change the 200).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kb, q, recordExtra, startServerChild, VAULT_TOKEN_VALUE } from './lib/fixtures.mjs';
import { root } from './lib/harness.mjs';

const N = Number(process.env.BENCH_WAITERS ?? 200);
const NAME = `${N} concurrent cold runs, Vault answering in 300 ms (lock waiters)`;

/** The local Vault with AppRole and a 300 ms delay on every request, plus /counts on a side port. */
function startSlowVault(dir) {
  const serverTs = path.join(root, 'test', 'servers', 'vault-server.ts');
  return startServerChild(
    dir,
    'bench-slow-vault',
    `import * as http from 'node:http';
import { startVaultServer, vaultAdmin } from ${JSON.stringify(serverTs)};
const v = await startVaultServer();
const admin = vaultAdmin(v.url, v.rootToken);
await admin.putKv('secret', 2, 'llm', { token: ${JSON.stringify(VAULT_TOKEN_VALUE)} });
await admin.putPolicy('llm', 'path "secret/data/*" { capabilities = ["read"] }');
await admin.enableAuth('approle', 'approle');
const { roleId, secretId } = await admin.approleRole('approle', 'laptop', ['llm'], '1h');
v.resetCounts();
v.faults.push({ kind: 'delay', ms: 300 });
const side = http.createServer((_req, res) => {
  res.end(JSON.stringify({
    logins: v.count('POST', 'auth/approle/login'),
    kvReads: v.count('GET', 'secret/data/llm'),
    requests: v.requests.length,
  }));
});
side.listen(0, '127.0.0.1', () => {
  const port = side.address().port;
  process.stdout.write(JSON.stringify({ url: v.url, roleId, secretId, counts: 'http://127.0.0.1:' + port + '/' }) + '\\n');
});
setInterval(() => {}, 1 << 30);`,
  );
}

/** user + system CPU seconds of `cmd` and all it waited for, and its wall time. */
function timed(cmd, env) {
  const started = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu=%U+%S', '/bin/sh', '-c', cmd], {
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const m = /cpu=([\d.]+)\+([\d.]+)/.exec(r.stderr);
  return { wallMs, cpuSec: m ? Number(m[1]) + Number(m[2]) : Number.NaN, stdout: r.stdout };
}

export default async function waitersBench(h) {
  if (h.only && !NAME.includes(h.only)) return;
  if (!fs.existsSync('/usr/bin/time')) {
    process.stdout.write(`${NAME}: skipped (no /usr/bin/time)\n`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-bench-waiters-'));
  const vault = await startSlowVault(dir);
  const sb = h.sandbox('waiters');
  try {
    sb.writeConfig({
      profiles: {
        default: {
          timeoutMs: 30_000,
          source: {
            type: 'vault',
            path: 'secret/llm',
            field: 'token',
            auth: { method: 'approle', roleId: vault.roleId, secretIdEnv: 'KB_SECRET_ID' },
          },
        },
      },
    });
    const env = { ...sb.env, VAULT_ADDR: vault.url, KB_SECRET_ID: vault.secretId };
    // Each run prints its exit code on its own line; the token goes to /dev/null.
    const one = `${kb(h)} >/dev/null 2>>${q(path.join(sb.dir, 'stderr.log'))}; echo "rc=$?"`;
    const batch = `i=0; while [ $i -lt ${N} ]; do (${one}) & i=$((i+1)); done; wait`;
    const runs = timed(batch, env);
    const codes = runs.stdout.split('\n').filter((l) => l.startsWith('rc='));
    const failed = codes.filter((l) => l !== 'rc=0').length;
    const counts = await (await fetch(vault.counts)).json();
    const node0 = `${q(process.execPath)} -e 0`;
    const ref = timed(`i=0; while [ $i -lt ${N} ]; do ${node0} & i=$((i+1)); done; wait`, env);
    let stderrLines = [];
    try {
      stderrLines = fs.readFileSync(path.join(sb.dir, 'stderr.log'), 'utf8').split('\n').filter(Boolean);
    } catch {
      // nothing written
    }
    process.stdout.write(
      `${NAME}\n` +
        `  ${codes.length} runs: ${codes.length - failed} exit 0, ${failed} failed; Vault saw ${counts.logins} login(s), ${counts.kvReads} KV read(s), ${counts.requests} requests\n` +
        `  wall ${(runs.wallMs / 1000).toFixed(1)} s, CPU ${runs.cpuSec.toFixed(1)} s in all (${((runs.cpuSec * 1000) / N).toFixed(0)} ms a run)` +
        ` | ${N} × node -e 0: wall ${(ref.wallMs / 1000).toFixed(1)} s, CPU ${ref.cpuSec.toFixed(1)} s (${((ref.cpuSec * 1000) / N).toFixed(0)} ms a run)\n` +
        (stderrLines.length > 0 ? `  first stderr line: ${stderrLines[0]}\n` : ''),
    );
    recordExtra('waiters', {
      concurrent: N,
      exitedZero: codes.length - failed,
      failed,
      logins: counts.logins,
      kvReads: counts.kvReads,
      wallMs: Math.round(runs.wallMs),
      cpuSec: runs.cpuSec,
      node0WallMs: Math.round(ref.wallMs),
      node0CpuSec: ref.cpuSec,
    });
  } finally {
    vault.stop();
    sb.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
