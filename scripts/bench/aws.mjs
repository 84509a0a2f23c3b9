// Bench module (scripts/bench.mjs): keybroker's cold fetch from AWS Secrets Manager
// (`keybroker --no-cache`) against `aws secretsmanager get-secret-value`, both talking to the
// same local, SigV4-verifying Secrets Manager (test/servers/secrets-manager-server.ts) and
// both run through /bin/sh -c. Goal: keybroker ≤ 0.3 × the AWS CLI.
//
// The harness times commands with spawnSync, which blocks this process's event loop, so the
// server runs in a child process. Run alone with `node scripts/bench/aws.mjs [--runs N]`.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { q, startServerChild } from './lib/fixtures.mjs';
import { createHarness, root } from './lib/harness.mjs';

const ACCESS_KEY_ID = 'AKIAKEYBROKERTEST01';
const SECRET_ACCESS_KEY = 'kbTestSecretKey/0123456789abcdefghijklmnopq';
const SECRET_ID = 'bench/llm';
const TOKEN = 'sk-ant-api03-bench-0123456789abcdefghijklmnopqrstuvwxyz';

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

// --- standalone: the same harness scripts/bench.mjs uses --------------------------------------
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const runsArg = process.argv.indexOf('--runs');
  const h = createHarness({ runs: runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 15 });
  if (!fs.existsSync(h.bin)) {
    process.stderr.write('dist/keybroker is missing: run npm run build first\n');
    process.exit(1);
  }
  await bench(h);
}
