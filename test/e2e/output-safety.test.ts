/**
 * Issue 11 findings 8 and 9 (contract §7): what keybroker shows a person never carries a URL
 * password, text a server sent never reaches the terminal with its control characters, and a
 * token is never shown beyond a quarter of it. Each through dist/keybroker as a user runs it.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readAudit } from '../helpers/jwt-profile.js';
import { makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import { startVaultServer, type VaultServer, vaultAdmin } from '../servers/vault-server.js';

let sb: Sandbox;
afterEach(() => sb?.cleanup());

async function refusedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

describe('finding 8: a password in a URL is redacted everywhere', () => {
  const PASSWORD = 'pa55-URL-secret-8';

  it('token path error line, --debug, audit log, status, doctor, doctor --probe and config show', async () => {
    sb = makeSandbox();
    const port = await refusedPort();
    const address = `http://alice:${PASSWORD}@127.0.0.1:${port}`;
    const shown = `http://alice:***@127.0.0.1:${port}`;
    sb.writeConfig({
      profiles: { default: { source: { type: 'vault', address, path: 'secret/llm', field: 'token' } } },
    });
    const env = { VAULT_TOKEN: 'hvs.not-a-secret-here' };

    const token = await runKeybroker([], sb, { env });
    expect(token.code).toBe(3);
    expect(token.stdout).toBe('');
    expect(token.stderr).toBe(
      `keybroker: vault at ${shown}: connection refused (check VAULT_ADDR (or the profile's address) and that Vault is running and reachable; run keybroker explain ERR_VAULT_UNREACHABLE)\n`,
    );
    // --refresh: the first run's failure holds plain runs off the source for a few seconds.
    const debug = await runKeybroker(['--debug', '--refresh'], sb, { env });
    expect(debug.code).toBe(3);
    expect(debug.stderr).toContain(`keybroker: vault at ${shown}: connection refused`);
    expect(debug.stderr).toMatch(
      new RegExp(
        `debug .*fetching from vault kv secret/llm field=token at ${shown.replace(/[.*?]/g, '\\$&')}`,
      ),
    );

    const audit = readAudit(sb);
    expect(audit.map((a) => a.error)).toEqual([
      `ERR_VAULT_UNREACHABLE: vault at ${shown}: connection refused`,
      `ERR_VAULT_UNREACHABLE: vault at ${shown}: connection refused`,
    ]);

    const status = await runKeybroker(['status'], sb, { env });
    expect(status.stdout).toContain(`  source: vault kv secret/llm field=token at ${shown} (auth token)\n`);
    const statusJson = await runKeybroker(['status', '--json'], sb, { env });
    expect(JSON.parse(statusJson.stdout).profiles[0].source.description).toBe(
      `vault kv secret/llm field=token at ${shown} (auth token)`,
    );
    const doctor = await runKeybroker(['doctor'], sb, { env, cwd: sb.dir });
    expect(doctor.stdout).toContain(
      `[ok  ] source.address: Vault at ${shown} (contacted only with --probe)\n`,
    );
    const probe = await runKeybroker(['doctor', '--probe', '--json'], sb, { env, cwd: sb.dir });
    const checks = JSON.parse(probe.stdout).checks as { id: string; message: string }[];
    expect(checks.find((c) => c.id === 'probe.vault')?.message).toBe(
      `Vault at ${shown} cannot be reached (ECONNREFUSED)`,
    );
    const show = await runKeybroker(['config', 'show'], sb, { env });
    expect(show.stdout).toContain(`/source/address = "${shown}"  (user)\n`);

    const everything = [token, debug, status, statusJson, doctor, probe, show]
      .flatMap((r) => [r.stdout, r.stderr])
      .concat(fs.readFileSync(path.join(sb.home, '.local/state/keybroker/audit.log'), 'utf8'));
    for (const text of everything) expect(text).not.toContain(PASSWORD);
  });

  it('a password in VAULT_ADDR (an environment default) is redacted the same way', async () => {
    sb = makeSandbox();
    const port = await refusedPort();
    sb.writeConfig({
      profiles: { default: { source: { type: 'vault', path: 'secret/llm', field: 'token' } } },
    });
    const env = { VAULT_TOKEN: 'hvs.x', VAULT_ADDR: `http://ops:${PASSWORD}@127.0.0.1:${port}` };
    const r = await runKeybroker([], sb, { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^keybroker: vault at http:\/\/ops:\*\*\*@127\.0\.0\.1:\d+: connection refused \(/,
    );
    expect(r.stderr).not.toContain(PASSWORD);
  });
});

describe('finding 9: server text is sanitized and a probed token shows at most a quarter', () => {
  let vault: VaultServer;
  beforeAll(async () => {
    vault = await startVaultServer();
    // 13 characters: the old redaction showed 8 of them.
    await vaultAdmin(vault.url, vault.rootToken).putKv('secret', 2, 'llm', { token: 'Q7x-13-chars!' });
  });
  afterAll(() => vault?.close());

  it('doctor --probe: a Vault health version with OSC title and colour codes reaches no terminal', async () => {
    sb = makeSandbox();
    sb.writeConfig({
      profiles: {
        default: { source: { type: 'vault', address: vault.url, path: 'secret/llm', field: 'token' } },
      },
    });
    vault.faults.push({
      kind: 'wrong-shape',
      match: 'sys/health',
      body: {
        initialized: true,
        sealed: false,
        version: '\x1b]0;pwned\x07\x1b[31m1.18.0\x1b[0m\n[ok  ] forged',
      },
    });
    try {
      const env = { VAULT_TOKEN: vault.rootToken };
      const text = await runKeybroker(['doctor', '--probe'], sb, { env, cwd: sb.dir });
      expect(text.stdout).toContain(
        `[ok  ] probe.vault: Vault at ${vault.url} answers (HTTP 200, version ?]0;pwned??[31m1.18.0?[0m?[ok  ] forged)\n`,
      );
      expect(text.stdout).toContain('[ok  ] probe: fetched a token from vault in ');
      expect(text.stdout).toMatch(/ ms: Q…! \(13 chars\)\n/);
      expect(text.stdout).toContain('  token:       Q…! (13 chars)\n');
      const json = await runKeybroker(['doctor', '--probe', '--json'], sb, { env, cwd: sb.dir });
      const report = JSON.parse(json.stdout);
      expect(report.probe.token).toBe('Q…! (13 chars)');
      expect(report.checks.find((c: { id: string }) => c.id === 'probe.vault').message).toBe(
        `Vault at ${vault.url} answers (HTTP 200, version ?]0;pwned??[31m1.18.0?[0m?[ok  ] forged)`,
      );
      for (const r of [text, json]) {
        expect(r.stdout + r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
        expect(r.stdout).not.toContain('Q7x-');
      }
    } finally {
      vault.faults = [];
    }
  });
});
