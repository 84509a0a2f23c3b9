/**
 * How the vault sources fail: sealed, 5xx, timeouts, refused connections, malformed answers
 * and TLS, each to its exit code and exact stderr line, never with a response body in it.
 * Fault injection needs the local server, so this file never uses a real Vault.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultSourceConfig } from '../../src/config/types.js';
import { createVaultSource } from '../../src/sources/vault.js';
import { makeTestCa, startVaultBackend, type VaultBackend } from '../servers/vault-server.js';
import { failure, request, tempDir, testDeps } from './vault-helpers.js';

let vault: VaultBackend;
let token: string;
const dir = tempDir();

beforeAll(async () => {
  vault = await startVaultBackend({ forceLocal: true });
  await vault.admin.putKv('secret', 2, 'llm', { token: 'the-secret-token' });
  await vault.admin.putPolicy('reader', 'path "secret/data/llm" { capabilities = ["read"] }');
  token = await vault.admin.createToken(['reader']);
});

afterAll(async () => {
  await vault?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const source = (over: Partial<VaultSourceConfig> = {}): VaultSourceConfig => ({
  type: 'vault',
  address: vault.address,
  auth: { method: 'token' },
  path: 'secret/llm',
  field: 'token',
  ...over,
});

const run = (over: Partial<VaultSourceConfig> = {}, req = request()) =>
  failure(createVaultSource(source(over), testDeps({ VAULT_TOKEN: token })).getToken(req));

/** The failure of a fetch that logs in with approle (secret id from the environment). */
const runApprole = (roleId: string, secretId: string) =>
  failure(
    createVaultSource(
      source({ auth: { method: 'approle', roleId, secretIdEnv: 'KB_SECRET_ID' } }),
      testDeps({ KB_SECRET_ID: secretId }),
    ).getToken(request()),
  );

const withFaults = async <T>(faults: NonNullable<VaultBackend['local']>['faults'], fn: () => Promise<T>) => {
  vault.local!.faults = faults;
  try {
    return await fn();
  } finally {
    vault.local!.faults = [];
  }
};

const hint = {
  unreachable:
    "check VAULT_ADDR (or the profile's address) and that Vault is running and reachable; run keybroker explain ERR_VAULT_UNREACHABLE",
  server:
    'retry later, and check that VAULT_ADDR points at a healthy Vault node; run keybroker explain ERR_VAULT_SERVER_ERROR',
  bad: 'check that VAULT_ADDR points at Vault itself and not at a proxy or login page; run keybroker explain ERR_VAULT_BAD_RESPONSE',
  timeout:
    "check VAULT_ADDR and the network, or raise the profile's timeoutMs; run keybroker explain ERR_VAULT_TIMEOUT",
};

describe('vault failures map to exit codes and one stderr line', () => {
  it('a sealed Vault is exit 3', async () => {
    vault.local!.sealed = true;
    try {
      expect(await run()).toEqual({
        exitCode: 3,
        code: 'ERR_VAULT_SEALED',
        line: `keybroker: vault at ${vault.address}: Vault is sealed (ask the Vault operators to unseal it, or point VAULT_ADDR at an unsealed node; run keybroker explain ERR_VAULT_SEALED)`,
      });
    } finally {
      vault.local!.sealed = false;
    }
  });

  it('a 500 is exit 3', async () => {
    const f = await withFaults([{ kind: 'status', status: 500, match: 'secret/data/llm' }], () => run());
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_SERVER_ERROR',
      line: `keybroker: vault kv secret/llm field token: Vault answered HTTP 500 (${hint.server})`,
    });
  });

  const rateLimited = (after: string) =>
    `keybroker: vault kv secret/llm field token: Vault's rate limit refused the request (HTTP 429${after}) (keybroker waits before asking again; if it persists, ask the Vault operators about the rate limit quota on secret/data/llm; run keybroker explain ERR_VAULT_RATE_LIMITED)`;

  it("a rate limit quota's 429 is exit 3 and carries its Retry-After to the broker", async () => {
    const f = await withFaults(
      [{ kind: 'status', status: 429, retryAfter: '120', match: 'secret/data/llm' }],
      () => run(),
    );
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_RATE_LIMITED',
      line: rateLimited(', Retry-After 120 s'),
      retryAfterSec: 120,
    });
  });

  it('a 429 without Retry-After leaves the wait to the backoff steps', async () => {
    const f = await withFaults([{ kind: 'status', status: 429, match: 'secret/data/llm' }], () => run());
    expect(f).toEqual({ exitCode: 3, code: 'ERR_VAULT_RATE_LIMITED', line: rateLimited('') });
  });

  it('a 503 with an HTTP-date Retry-After reports the seconds until that date', async () => {
    const before = Date.now();
    const at = new Date(Math.ceil(before / 1000) * 1000 + 90_000);
    const f = await withFaults(
      [{ kind: 'status', status: 503, retryAfter: at.toUTCString(), match: 'secret/data/llm' }],
      () => run(),
    );
    expect(f).toMatchObject({ exitCode: 3, code: 'ERR_VAULT_SERVER_ERROR' });
    expect(f.line).toBe(
      `keybroker: vault kv secret/llm field token: Vault answered HTTP 503 (${hint.server})`,
    );
    expect(f.retryAfterSec).toBeGreaterThanOrEqual(85);
    expect(f.retryAfterSec).toBeLessThanOrEqual(Math.ceil((at.getTime() - before) / 1000));
  });

  it('a Retry-After on a login refused by the rate limit reaches the broker too', async () => {
    // The quota refuses before the login is looked at: any role id and secret id will do.
    const [roleId, secretId] = ['role-rl', 'secret-rl'];
    const f = await withFaults(
      [{ kind: 'status', status: 429, retryAfter: '30', match: 'auth/approle/login' }],
      () => runApprole(roleId, secretId),
    );
    expect(f).toMatchObject({ exitCode: 3, code: 'ERR_VAULT_RATE_LIMITED', retryAfterSec: 30 });
  });

  it('another 4xx (400) on the read is exit 4, request refused', async () => {
    const f = await withFaults([{ kind: 'status', status: 400, match: 'secret/data/llm' }], () => run());
    expect(f).toEqual({
      exitCode: 4,
      code: 'ERR_VAULT_DENIED',
      line: `keybroker: vault kv secret/llm field token: request refused (HTTP 400) (the token (token from VAULT_TOKEN) may have expired, or its policy lacks read on secret/data/llm; run keybroker explain ERR_VAULT_DENIED)`,
    });
  });

  it('a 502 HTML page from a proxy is exit 3 without the page in the message', async () => {
    const f = await withFaults([{ kind: 'html', status: 502 }], () => run());
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_SERVER_ERROR',
      line: `keybroker: vault kv secret/llm field token: Vault answered HTTP 502 (${hint.server})`,
    });
  });

  it('a 200 HTML login page from a proxy is exit 3 (bad response), no body text', async () => {
    const f = await withFaults([{ kind: 'html', status: 200 }], () => run());
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_BAD_RESPONSE',
      line: `keybroker: vault kv secret/llm field token: the mount lookup answered without data (${hint.bad})`,
    });
    expect(f.line).not.toContain('SECRET-IN-HTML');
  });

  it('truncated JSON is exit 3 (bad response), no body text', async () => {
    const f = await withFaults([{ kind: 'truncated', match: 'secret/data/llm' }], () => run());
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_BAD_RESPONSE',
      line: `keybroker: vault kv secret/llm field token: the answer holds no data (${hint.bad})`,
    });
    expect(f.line).not.toContain('SECRET-IN-TRUNC');
  });

  it('a 200 without data.data is exit 3 (bad response)', async () => {
    const f = await withFaults(
      [{ kind: 'wrong-shape', body: { data: { value: 'x' } }, match: 'secret/data/llm' }],
      () => run(),
    );
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_BAD_RESPONSE',
      line: `keybroker: vault kv secret/llm field token: the answer holds no data.data (${hint.bad})`,
    });
  });

  it('a connection cut mid-answer is exit 3', async () => {
    const f = await withFaults([{ kind: 'reset', match: 'secret/data/llm' }], () => run());
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_UNREACHABLE',
      line: `keybroker: vault at ${vault.address}: connection closed before a complete answer (${hint.unreachable})`,
    });
  });

  it('a refused connection is exit 3 naming VAULT_ADDR', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const address = `http://127.0.0.1:${port}`;
    expect(await run({ address })).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_UNREACHABLE',
      line: `keybroker: vault at ${address}: connection refused (${hint.unreachable})`,
    });
  });

  it('no answer before the deadline is exit 3 (timeout)', async () => {
    const f = await withFaults([{ kind: 'hang' }], () => run({}, request({ deadlineMs: Date.now() + 400 })));
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_TIMEOUT',
      line: `keybroker: vault at ${vault.address}: no answer before the deadline (${hint.timeout})`,
    });
  });

  it('an aborted signal ends the request (timeout), even while the server hangs', async () => {
    const ac = new AbortController();
    const f = await withFaults([{ kind: 'hang' }], () => {
      setTimeout(() => ac.abort(), 200);
      return run({}, request({ signal: ac.signal, deadlineMs: Date.now() + 60_000 }));
    });
    expect([f.exitCode, f.code]).toEqual([3, 'ERR_VAULT_TIMEOUT']);
  });

  it('a deadline already passed makes no request', async () => {
    vault.local!.resetCounts();
    const f = await run({}, request({ deadlineMs: Date.now() - 1 }));
    expect([f.exitCode, f.code]).toEqual([3, 'ERR_VAULT_TIMEOUT']);
    expect(vault.local!.requests).toHaveLength(0);
  });

  it('a slow answer within the deadline succeeds', async () => {
    const got = await withFaults([{ kind: 'delay', ms: 150, times: 1 }], () =>
      createVaultSource(source(), testDeps({ VAULT_TOKEN: token })).getToken(request()),
    );
    expect(got.value).toBe('the-secret-token');
  });

  it('a login answer without a client token is exit 3 (bad response)', async () => {
    await vault.admin.enableAuth('approle', 'approle');
    const { roleId, secretId } = await vault.admin.approleRole('approle', 'r', ['reader']);
    const f = await withFaults(
      [{ kind: 'wrong-shape', body: { auth: null }, match: 'auth/approle/login' }],
      () => runApprole(roleId, secretId),
    );
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_VAULT_BAD_RESPONSE',
      line: `keybroker: vault approle login: the answer holds no client token (${hint.bad})`,
    });
  });

  it('an address that is not an http(s) URL is exit 2', async () => {
    expect(await run({ address: 'vault.example.com:8200' })).toEqual({
      exitCode: 2,
      code: 'ERR_VAULT_BAD_ADDRESS',
      line: 'keybroker: vault: address vault.example.com:8200 is not an http(s) URL (set VAULT_ADDR or source.address to a URL such as https://vault.example.com:8200; run keybroker explain ERR_VAULT_BAD_ADDRESS)',
    });
  });
});

describe('vault over TLS with a CA made in the test', () => {
  let tls: VaultBackend;
  let ca: ReturnType<typeof makeTestCa>;
  let tlsToken: string;

  beforeAll(async () => {
    ca = makeTestCa(dir);
    tls = await startVaultBackend({
      forceLocal: true,
      tls: { key: ca.key, cert: ca.cert },
      adminCa: ca.caPem,
    });
    await tls.admin.putKv('secret', 2, 'llm', { token: 'tls-token' });
    await tls.admin.putPolicy('reader', 'path "secret/data/llm" { capabilities = ["read"] }');
    tlsToken = await tls.admin.createToken(['reader']);
  });

  afterAll(async () => {
    await tls?.close();
  });

  const tlsSource = (over: Partial<VaultSourceConfig> = {}): VaultSourceConfig => ({
    ...source(),
    address: tls.address,
    ...over,
  });

  it('reads over https with caCert', async () => {
    const got = await createVaultSource(
      tlsSource({ caCert: ca.caFile }),
      testDeps({ VAULT_TOKEN: tlsToken }),
    ).getToken(request());
    expect(got.value).toBe('tls-token');
  });

  it('without the CA it is exit 3 ERR_TLS_UNTRUSTED naming the host and the issuer', async () => {
    const f = await failure(
      createVaultSource(tlsSource(), testDeps({ VAULT_TOKEN: tlsToken })).getToken(request()),
    );
    expect(f).toEqual({
      exitCode: 3,
      code: 'ERR_TLS_UNTRUSTED',
      line: `keybroker: TLS to ${tls.address.replace('https://', '')}: the certificate is signed by issuer CN=keybroker test CA, which is not trusted (install that CA in the system trust store or set the profile's caCert to its PEM file; run keybroker explain ERR_TLS_UNTRUSTED)`,
    });
  });

  it('tlsSkipVerify reads without the CA', async () => {
    const got = await createVaultSource(
      tlsSource({ tlsSkipVerify: true }),
      testDeps({ VAULT_TOKEN: tlsToken }),
    ).getToken(request());
    expect(got.value).toBe('tls-token');
  });

  it('a CA file that cannot be read is exit 2', async () => {
    const missing = `${dir}/missing-ca.pem`;
    const f = await failure(
      createVaultSource(tlsSource({ caCert: missing }), testDeps({ VAULT_TOKEN: tlsToken })).getToken(
        request(),
      ),
    );
    expect(f).toEqual({
      exitCode: 2,
      code: 'ERR_VAULT_CA_CERT',
      line: `keybroker: vault: cannot read the CA certificate ${missing} (ENOENT) (fix the profile's caCert or VAULT_CACERT; run keybroker explain ERR_VAULT_CA_CERT)`,
    });
  });

  it('plain http to the https port is exit 3', async () => {
    const f = await failure(
      createVaultSource(
        tlsSource({ address: tls.address.replace('https:', 'http:') }),
        testDeps({ VAULT_TOKEN: tlsToken }),
      ).getToken(request({ deadlineMs: Date.now() + 2000 })),
    );
    expect(f.exitCode).toBe(3);
  });
});
