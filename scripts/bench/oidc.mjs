// Bench module (scripts/bench.mjs): an oidc renewal via the refresh token (`keybroker --no-cache`:
// openid-client loaded, one refresh_token grant at oidc-provider on loopback, the rotated token
// written) against a cold JWT mint, and an oidc profile's cache hit against a jwt profile's.
// Run alone: `node scripts/bench.mjs --only oidc`.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jwtSandbox, kb, startServerChild } from './lib/fixtures.mjs';
import { root } from './lib/harness.mjs';

export default async function oidcBench(h) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-bench-oidc-'));
  const o = h.sandbox('oidc');
  const j = jwtSandbox(h, 'oidc-vs-jwt');
  const serverTs = path.join(root, 'test', 'servers', 'oidc-provider.ts');
  const configPath = path.join(o.home, '.config', 'keybroker', 'config.json');
  // The provider runs in a child process, which also signs the sandbox in (device flow through
  // the provider's own pages), so the bench measures renewals only.
  // oidc-provider (koa, CommonJS) stays in node_modules: built into dist/ so that it resolves.
  const provider = await startServerChild(
    path.join(root, 'dist'),
    'bench-oidc-provider',
    `import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
// stdout carries the one JSON line: the provider's notices go to stderr.
console.log = console.info = (...a) => process.stderr.write(a.join(' ') + '\\n');
const { startOidcProvider, TestBrowser, TEST_CLIENT_ID } = await import(${JSON.stringify(serverTs)});
const p = await startOidcProvider();
const env = ${JSON.stringify(o.env)};
fs.writeFileSync(${JSON.stringify(configPath)}, JSON.stringify({ profiles: { default: { timeoutMs: 20000,
  source: { type: 'oidc', issuer: p.issuer, clientId: TEST_CLIENT_ID } } } }), { mode: 0o600 });
const child = spawn(${JSON.stringify(process.execPath)}, [${JSON.stringify(h.bin)}, 'login', '--device'], { env, stdio: ['pipe', 'ignore', 'pipe'] });
let seen = '';
let acted;
child.stderr.setEncoding('utf8').on('data', (d) => {
  seen += d;
  const m = /open (\\S+) and enter the code (\\S+)/.exec(seen);
  if (m && !acted) acted = new TestBrowser().completeDeviceFlow(m[1], m[2], 'alice');
});
const code = await new Promise((r) => child.on('close', r));
if (code !== 0) { process.stderr.write(seen); process.exit(1); }
process.stdout.write(JSON.stringify({ issuer: p.issuer }) + '\\n');
setInterval(() => {}, 1 << 30);`,
    { packages: 'external' },
  );
  try {
    h.compare('cold oidc renewal via refresh token (--no-cache) vs cold mint (--no-cache)', {
      a: { label: 'keybroker --no-cache (oidc refresh grant)', cmd: kb(h, '--no-cache'), env: o.env },
      b: { label: 'keybroker --no-cache (jwt mint)', cmd: kb(h, '--no-cache'), env: j.env },
    });
    // Fill both caches, then compare hits.
    for (const sb of [o, j]) spawnSync('timeout', ['60', '/bin/sh', '-c', kb(h)], { env: sb.env });
    h.compare('oidc cache hit vs jwt cache hit (goal ~1.0)', {
      a: { label: 'keybroker (oidc, cache hit)', cmd: kb(h), env: o.env },
      b: { label: 'keybroker (jwt, cache hit)', cmd: kb(h), env: j.env },
    });
  } finally {
    provider.stop();
    o.cleanup();
    j.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
