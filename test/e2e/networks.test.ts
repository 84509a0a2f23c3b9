/**
 * Company networks (contract §3a, issue 13; issue 11 findings 2, 12b, 14, 15) through
 * dist/keybroker: the OS trust store (a CA only in a temporary SSL_CERT_FILE), a real proxy
 * (Debian's tinyproxy, started here on 127.0.0.1 with its own config and access log),
 * NO_PROXY, a proxy that is down or asks for credentials, and Vault redirects.
 *
 * The Vault and Secrets Manager test servers serve https with a CA made here, so a CONNECT
 * in the proxy's log is the only way a request can have reached them through it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readAudit } from '../helpers/jwt-profile.js';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import { freePort, startTinyproxy, type Tinyproxy } from '../helpers/tinyproxy.js';
import {
  DEFAULT_CREDENTIALS,
  type SecretsManagerServer,
  startSecretsManagerServer,
} from '../servers/secrets-manager-server.js';
import { makeTestCa, startVaultServer, type VaultServer, vaultAdmin } from '../servers/vault-server.js';

const TOKEN = 'sk-ant-api03-e2e-networks-VAULT-0001';
const AWS_TOKEN = 'sk-ant-api03-e2e-networks-AWS-0002';
const PROXY_USER = 'kbproxy';
const PROXY_PASSWORD = 'pw-Proxy-7f3a9c2e';

let dir: string;
let ca: ReturnType<typeof makeTestCa>;
let vault: VaultServer;
let sm: SecretsManagerServer;
let readerToken: string;
let proxy: Tinyproxy;
let authProxy: Tinyproxy;
let sb: Sandbox;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hostPort = (url: string) => new URL(url).host;
const untrustedLine = (url: string) =>
  `keybroker: TLS to ${hostPort(url)}: the certificate is signed by issuer CN=keybroker test CA, which is not trusted (install that CA in the system trust store or set the profile's caCert to its PEM file; run keybroker explain ERR_TLS_UNTRUSTED)\n`;

const vaultProfile = (over: Record<string, unknown> = {}) => ({
  source: {
    type: 'vault',
    address: vault.url,
    path: 'secret/llm',
    field: 'token',
    auth: { method: 'token' },
  },
  ...over,
});
const awsProfile = (over: Record<string, unknown> = {}) => ({
  source: { type: 'aws-secrets-manager', secretId: 'llm', region: 'us-east-1', endpoint: sm.url },
  ...over,
});
const awsEnv = {
  AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIALS.secretAccessKey,
  AWS_EC2_METADATA_DISABLED: 'true',
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'kb-net-'));
  ca = makeTestCa(dir);
  vault = await startVaultServer({ tls: { key: ca.key, cert: ca.cert } });
  const admin = vaultAdmin(vault.url, vault.rootToken, { ca: ca.caPem });
  await admin.putKv('secret', 2, 'llm', { token: TOKEN });
  await admin.putPolicy('reader', 'path "secret/*" { capabilities = ["read"] }');
  readerToken = await admin.createToken(['reader']);
  sm = await startSecretsManagerServer({ region: 'us-east-1', tls: { key: ca.key, cert: ca.cert } });
  sm.putSecret('llm', AWS_TOKEN);
  proxy = await startTinyproxy(path.join(dir, 'proxy'));
  authProxy = await startTinyproxy(path.join(dir, 'auth-proxy'), {
    basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD },
  });
});
afterAll(async () => {
  await proxy?.stop();
  await authProxy?.stop();
  await vault?.close();
  await sm?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  vault.faults = [];
  // The test CA is trusted only through SSL_CERT_FILE, as a CA installed in the OS store.
  sb = makeSandbox({ SSL_CERT_FILE: ca.caFile, VAULT_TOKEN: readerToken, ...awsEnv });
});
afterEach(() => sb.cleanup());

describe('trust store', () => {
  it('a CA found only in SSL_CERT_FILE is trusted with no caCert (Vault and AWS)', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile(), aws: awsProfile() } });
    expect(await runKeybroker([], sb)).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(await runKeybroker(['--profile', 'aws'], sb)).toMatchObject({
      code: 0,
      stdout: `${AWS_TOKEN}\n`,
      stderr: '',
    });
  });

  it('without SSL_CERT_FILE the server is untrusted: exit 3 ERR_TLS_UNTRUSTED naming host and issuer', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile() } });
    expect(await runKeybroker([], sb, { env: { SSL_CERT_FILE: undefined } })).toEqual(
      expect.objectContaining({
        code: 3,
        stdout: '',
        stderr: untrustedLine(vault.url),
      }),
    );
  });

  it('caCert still adds to the store', async () => {
    sb.writeConfig({
      profiles: { default: vaultProfile({ source: { ...vaultProfile().source, caCert: ca.caFile } }) },
    });
    expect(await runKeybroker([], sb, { env: { SSL_CERT_FILE: '/nonexistent/ca.pem' } })).toMatchObject({
      code: 0,
      stdout: `${TOKEN}\n`,
    });
  });

  it('finding 14: NODE_TLS_REJECT_UNAUTHORIZED=0 turns off no check, for AWS or Vault, and prints no Node warning', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile(), aws: awsProfile() } });
    const env = { SSL_CERT_FILE: undefined, NODE_TLS_REJECT_UNAUTHORIZED: '0' };
    expect(await runKeybroker([], sb, { env })).toMatchObject({
      code: 3,
      stdout: '',
      stderr: untrustedLine(vault.url),
    });
    const a = await runKeybroker(['--profile', 'aws'], sb, { env });
    expect(a).toMatchObject({
      code: 3,
      stdout: '',
      stderr: untrustedLine(sm.url),
    });
  });

  it('a cache hit does not load the trust store', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile() } });
    const miss = await runKeybroker(['--debug'], sb);
    expect(miss.code).toBe(0);
    expect(miss.stderr).toMatch(
      /net: trust store Node's bundled roots \(\d+\) \+ OS store: .*ca\.pem \(SSL_CERT_FILE\) \(1\)/,
    );
    const hit = await runKeybroker(['--debug'], sb);
    expect(hit).toMatchObject({ code: 0, stdout: `${TOKEN}\n` });
    expect(hit.stderr).not.toMatch(/trust store/);
    expect(readAudit(sb).map((x) => x.cache)).toEqual(['miss', 'hit']);
  });
});

describe('proxies (tinyproxy)', () => {
  it('HTTPS_PROXY: Vault and Secrets Manager are reached through CONNECT', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile(), aws: awsProfile() } });
    const env = { HTTPS_PROXY: proxy.url };
    const before = proxy.connects().length;
    expect(await runKeybroker([], sb, { env })).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(await runKeybroker(['--profile', 'aws'], sb, { env })).toMatchObject({
      code: 0,
      stdout: `${AWS_TOKEN}\n`,
      stderr: '',
    });
    const seen = proxy.connects().slice(before);
    expect(seen).toContain(hostPort(vault.url));
    expect(seen).toContain(hostPort(sm.url));
  });

  it('lower-case https_proxy and a "proxy" URL in the profile work too', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile(), aws: awsProfile({ proxy: proxy.url }) } });
    const before = proxy.connects().length;
    expect(await runKeybroker([], sb, { env: { https_proxy: proxy.url } })).toMatchObject({ code: 0 });
    expect(await runKeybroker(['--profile', 'aws'], sb)).toMatchObject({ code: 0, stdout: `${AWS_TOKEN}\n` });
    const seen = proxy.connects().slice(before);
    expect(seen.filter((h) => h === hostPort(vault.url))).toHaveLength(2);
    expect(seen).toContain(hostPort(sm.url));
  });

  it.each([
    ['the host', '127.0.0.1'],
    ['host:port', 'PORT'],
    ['a CIDR block', '127.0.0.0/8'],
    ['*', '*'],
  ])('NO_PROXY with %s sends the request direct', async (_what, entry) => {
    sb.writeConfig({ profiles: { default: vaultProfile() } });
    const noProxy = entry === 'PORT' ? `example.com,${hostPort(vault.url)}` : `.example.com, ${entry}`;
    const before = proxy.connects().length;
    expect(await runKeybroker([], sb, { env: { HTTPS_PROXY: proxy.url, NO_PROXY: noProxy } })).toMatchObject({
      code: 0,
      stdout: `${TOKEN}\n`,
      stderr: '',
    });
    expect(proxy.connects().slice(before)).toEqual([]);
  });

  it('"proxy": "none" in the profile ignores HTTPS_PROXY', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile({ proxy: 'none' }) } });
    const before = proxy.connects().length;
    expect(await runKeybroker([], sb, { env: { HTTPS_PROXY: proxy.url } })).toMatchObject({ code: 0 });
    expect(proxy.connects().slice(before)).toEqual([]);
  });

  it('a proxy that is down is exit 3 ERR_PROXY naming it; a cached token is still served (stale if error)', async () => {
    const downPort = await freePort();
    const down = `http://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${downPort}`;
    sb.writeConfig({ profiles: { default: vaultProfile() } });
    const cold = await runKeybroker([], sb, { env: { HTTPS_PROXY: down } });
    expect(cold).toEqual(
      expect.objectContaining({
        code: 3,
        stdout: '',
        stderr: `keybroker: proxy http://${PROXY_USER}:***@127.0.0.1:${downPort}/: connection refused (check HTTPS_PROXY (the proxy's address and credentials), or list the host in NO_PROXY if it must be reached directly; run keybroker explain ERR_PROXY)\n`,
      }),
    );
    const env = { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1500' };
    // The failure above opened a backoff window (contract §2: backoff whatever is cached), so
    // only --refresh asks Vault again at once.
    expect(await runKeybroker(['--refresh'], sb, { env })).toMatchObject({ code: 0, stdout: `${TOKEN}\n` });
    await sleep(1_700);
    const stale = await runKeybroker([], sb, { env: { ...env, HTTPS_PROXY: down } });
    expect(stale.code).toBe(0);
    expect(stale.stdout).toBe(`${TOKEN}\n`);
    expect(stale.stderr).toMatch(
      new RegExp(
        `^keybroker: warning: proxy http://${PROXY_USER}:\\*\\*\\*@127\\.0\\.0\\.1:${downPort}/: connection refused; printing the cached token fetched \\S+\\n$`,
      ),
    );
    expect(stale.stderr).not.toContain(PROXY_PASSWORD);
  });

  it('a proxy asking for credentials: without them ERR_PROXY (407); with them in the URL it works, and the password shows nowhere', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile() } });
    const refused = await runKeybroker([], sb, { env: { HTTPS_PROXY: authProxy.url } });
    expect(refused).toMatchObject({
      code: 3,
      stdout: '',
      stderr: `keybroker: proxy ${authProxy.url}/: asks for credentials (HTTP 407) to CONNECT ${hostPort(vault.url)} (check HTTPS_PROXY (the proxy's address and credentials), or list the host in NO_PROXY if it must be reached directly; run keybroker explain ERR_PROXY)\n`,
    });
    const withAuth = authProxy.url.replace('http://', `http://${PROXY_USER}:${PROXY_PASSWORD}@`);
    const before = authProxy.connects().length;
    // DEBUG=* would switch on the proxy library's `debug` logger, which prints the proxy URL.
    const ok = await runKeybroker(['--debug', '--refresh'], sb, {
      env: { HTTPS_PROXY: withAuth, DEBUG: '*' },
    });
    expect(ok).toMatchObject({ code: 0, stdout: `${TOKEN}\n` });
    expect(authProxy.connects().slice(before)).toContain(hostPort(vault.url));
    const doctor = await runKeybroker(['doctor', '--probe'], sb, { env: { HTTPS_PROXY: withAuth } });
    const status = await runKeybroker(['status'], sb, { env: { HTTPS_PROXY: withAuth } });
    const audit = fs.readFileSync(readAuditPath(sb), 'utf8');
    for (const text of [ok.stderr, doctor.stdout, doctor.stderr, status.stdout, status.stderr, audit]) {
      expect(text).not.toContain(PROXY_PASSWORD);
    }
  });

  it('finding 12b: an IP-address Vault over TLS through the proxy prints no Node warning', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile() } });
    expect(new URL(vault.url).hostname).toBe('127.0.0.1');
    expect(await runKeybroker([], sb, { env: { HTTPS_PROXY: proxy.url } })).toMatchObject({
      code: 0,
      stdout: `${TOKEN}\n`,
      stderr: '',
    });
  });
});

describe('doctor', () => {
  it('shows per source URL the proxy chosen and why, and the trust store; --probe the certificate and the proxy round trip', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile() } });
    const origin = new URL(vault.url).origin;
    const plain = await runKeybroker(['doctor'], sb, {
      env: { HTTPS_PROXY: proxy.url, NO_PROXY: 'example.com' },
    });
    expect(plain.stdout).toContain(`[ok  ] net.proxy: ${origin}: proxy ${proxy.url}/ (HTTPS_PROXY)\n`);
    expect(plain.stdout).toMatch(
      new RegExp(
        `\\[ok  \\] net\\.trust: ${origin.replace(/[.]/g, '\\.')}: Node's bundled roots \\(\\d+\\) \\+ OS store: .*ca\\.pem \\(SSL_CERT_FILE\\) \\(1\\)\\n`,
      ),
    );
    const direct = await runKeybroker(['doctor'], sb, {
      env: { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.0/8' },
    });
    expect(direct.stdout).toContain(`[ok  ] net.proxy: ${origin}: proxy none (NO_PROXY entry 127.0.0.0/8)\n`);
    const before = proxy.connects().length;
    const probed = await runKeybroker(['doctor', '--probe'], sb, { env: { HTTPS_PROXY: proxy.url } });
    expect(probed.stdout).toMatch(
      new RegExp(
        `\\[ok  \\] net\\.probe: ${origin.replace(/[.]/g, '\\.')}: certificate subject CN=127\\.0\\.0\\.1, issuer CN=keybroker test CA; round trip through proxy ${proxy.url.replace(/[.]/g, '\\.')}/ \\d+ ms\\n`,
      ),
    );
    expect(proxy.connects().slice(before)).toContain(hostPort(vault.url));
  });

  it('flags NODE_TLS_REJECT_UNAUTHORIZED=0', async () => {
    sb.writeConfig({ profiles: { default: vaultProfile() } });
    const r = await runKeybroker(['doctor'], sb, { env: { NODE_TLS_REJECT_UNAUTHORIZED: '0' } });
    expect(r.stdout).toContain(
      '[warn] net.tls: NODE_TLS_REJECT_UNAUTHORIZED=0 is set: keybroker ignores it, other Node programs do not\n',
    );
  });
});

describe('redirects (finding 2)', () => {
  it('a 307 to plain http is refused: exit 3, the token is not sent, nothing printed', async () => {
    const seen: { path: string; token: unknown }[] = [];
    const plain = http.createServer((req, res) => {
      seen.push({ path: req.url ?? '', token: req.headers['x-vault-token'] });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: { data: { token: 'sk-ant-STOLEN-over-plain-http' } } }));
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    try {
      vault.faults = [{ kind: 'redirect', to: plainUrl }];
      sb.writeConfig({ profiles: { default: vaultProfile() } });
      expect(await runKeybroker([], sb)).toMatchObject({
        code: 3,
        stdout: '',
        stderr: `keybroker: vault at ${vault.url}: answered HTTP 307 redirecting to ${plainUrl}; a redirect to plain http is refused (the token is not sent) (point VAULT_ADDR (or the profile's address) at the active node or at a load balancer, over https; run keybroker explain ERR_VAULT_REDIRECT)\n`,
      });
      expect(seen).toEqual([]);
    } finally {
      plain.close();
    }
  });

  it("a standby's 307 to an https active node is followed once; a second redirect is refused", async () => {
    const active = await startVaultServer({
      tls: { key: ca.key, cert: ca.cert },
      rootToken: vault.rootToken,
    });
    try {
      await vaultAdmin(active.url, active.rootToken, { ca: ca.caPem }).putKv('secret', 2, 'llm', {
        token: TOKEN,
      });
      vault.faults = [{ kind: 'redirect', to: active.url }];
      sb.writeConfig({ profiles: { default: vaultProfile() } });
      const env = { VAULT_TOKEN: vault.rootToken };
      expect(await runKeybroker([], sb, { env })).toMatchObject({
        code: 0,
        stdout: `${TOKEN}\n`,
        stderr: '',
      });
      expect(active.count('GET', 'secret/data/llm')).toBe(1);
      active.faults = [{ kind: 'redirect', to: vault.url }];
      expect(await runKeybroker(['--refresh'], sb, { env })).toMatchObject({
        code: 3,
        stdout: '',
        stderr: `keybroker: vault at ${active.url}: answered HTTP 307 redirecting to ${vault.url}; only one redirect is followed (point VAULT_ADDR (or the profile's address) at the active node or at a load balancer, over https; run keybroker explain ERR_VAULT_REDIRECT)\n`,
      });
    } finally {
      await active.close();
    }
  });

  it('any other redirect (302) is refused', async () => {
    vault.faults = [{ kind: 'redirect', to: 'https://127.0.0.1:9', status: 302 }];
    sb.writeConfig({ profiles: { default: vaultProfile() } });
    expect(await runKeybroker([], sb)).toMatchObject({
      code: 3,
      stdout: '',
      stderr: `keybroker: vault at ${vault.url}: answered HTTP 302 redirecting to https://127.0.0.1:9; keybroker follows only a 307 from a standby node (point VAULT_ADDR (or the profile's address) at the active node or at a load balancer, over https; run keybroker explain ERR_VAULT_REDIRECT)\n`,
    });
  });
});

describe('AWS endpoints (finding 15)', () => {
  const noEndpoint = () => ({
    source: { type: 'aws-secrets-manager', secretId: 'llm', region: 'us-east-1' },
    timeoutMs: 1500,
  });

  it('an http:// AWS_ENDPOINT_URL to another machine is refused with exit 2, before any request', async () => {
    sb.writeConfig({ profiles: { default: noEndpoint() } });
    expect(
      await runKeybroker([], sb, { env: { AWS_ENDPOINT_URL: 'http://user:pw-x@10.255.255.1:4566' } }),
    ).toMatchObject({
      code: 2,
      stdout: '',
      stderr:
        'keybroker: aws-secrets-manager: AWS_ENDPOINT_URL names http://10.255.255.1:4566, plain http to another machine (use an https:// endpoint, or name the endpoint in the config file (source.endpoint) if plain http is intended; run keybroker explain ERR_AWS_ENDPOINT_HTTP)\n',
    });
  });

  it('the same endpoint named in the config file is used; loopback http from the environment is too', async () => {
    sb.writeConfig({
      profiles: {
        default: {
          ...noEndpoint(),
          source: { ...noEndpoint().source, endpoint: 'http://10.255.255.1:4566' },
        },
      },
    });
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(3);
    expect(r.stderr).not.toContain('ERR_AWS_ENDPOINT_HTTP');
    const plain = await startSecretsManagerServer({ region: 'us-east-1' });
    try {
      plain.putSecret('llm', AWS_TOKEN);
      sb.writeConfig({ profiles: { default: noEndpoint() } });
      expect(await runKeybroker([], sb, { env: { AWS_ENDPOINT_URL: plain.url } })).toMatchObject({
        code: 0,
        stdout: `${AWS_TOKEN}\n`,
        stderr: '',
      });
    } finally {
      await plain.close();
    }
  });
});

describe('Vault cert auth (device certificate)', () => {
  let device: { certFile: string; keyFile: string; otherCert: string; otherKey: string };

  beforeAll(async () => {
    // A device CA that Vault's cert role trusts, a device certificate it issued, and one from
    // another CA, all made here with openssl.
    const d = path.join(dir, 'device');
    fs.mkdirSync(d);
    const run = (...args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    run('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=device CA', '-keyout', 'ca.key', '-out', 'ca.pem');
    run('req', ...ec, '-subj', '/CN=laptop-42', '-keyout', 'device.key', '-out', 'device.csr');
    run(
      'x509',
      '-req',
      '-in',
      'device.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      'device.pem',
    );
    run(
      'req',
      '-x509',
      ...ec,
      '-days',
      '2',
      '-subj',
      '/CN=stranger',
      '-keyout',
      'other.key',
      '-out',
      'other.pem',
    );
    for (const k of ['device.key', 'other.key']) fs.chmodSync(path.join(d, k), 0o600);
    device = {
      certFile: path.join(d, 'device.pem'),
      keyFile: path.join(d, 'device.key'),
      otherCert: path.join(d, 'other.pem'),
      otherKey: path.join(d, 'other.key'),
    };
    const admin = vaultAdmin(vault.url, vault.rootToken, { ca: ca.caPem });
    await admin.enableAuth('cert', 'cert');
    await admin.must('POST', 'auth/cert/certs/laptops', {
      certificate: fs.readFileSync(path.join(d, 'ca.pem'), 'utf8'),
      token_policies: ['reader'],
      token_ttl: '1h',
    });
  });

  const certProfile = (auth: Record<string, unknown>) => ({
    source: { ...vaultProfile().source, auth: { method: 'cert', ...auth } },
  });

  it('logs in with the device certificate, and the login token is kept for the next fetch', async () => {
    sb.writeConfig({
      profiles: {
        default: certProfile({ name: 'laptops', certFile: device.certFile, keyFile: device.keyFile }),
      },
    });
    // A short TTL, so that the second run fetches the secret again: with the kept login token.
    const env = { VAULT_TOKEN: undefined, CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1500' };
    const logins = () => vault.count('POST', 'auth/cert/login');
    const before = logins();
    expect(await runKeybroker([], sb, { env })).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(logins() - before).toBe(1);
    const reads = vault.count('GET', 'secret/data/llm');
    await sleep(1_700);
    expect(await runKeybroker([], sb, { env })).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: '' });
    expect(vault.count('GET', 'secret/data/llm')).toBeGreaterThan(reads);
    expect(logins() - before).toBe(1);
  });

  it('a certificate from another CA is refused: exit 4', async () => {
    sb.writeConfig({
      profiles: {
        default: certProfile({ name: 'laptops', certFile: device.otherCert, keyFile: device.otherKey }),
      },
    });
    const r = await runKeybroker([], sb, { env: { VAULT_TOKEN: undefined } });
    expect(r).toMatchObject({ code: 4, stdout: '' });
    expect(r.stderr).toMatch(
      /^keybroker: vault cert login: login refused \(HTTP 400\) \(check the role and the credential \(cert login at auth\/cert as laptops, certificate [^)]+other\.pem\); run keybroker explain ERR_VAULT_LOGIN_FAILED\)\n$/,
    );
  });

  it('a key file others can read is exit 6, before any request', async () => {
    const loose = path.join(sb.dir, 'loose.key');
    fs.copyFileSync(device.keyFile, loose);
    fs.chmodSync(loose, 0o644);
    sb.writeConfig({ profiles: { default: certProfile({ certFile: device.certFile, keyFile: loose }) } });
    const before = vault.requests.length;
    const r = await runKeybroker([], sb, { env: { VAULT_TOKEN: undefined } });
    expect(r).toMatchObject({ code: 6, stdout: '' });
    expect(r.stderr).toContain(loose);
    expect(vault.requests.length).toBe(before);
  });
});

function readAuditPath(s: Sandbox): string {
  return path.join(s.home, '.local', 'state', 'keybroker', 'audit.log');
}
