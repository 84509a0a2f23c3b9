/**
 * The fetch half of src/net (NetClient.fetch, for openid-client's customFetch): the OS trust
 * store (a CA only in SSL_CERT_FILE), CONNECT through a real tinyproxy, no redirect followed,
 * and a proxy that is down explained as ERR_PROXY.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetClient } from '../../src/net/client.js';
import { freePort, startTinyproxy, type Tinyproxy } from '../helpers/tinyproxy.js';
import { makeTestCa, startVaultServer, type VaultServer } from '../servers/vault-server.js';

let dir: string;
let ca: ReturnType<typeof makeTestCa>;
let vault: VaultServer;
let proxy: Tinyproxy;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-net-fetch-'));
  ca = makeTestCa(dir);
  vault = await startVaultServer({ tls: { key: ca.key, cert: ca.cert } });
  proxy = await startTinyproxy(path.join(dir, 'proxy'));
});
afterAll(async () => {
  await proxy?.stop();
  await vault?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('NetClient.fetch', () => {
  it('trusts a CA from SSL_CERT_FILE and tunnels through HTTPS_PROXY', async () => {
    const net = createNetClient({
      env: { SSL_CERT_FILE: ca.caFile, HTTPS_PROXY: proxy.url },
      rejectUnauthorized: true,
    });
    const before = proxy.connects().length;
    const res = await net.fetch(`${vault.url}/v1/sys/health`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { sealed: boolean }).sealed).toBe(false);
    expect(proxy.connects().slice(before)).toEqual([new URL(vault.url).host]);
    net.close();
  });

  it('returns a redirect instead of following it', async () => {
    const net = createNetClient({ env: { SSL_CERT_FILE: ca.caFile }, rejectUnauthorized: true });
    vault.faults = [{ kind: 'redirect', to: 'http://127.0.0.1:9', times: 1 }];
    const res = await net.fetch(`${vault.url}/v1/sys/health`);
    expect([res.status, res.headers.get('location')]).toEqual([307, 'http://127.0.0.1:9/v1/sys/health']);
    net.close();
  });

  it('an untrusted server and a proxy that is down are explained', async () => {
    const url = `${vault.url}/v1/sys/health`;
    const untrusted = createNetClient({ env: {}, rejectUnauthorized: true });
    const e1 = await untrusted.fetch(url).catch((e: unknown) => e);
    expect(untrusted.explain(e1, url)?.code).toBe('ERR_TLS_UNTRUSTED');
    const port = await freePort();
    const down = createNetClient({
      env: { SSL_CERT_FILE: ca.caFile, HTTPS_PROXY: `http://u:secret-pw@127.0.0.1:${port}` },
      rejectUnauthorized: true,
    });
    const e2 = await down.fetch(url).catch((e: unknown) => e);
    const explained = down.explain(e2, url);
    expect([explained?.code, explained?.message]).toEqual([
      'ERR_PROXY',
      `proxy http://u:***@127.0.0.1:${port}/: connection refused`,
    ]);
  });
});
