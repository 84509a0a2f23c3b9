/**
 * Issue 11 finding 5: `NODE_DEBUG=https` (or http, http2, net, tls) made Node print
 * X-Vault-Token and an AppRole login's token on stderr. keybroker now refuses to contact a
 * source under such a NODE_DEBUG (exit 2 ERR_UNSAFE_DEBUG), in both stages: a cached token is
 * not printed either, so the answer does not depend on the cache.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { unsafeDebugSections } from '../../src/platform/node-debug.js';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import { startVaultServer, type VaultServer, vaultAdmin } from '../servers/vault-server.js';

const SECRET = 'sk-ant-api03-node-debug-0001';
let vault: VaultServer;
let sb: Sandbox;

beforeAll(async () => {
  vault = await startVaultServer();
  await vaultAdmin(vault.url, vault.rootToken).putKv('secret', 2, 'llm', { token: SECRET });
});
afterAll(async () => {
  await vault.close();
});
beforeEach(() => {
  vault.resetCounts();
  sb = makeSandbox({ VAULT_ADDR: vault.url, VAULT_TOKEN: vault.rootToken });
  sb.writeConfig({
    profiles: { default: { source: { type: 'vault', path: 'secret/llm', field: 'token' } } },
  });
});
afterEach(() => sb.cleanup());

const line = (sections: string) =>
  `keybroker: refusing to contact a source: NODE_DEBUG turns on ${sections}, whose debug output prints request headers, tokens included (unset NODE_DEBUG (keybroker --debug traces safely); run keybroker explain ERR_UNSAFE_DEBUG)\n`;

describe('finding 5: NODE_DEBUG naming http, https, http2, net or tls', () => {
  for (const [value, sections] of [
    ['https', 'https'],
    ['http', 'http'],
    ['fs,HTTP2', 'http2'],
    ['net,tls', 'net, tls'],
    ['*', 'http, https, http2, net, tls'],
    ['http*', 'http, https, http2'],
  ] as const) {
    it(`NODE_DEBUG=${value}: exit 2, one line, nothing on stdout, Vault never contacted`, async () => {
      const r = await runKeybroker([], sb, { env: { NODE_DEBUG: value } });
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
      // A wildcard also turns on Node's own module-loader trace before keybroker runs: ours is
      // the last line, and the only one when no wildcard is used.
      if (value.includes('*'))
        expect(r.stderr.slice(r.stderr.lastIndexOf('\n', r.stderr.length - 2) + 1)).toBe(line(sections));
      else expect(r.stderr).toBe(line(sections));
      expect(vault.count('GET', 'secret/data/llm')).toBe(0);
      expect(r.stderr).not.toContain(vault.rootToken);
    });
  }

  it('a cached token is not printed either (the first stage defers to the second)', async () => {
    expect(await runKeybroker([], sb)).toMatchObject({ code: 0, stdout: `${SECRET}\n` });
    const r = await runKeybroker([], sb, { env: { NODE_DEBUG: 'https' } });
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: line('https') });
  });

  it('NODE_DEBUG=fs,module (no network module) is fine', async () => {
    const r = await runKeybroker([], sb, { env: { NODE_DEBUG: 'fs,module' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${SECRET}\n`);
  });
});

describe('unsafeDebugSections matches as Node does', () => {
  it('comma-separated, case-insensitive, * a wildcard, whole names only', () => {
    expect(unsafeDebugSections(undefined)).toEqual([]);
    expect(unsafeDebugSections('')).toEqual([]);
    expect(unsafeDebugSections('httpx,nett,xtls')).toEqual([]);
    expect(unsafeDebugSections('TLS')).toEqual(['tls']);
    expect(unsafeDebugSections('h*s')).toEqual(['https']);
    expect(unsafeDebugSections('worker,*2')).toEqual(['http2']);
  });
});
