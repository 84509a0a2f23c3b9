// Bench module (scripts/bench.mjs): keybroker's cold fetch from AWS Secrets Manager
// (`keybroker --no-cache`) against `aws secretsmanager get-secret-value`, both talking to the
// same local, SigV4-verifying Secrets Manager (test/servers/secrets-manager-server.ts) and
// both run through /bin/sh -c. Goal: keybroker ≤ 0.3 × the AWS CLI.
//
// The harness times commands with spawnSync, which blocks this process's event loop, so the
// server runs in a child process. Run alone with `node scripts/bench/aws.mjs [--runs N]`.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startServerChild } from './lib/fixtures.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const ACCESS_KEY_ID = 'AKIAKEYBROKERTEST01';
const SECRET_ACCESS_KEY = 'kbTestSecretKey/0123456789abcdefghijklmnopq';
const SECRET_ID = 'bench/llm';
const TOKEN = 'sk-ant-api03-bench-0123456789abcdefghijklmnopqrstuvwxyz';
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The AWS CLIs to compare with: `aws` on PATH (pyenv shims resolved, so the shim's bash
 * start-up is not counted) and Debian's /usr/bin/aws (awscli package) when that is another one.
 */
function findAwsClis() {
  const candidates = [];
  const which = spawnSync('/bin/sh', ['-c', 'command -v aws'], { encoding: 'utf8' });
  let onPath = which.status === 0 ? which.stdout.trim() : '';
  if (onPath.includes('/.pyenv/shims/')) {
    const real = spawnSync('pyenv', ['which', 'aws'], { encoding: 'utf8' });
    onPath = real.status === 0 ? real.stdout.trim() : '';
  }
  if (onPath) candidates.push(onPath);
  if (fs.existsSync('/usr/bin/aws')) candidates.push('/usr/bin/aws');
  const found = [];
  for (const bin of candidates) {
    const resolved = fs.realpathSync(bin);
    if (found.some((f) => f.resolved === resolved)) continue;
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (v.status !== 0) continue;
    found.push({ bin, resolved, version: `${v.stdout}${v.stderr}`.trim().split(/\s+/)[0] });
  }
  return found;
}

/** The local Secrets Manager server in a child process (scripts/bench/lib/fixtures.mjs). */
async function startServerProcess(dir) {
  const serverTs = path.join(root, 'test', 'servers', 'secrets-manager-server.ts');
  return startServerChild(
    dir,
    'sm-server',
    `import { startSecretsManagerServer } from ${JSON.stringify(serverTs)};
const s = await startSecretsManagerServer({ region: 'us-east-1' });
s.putSecret(${JSON.stringify(SECRET_ID)}, ${JSON.stringify(TOKEN)});
process.stdout.write(JSON.stringify({ url: s.url }) + '\\n');
setInterval(() => {}, 1 << 30);`,
  );
}

export default async function bench(h) {
  const clis = findAwsClis();
  if (clis.length === 0) {
    const apt = spawnSync('apt-cache', ['policy', 'awscli'], { encoding: 'utf8' });
    const candidate = /Candidate:\s*(\S+)/.exec(apt.stdout ?? '')?.[1];
    process.stdout.write(
      `aws cold fetch vs AWS CLI: skipped (no \`aws\` on PATH${candidate && candidate !== '(none)' ? `; Debian offers awscli ${candidate}: apt-get install awscli` : ''})\n`,
    );
    return;
  }
  const sb = h.sandbox('aws');
  const server = await startServerProcess(sb.dir);
  try {
    sb.writeConfig({
      audit: { enabled: false },
      profiles: { default: { source: { type: 'aws-secrets-manager', secretId: SECRET_ID } } },
    });
    const env = {
      ...sb.env,
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: server.url,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    };
    const kb = `${q(process.execPath)} ${q(h.bin)} --no-cache`;
    const check = (cmd, quiet) => {
      const r = spawnSync('/bin/sh', ['-c', cmd], { env, encoding: 'utf8' });
      if (r.status !== 0 || r.stdout.trim() !== TOKEN) {
        throw new Error(
          `${cmd.split(' ')[0]} did not print the token (exit ${r.status}): ${r.stderr.slice(0, 300)}`,
        );
      }
      if (quiet && r.stderr !== '') throw new Error(`keybroker wrote to stderr: ${r.stderr.slice(0, 300)}`);
    };
    check(kb, true);
    const rows = [];
    for (const aws of clis) {
      const cli = `${q(aws.bin)} secretsmanager get-secret-value --endpoint-url ${q(server.url)} --secret-id ${q(SECRET_ID)} --query SecretString --output text`;
      check(cli, false);
      rows.push(
        h.compare(`aws cold fetch (--no-cache) vs ${aws.version} get-secret-value (goal <= 0.3)`, {
          a: { label: 'keybroker --no-cache (aws-secrets-manager)', cmd: kb, env },
          b: { label: `aws secretsmanager get-secret-value (${aws.version}, ${aws.bin})`, cmd: cli, env },
          runs: Math.min(h.runs, Number(process.env.BENCH_AWS_RUNS ?? 15)),
        }),
      );
    }
    return rows;
  } finally {
    server.stop();
    sb.cleanup();
  }
}

// --- standalone: a minimal harness with the same compare() -----------------------------------
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 15;
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const time = (c) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('/bin/sh', ['-c', c.cmd], { env: c.env, stdio: ['pipe', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`${c.label} exited ${r.status}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const h = {
    root,
    bin: path.join(root, 'dist', 'keybroker'),
    runs,
    compare(name, { a, b, runs: n = runs }) {
      time(a);
      time(b);
      const ta = [];
      const tb = [];
      for (let i = 0; i < n; i++) {
        ta.push(time(a));
        tb.push(time(b));
      }
      const row = {
        name,
        ratio: median(ta) / median(tb),
        aMedianMs: median(ta),
        bMedianMs: median(tb),
        runs: n,
      };
      process.stdout.write(
        `${name}\n  ${a.label}: median ${row.aMedianMs.toFixed(1)} ms | ${b.label}: median ${row.bMedianMs.toFixed(1)} ms | ratio ${row.ratio.toFixed(2)}\n`,
      );
      return row;
    },
    sandbox(name) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kb-bench-${name}-`));
      const home = path.join(dir, 'home');
      fs.mkdirSync(path.join(home, '.config', 'keybroker'), { recursive: true, mode: 0o700 });
      return {
        dir,
        home,
        env: {
          PATH: process.env.PATH,
          HOME: home,
          XDG_CONFIG_HOME: path.join(home, '.config'),
          XDG_CACHE_HOME: path.join(home, '.cache'),
          XDG_STATE_HOME: path.join(home, '.local', 'state'),
          KEYBROKER_MANAGED_CONFIG: path.join(dir, 'managed.json'),
        },
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
  if (!fs.existsSync(h.bin)) {
    process.stderr.write('dist/keybroker is missing: run npm run build first\n');
    process.exit(1);
  }
  await bench(h);
}
