// What the bench modules for concurrency, peak memory and cold Vault share: a jwt profile, the
// local Vault (test/servers/vault-server.ts) in a child process (the harness's spawnSync blocks
// this process's event loop, so a server here could not answer), and a place to keep figures
// that are not timing ratios (dist/bench-extra.json).
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const VAULT_TOKEN_VALUE = 'sk-ant-api03-bench-vault-0123456789abcdefghijklmnop';
export const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A harness sandbox with a jwt profile (a fresh P-256 key, 0600). */
export function jwtSandbox(h, name) {
  const sb = h.sandbox(name);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = path.join(sb.home, 'key.pem');
  fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  sb.writeConfig({ profiles: { default: { source: { type: 'jwt', signingKey: { file: keyFile } } } } });
  return sb;
}

/**
 * Bundles `contents` (TypeScript that starts a test server from test/servers/ and prints one JSON
 * line) with esbuild and runs it in a child process; resolves to that line plus stop().
 * `buildOptions` go to esbuild (e.g. `packages: 'external'` for CommonJS servers such as koa's).
 */
export async function startServerChild(dir, name, contents, buildOptions = {}) {
  const esbuild = await import('esbuild');
  const out = path.join(dir, `${name}.mjs`);
  await esbuild.build({
    stdin: { contents, resolveDir: root, sourcefile: `${name}.ts`, loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: out,
    logLevel: 'warning',
    ...buildOptions,
  });
  const child = spawn(process.execPath, [out], { stdio: ['ignore', 'pipe', 'inherit'] });
  const info = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
    });
    child.on('exit', (code) => reject(new Error(`${name} exited ${code}`)));
  });
  return { ...info, stop: () => child.kill('SIGTERM') };
}

/** The local Vault with secret/llm field token, in a child process: { url, rootToken, stop }. */
export function startVault(dir) {
  const serverTs = path.join(root, 'test', 'servers', 'vault-server.ts');
  return startServerChild(
    dir,
    'bench-vault-server',
    `import { startVaultServer, vaultAdmin } from ${JSON.stringify(serverTs)};
const v = await startVaultServer();
await vaultAdmin(v.url, v.rootToken).putKv('secret', 2, 'llm', { token: ${JSON.stringify(VAULT_TOKEN_VALUE)} });
process.stdout.write(JSON.stringify({ url: v.url, rootToken: v.rootToken }) + '\\n');
setInterval(() => {}, 1 << 30);`,
  );
}

/** A harness sandbox with a vault profile against `vault` (from startVault). */
export function vaultSandbox(h, name, vault) {
  const sb = h.sandbox(name);
  sb.writeConfig({
    profiles: { default: { source: { type: 'vault', path: 'secret/llm', field: 'token' } } },
  });
  sb.env = { ...sb.env, VAULT_ADDR: vault.url, VAULT_TOKEN: vault.rootToken };
  return sb;
}

/** `keybroker ARGS` as Claude Code runs it (the harness adds /bin/sh -c and a fresh caller). */
export function kb(h, args = '') {
  return `${q(process.execPath)} ${q(h.bin)}${args ? ` ${args}` : ''}`;
}

/** Peak resident set (KiB) of the largest process of one run, from /usr/bin/time; undefined without it. */
export function peakRssKb(cmd, env) {
  if (!fs.existsSync('/usr/bin/time')) return undefined;
  const r = spawnSync('/usr/bin/time', ['-f', 'maxrss=%M', 'timeout', '120', '/bin/sh', '-c', cmd], {
    env,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const m = /maxrss=(\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${cmd} exited ${r.status}: ${r.stderr.slice(0, 300)}`);
  return Number(m[1]);
}

/** Merges figures into dist/bench-extra.json (figures that are not timing ratios). */
export function recordExtra(name, figures) {
  const file = path.join(root, 'dist', 'bench-extra.json');
  let all = {};
  try {
    all = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    // first figure
  }
  all[name] = { ...figures, node: process.version, at: new Date().toISOString() };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
