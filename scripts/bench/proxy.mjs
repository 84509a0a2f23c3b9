// Bench module (scripts/bench.mjs): a cold Vault fetch (`keybroker --no-cache`) through a local
// tinyproxy (a CONNECT tunnel per connection, HTTP_PROXY) against the same fetch direct; the
// ratio is the cost of the proxy hop on this machine. Run alone:
// `node scripts/bench.mjs --only 'through a local proxy'`. Skipped when tinyproxy is missing.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { kb, startVault, vaultSandbox } from './lib/fixtures.mjs';

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const accepts = (port) =>
  new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port }, () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });

async function startTinyproxy(dir) {
  const port = await freePort();
  const conf = path.join(dir, 'tinyproxy.conf');
  fs.writeFileSync(
    conf,
    `Port ${port}\nListen 127.0.0.1\nTimeout 30\nLogFile "${path.join(dir, 'access.log')}"\nLogLevel Info\nMaxClients 100\nAllow 127.0.0.1\n`,
  );
  const child = spawn('tinyproxy', ['-d', '-c', conf], { stdio: 'ignore' });
  await new Promise((resolve, reject) => {
    child.once('error', reject);
    setTimeout(resolve, 0);
  });
  for (let i = 0; i < 200 && !(await accepts(port)); i++) await new Promise((r) => setTimeout(r, 50));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

export default async function proxyBench(h) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-bench-proxy-'));
  const vault = await startVault(dir);
  const proxy = await startTinyproxy(dir);
  const v = vaultSandbox(h, 'vault-proxy', vault);
  try {
    h.compare('cold Vault fetch through a local proxy vs direct', {
      a: {
        label: 'keybroker --no-cache (vault kv, HTTP_PROXY)',
        cmd: kb(h, '--no-cache'),
        env: { ...v.env, HTTP_PROXY: proxy.url },
      },
      b: { label: 'keybroker --no-cache (vault kv, direct)', cmd: kb(h, '--no-cache'), env: v.env },
    });
  } finally {
    proxy.stop();
    vault.stop();
    v.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
