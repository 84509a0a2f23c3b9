/**
 * The OS keychain end to end through dist/keybroker (run via /bin/sh as Claude Code runs it)
 * against a real Secret Service: `keychain set|delete`, the keychain source, a JWT signing key
 * kept in the keychain, `cache.storage: "keychain"`, and an absent keyring daemon.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { jwtVerify } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BIN,
  CLAUDE_CODE_ENV,
  makeSandbox,
  runKeybroker,
  runShell,
  type Sandbox,
  shq,
} from '../helpers/run.js';
import {
  type BareBus,
  type SecretServiceSession,
  secretServiceSuite,
  startBusWithoutSecretService,
  startSecretService,
} from '../helpers/secret-service.js';
import { startVaultServer, vaultAdmin } from '../servers/vault-server.js';

const suite = secretServiceSuite('keychain end to end on a real Secret Service');
const USER = os.userInfo().username;
const UNAVAILABLE_HINT =
  '(start a Secret Service in your session (gnome-keyring-daemon, KWallet or KeePassXC) and unlock it, or set cache.storage to "file" or "none"; run keybroker explain ERR_KEYCHAIN_UNAVAILABLE)';
const UNCACHED_WARNING =
  'keybroker: warning: cache.storage is "keychain" but the keychain cannot be used (ERR_KEYCHAIN_UNAVAILABLE); working uncached (unlock the keychain or set cache.storage)\n';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(() => sb.cleanup());

/** Pipes `input` into `keybroker <args>` (the only way a value reaches `keychain set`). */
function pipeInto(input: string, args: string[], env: Record<string, string>) {
  return runShell(`printf %s ${shq(input)} | ${[shq(BIN), ...args.map(shq)].join(' ')}`, sb, { env });
}

/** Every file under the cache directory that holds `secret` (there must be none). */
function filesHolding(secret: string): string[] {
  if (!fs.existsSync(sb.cacheDir)) return [];
  return fs
    .readdirSync(sb.cacheDir)
    .filter((f) => fs.readFileSync(path.join(sb.cacheDir, f), 'utf8').includes(secret));
}
const entryFiles = () =>
  fs.existsSync(sb.cacheDir) ? fs.readdirSync(sb.cacheDir).filter((f) => f.endsWith('.json')) : [];

const keychainProfile = (service: string, extra: Record<string, unknown> = {}) => ({
  profiles: { default: { source: { type: 'keychain', service, ...extra } } },
});

describe.skipIf(suite.skip)(suite.title, () => {
  let ss: SecretServiceSession;
  let env: Record<string, string>;
  beforeAll(async () => {
    ss = await startSecretService();
    env = { DBUS_SESSION_BUS_ADDRESS: ss.address, XDG_RUNTIME_DIR: ss.env.XDG_RUNTIME_DIR! };
  });
  afterAll(async () => {
    await ss?.stop();
  });

  describe('keychain set | delete', () => {
    it('set stores the value from stdin, trimming one trailing newline, where secret-tool finds it', async () => {
      const r = await pipeInto(
        'tok-set\n\n',
        ['keychain', 'set', '--service', 'cli-set', '--account', 'amy'],
        env,
      );
      expect(r).toMatchObject({
        code: 0,
        stdout: '',
        stderr: 'keybroker: stored keychain item service=cli-set account=amy (secret-service)\n',
      });
      expect(await ss.secretTool(['lookup', 'service', 'cli-set', 'account', 'amy'])).toMatchObject({
        code: 0,
        stdout: 'tok-set\n',
      });
    });

    it('set defaults the account to the login name, like the source', async () => {
      const r = await pipeInto('tok-user\n', ['keychain', 'set', '--service', 'cli-user'], env);
      expect(r.stderr).toBe(
        `keybroker: stored keychain item service=cli-user account=${USER} (secret-service)\n`,
      );
      expect((await ss.secretTool(['lookup', 'service', 'cli-user', 'account', USER])).stdout).toBe(
        'tok-user',
      );
    });

    it('set on a terminal asks with a prompt that does not echo the value', async () => {
      // `script` gives keybroker a pseudo-terminal; we type only once the prompt is shown.
      const command = [shq(BIN), 'keychain', 'set', '--service', 'cli-tty', '--account', 'amy'].join(' ');
      const child = spawn('script', ['-qec', command, '/dev/null'], {
        env: { ...sb.env, ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let screen = '';
      let typed = false;
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        screen += d;
        if (!typed && screen.includes('(input hidden): ')) {
          typed = true;
          child.stdin.write('typed-secret\r');
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
      expect(screen).toBe(
        'keybroker: value for service=cli-tty account=amy (input hidden): \r\n' +
          'keybroker: stored keychain item service=cli-tty account=amy (secret-service)\r\n',
      );
      expect((await ss.secretTool(['lookup', 'service', 'cli-tty', 'account', 'amy'])).stdout).toBe(
        'typed-secret',
      );
    });

    it('set refuses an empty value (exit 2) and stores nothing', async () => {
      const r = await pipeInto('\n', ['keychain', 'set', '--service', 'cli-empty', '--account', 'amy'], env);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        'keybroker: keychain set service=cli-empty account=amy: the value is empty (pipe the value on stdin, e.g. printf %s "$TOKEN" | keybroker keychain set --service cli-empty --account amy; run keybroker explain ERR_KEYCHAIN_EMPTY_VALUE)\n',
      );
      expect((await ss.secretTool(['lookup', 'service', 'cli-empty', 'account', 'amy'])).code).not.toBe(0);
    });

    it('takes no value from a flag', async () => {
      const r = await pipeInto(
        'x',
        ['keychain', 'set', '--service', 'cli-flag', '--account', 'amy', '--value', 'leaked'],
        env,
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('keybroker: usage: Unknown argument: value (run keybroker --help)\n');
    });

    it('delete removes the item (secret-tool no longer finds it); a second delete is exit 5', async () => {
      await ss.secretTool(['store', '--label=L', 'service', 'cli-del', 'account', 'amy'], 'gone-soon');
      const r = await runKeybroker(['keychain', 'delete', '--service', 'cli-del', '--account', 'amy'], sb, {
        env,
      });
      expect(r).toMatchObject({
        code: 0,
        stdout: '',
        stderr: 'keybroker: deleted keychain item service=cli-del account=amy (secret-service)\n',
      });
      expect((await ss.secretTool(['lookup', 'service', 'cli-del', 'account', 'amy'])).code).not.toBe(0);
      const again = await runKeybroker(
        ['keychain', 'delete', '--service', 'cli-del', '--account', 'amy'],
        sb,
        { env },
      );
      expect(again.code).toBe(5);
      expect(again.stderr).toBe(
        'keybroker: keychain item service=cli-del account=amy: not found (check --service and --account; run keybroker explain ERR_KEYCHAIN_ITEM_MISSING)\n',
      );
    });

    it('finding 16: set replaces only keybroker/keytar/keyring-rs items, never a mail client’s', async () => {
      // (secret-tool itself replaces items whose attributes include the new one's: mail items last.)
      await ss.secretTool(['store', '--label=keytar', 'service', 'cli-f16', 'account', 'amy'], 'old-keytar');
      await ss.secretTool(['store', '--label=rs', 'service', 'cli-f16', 'username', 'amy'], 'old-rs');
      const mail = ['service', 'cli-f16', 'account', 'amy', 'server', 'mail.example'];
      await ss.secretTool(['store', '--label=Mail', ...mail], 'mail-password');
      // Every attribute keybroker writes, and one more: still not keybroker's.
      const mail2 = ['service', 'cli-f16', 'account', 'amy', 'username', 'amy', 'server', 'imap.example'];
      await ss.secretTool(['store', '--label=Mail2', ...mail2], 'mail2-password');
      const r = await pipeInto(
        'tok-f16\n',
        ['keychain', 'set', '--service', 'cli-f16', '--account', 'amy'],
        env,
      );
      expect(r).toMatchObject({
        code: 0,
        stdout: '',
        stderr: 'keybroker: stored keychain item service=cli-f16 account=amy (secret-service)\n',
      });
      expect(await ss.secretTool(['lookup', ...mail])).toMatchObject({ code: 0, stdout: 'mail-password' });
      expect(await ss.secretTool(['lookup', ...mail2])).toMatchObject({ code: 0, stdout: 'mail2-password' });
      const all = await ss.secretTool(['search', '--all', 'service', 'cli-f16']);
      expect(all.stdout.match(/^secret = .*$/gm)?.sort()).toEqual([
        'secret = mail-password',
        'secret = mail2-password',
        'secret = tok-f16',
      ]);
      // The source reads keybroker's item, never the mail client's.
      sb.writeConfig(keychainProfile('cli-f16', { account: 'amy' }));
      const token = await runKeybroker(['--no-cache'], sb, { env });
      expect(token).toMatchObject({ code: 0, stdout: 'tok-f16\n', stderr: '' });
    });

    it('finding 16: delete leaves an item with extra attributes alone (exit 5 when it is the only one)', async () => {
      const mail = ['service', 'cli-f16d', 'account', 'amy', 'server', 'mail.example'];
      await ss.secretTool(['store', '--label=Mail', ...mail], 'mail-password');
      const r = await runKeybroker(['keychain', 'delete', '--service', 'cli-f16d', '--account', 'amy'], sb, {
        env,
      });
      expect(r.code).toBe(5);
      expect(r.stderr).toBe(
        'keybroker: keychain item service=cli-f16d account=amy: not found (check --service and --account; run keybroker explain ERR_KEYCHAIN_ITEM_MISSING)\n',
      );
      expect(await ss.secretTool(['lookup', ...mail])).toMatchObject({ code: 0, stdout: 'mail-password' });
    });
  });

  describe('keychain source', () => {
    it('prints an item written by secret-tool with service + account', async () => {
      await ss.secretTool(
        ['store', '--label=Token', 'service', 'src-acct', 'account', 'bea'],
        'tok-from-secret-tool',
      );
      sb.writeConfig(keychainProfile('src-acct', { account: 'bea' }));
      const r = await runKeybroker([], sb, { env });
      expect(r).toMatchObject({ code: 0, stdout: 'tok-from-secret-tool\n', stderr: '' });
    });

    it('prints an item written by secret-tool with service + username (keyring-rs scheme)', async () => {
      await ss.secretTool(
        ['store', '--label=Token', 'service', 'src-user', 'username', USER],
        'tok-username',
      );
      sb.writeConfig(keychainProfile('src-user'));
      const r = await runKeybroker([], sb, { env });
      expect(r).toMatchObject({ code: 0, stdout: 'tok-username\n', stderr: '' });
    });

    it('prints an item stored by keychain set, the account defaulting to the login name', async () => {
      expect((await pipeInto('tok-roundtrip\n', ['keychain', 'set', '--service', 'src-set'], env)).code).toBe(
        0,
      );
      sb.writeConfig(keychainProfile('src-set'));
      const r = await runKeybroker(['--no-cache'], sb, { env });
      expect(r).toMatchObject({ code: 0, stdout: 'tok-roundtrip\n', stderr: '' });
    });

    it('a missing item is exit 5 naming service and account, nothing on stdout', async () => {
      sb.writeConfig(keychainProfile('src-missing', { account: 'cy' }));
      const r = await runKeybroker([], sb, { env });
      expect(r.code).toBe(5);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        'keybroker: keychain item service=src-missing account=cy: not found (store it with `keybroker keychain set --service src-missing --account cy`; run keybroker explain ERR_KEYCHAIN_ITEM_MISSING)\n',
      );
    });
  });

  it('mints a JWT with a signing key kept in the keychain', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const set = await pipeInto(pem, ['keychain', 'set', '--service', 'kb-jwt', '--account', 'signer'], env);
    expect(set.stderr).toBe(
      'keybroker: stored keychain item service=kb-jwt account=signer (secret-service)\n',
    );
    expect(set.code).toBe(0);
    sb.writeConfig({
      profiles: {
        default: {
          source: {
            type: 'jwt',
            signingKey: { keychain: { service: 'kb-jwt', account: 'signer' } },
            issuer: 'keybroker-test',
            audience: 'gateway',
          },
        },
      },
    });
    const r = await runKeybroker([], sb, { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { payload } = await jwtVerify(r.stdout.trim(), publicKey, {
      issuer: 'keybroker-test',
      audience: 'gateway',
    });
    expect(payload.sub).toBe(USER);
  });

  it('cache.storage "keychain" keeps the entry in the keychain, never in a file', async () => {
    await ss.secretTool(
      ['store', '--label=Token', 'service', 'cache-kc', 'account', 'dee'],
      'tok-cached-in-keychain',
    );
    sb.writeConfig({ ...keychainProfile('cache-kc', { account: 'dee' }), cache: { storage: 'keychain' } });
    const miss = await runKeybroker(['--json'], sb, { env });
    expect(miss.stderr).toBe('');
    expect(JSON.parse(miss.stdout)).toMatchObject({ token: 'tok-cached-in-keychain', cache: 'miss' });
    const items = await ss.secretTool(['search', '--all', 'service', 'keybroker-cache']);
    const account = /^attribute\.account = (default-[0-9a-f]{16})$/m.exec(items.stdout + items.stderr)?.[1];
    expect(account).toBeDefined();
    const stored = await ss.secretTool(['lookup', 'service', 'keybroker-cache', 'account', account!]);
    expect(JSON.parse(stored.stdout)).toMatchObject({ v: 1, key: account, token: 'tok-cached-in-keychain' });
    expect(entryFiles()).toEqual([]);
    expect(filesHolding('tok-cached-in-keychain')).toEqual([]);
    // The source item changes; a new caller within the TTL is served from the keychain cache.
    await ss.secretTool(['store', '--label=Token', 'service', 'cache-kc', 'account', 'dee'], 'tok-rotated');
    const hit = await runKeybroker(['--json'], sb, { env });
    expect(JSON.parse(hit.stdout)).toMatchObject({ token: 'tok-cached-in-keychain', cache: 'hit' });
  });

  it('cache clear removes a profile’s keychain entry and its source memos, and leaves other profiles alone', async () => {
    const vault = await startVaultServer();
    try {
      await vaultAdmin(vault.url, vault.rootToken).putKv('secret', 2, 'llm', { token: 'tok-from-vault' });
      const source = { type: 'vault', path: 'secret/llm', field: 'token' };
      sb.writeConfig({
        profiles: { 'kc-a': { source }, 'kc-b': { source } },
        cache: { storage: 'keychain' },
      });
      // Claude Code's calls, so the served records are kept
      const venv = { ...env, ...CLAUDE_CODE_ENV, VAULT_ADDR: vault.url, VAULT_TOKEN: vault.rootToken };
      for (const profile of ['kc-a', 'kc-b']) {
        const r = await runKeybroker(['--profile', profile], sb, { env: venv });
        expect(r).toMatchObject({ code: 0, stdout: 'tok-from-vault\n', stderr: '' });
      }
      const accounts = async () => {
        const found = await ss.secretTool(['search', '--all', 'service', 'keybroker-cache']);
        return [...(found.stdout + found.stderr).matchAll(/^attribute\.account = (.*kc-[ab]-.*)$/gm)]
          .map((m) => m[1]!.replace(/[0-9a-f]{16}/g, 'H'))
          .sort();
      };
      // Each profile: its entry, and the KV mount the vault source remembered.
      expect(await accounts()).toEqual(['blob:kc-a-H.memo-H', 'blob:kc-b-H.memo-H', 'kc-a-H', 'kc-b-H']);
      // In the cache directory only what records which token went to which Claude Code process.
      const files = () =>
        fs.readdirSync(sb.cacheDir).map((f) => f.replace(/[0-9a-f]{16}\.served-\d+-\d+$/, 'H.served'));
      expect(files().sort()).toEqual(['kc-a-H.served', 'kc-b-H.served']);
      expect(filesHolding('tok-from-vault')).toEqual([]);

      const clear = await runKeybroker(['cache', 'clear', '--profile', 'kc-a'], sb, { env: venv });
      expect(clear).toMatchObject({
        code: 0,
        stdout: `removed 1 cache file and 2 keychain items for profile kc-a in ${sb.cacheDir}\n`,
        stderr: '',
      });
      expect(await accounts()).toEqual(['blob:kc-b-H.memo-H', 'kc-b-H']);
      expect(files()).toEqual(['kc-b-H.served']);
      const again = await runKeybroker(['cache', 'clear', '--profile', 'kc-b'], sb, { env: venv });
      expect(again.stdout).toBe(
        `removed 1 cache file and 2 keychain items for profile kc-b in ${sb.cacheDir}\n`,
      );
      expect(files()).toEqual([]);
      expect(await accounts()).toEqual([]);
    } finally {
      await vault.close();
    }
  });
});

describe.skipIf(suite.skip)(`${suite.title}: keyring daemon absent`, () => {
  let bare: BareBus;
  let env: Record<string, string>;
  beforeAll(async () => {
    bare = await startBusWithoutSecretService();
    env = { DBUS_SESSION_BUS_ADDRESS: bare.address };
  });
  afterAll(async () => {
    await bare?.stop();
  });

  const absentLine = `keybroker: keychain (Secret Service): no Secret Service on the session bus (org.freedesktop.secrets is not provided) ${UNAVAILABLE_HINT}\n`;

  it('the keychain source is exit 3 with a hint; no fallback, no file written', async () => {
    sb.writeConfig(keychainProfile('absent', { account: 'eve' }));
    const r = await runKeybroker([], sb, { env });
    expect(r).toMatchObject({ code: 3, stdout: '', stderr: absentLine });
    expect(entryFiles()).toEqual([]);
  });

  it('without any session bus the keychain source is exit 3 too', async () => {
    sb.writeConfig(keychainProfile('absent', { account: 'eve' }));
    const r = await runKeybroker([], sb, {
      env: { DBUS_SESSION_BUS_ADDRESS: undefined, XDG_RUNTIME_DIR: sb.dir },
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `keybroker: keychain (Secret Service): no session bus (DBUS_SESSION_BUS_ADDRESS is unset) ${UNAVAILABLE_HINT}\n`,
    );
  });

  it('a session bus that never answers: exit 3 within the profile timeout, no hang', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    const socketPath = path.join(sb.dir, 'mute-bus');
    await new Promise<void>((r) => server.listen(socketPath, r));
    try {
      sb.writeConfig({
        profiles: {
          default: { timeoutMs: 1000, source: { type: 'keychain', service: 'mute', account: 'eve' } },
        },
      });
      const r = await runKeybroker([], sb, {
        env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=${socketPath}` },
        killAfterMs: 20_000,
      });
      expect(r.signal).toBeNull();
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        new RegExp(
          `^keybroker: keychain \\(Secret Service\\): no answer within \\d+ ms ${UNAVAILABLE_HINT.replace(/[()\\[\]$.^*+?|{}]/g, '\\$&')}\n$`,
        ),
      );
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  it('keychain set is exit 3 and stores nothing anywhere', async () => {
    const r = await pipeInto(
      'tok-nowhere',
      ['keychain', 'set', '--service', 'absent', '--account', 'eve'],
      env,
    );
    expect(r).toMatchObject({ code: 3, stdout: '', stderr: absentLine });
    expect(filesHolding('tok-nowhere')).toEqual([]);
  });

  it('cache.storage "keychain" works uncached and warns, writing no cache file', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = path.join(sb.home, 'key.pem');
    fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    sb.writeConfig({
      profiles: { default: { source: { type: 'jwt', signingKey: { file: keyFile }, audience: 'gateway' } } },
      cache: { storage: 'keychain' },
    });
    const a = await runKeybroker([], sb, { env });
    expect(a.code).toBe(0);
    expect(a.stderr).toBe(UNCACHED_WARNING);
    const b = await runKeybroker([], sb, { env });
    expect(b.code).toBe(0);
    expect(b.stderr).toBe(UNCACHED_WARNING);
    // Uncached: each run mints anew.
    expect(b.stdout).not.toBe(a.stdout);
    expect(entryFiles()).toEqual([]);
    expect(filesHolding(a.stdout.trim())).toEqual([]);
  });
});

describe.skipIf(suite.skip)(`${suite.title}: locked keyring`, () => {
  let ss: SecretServiceSession;
  let env: Record<string, string>;
  beforeAll(async () => {
    ss = await startSecretService();
    env = { DBUS_SESSION_BUS_ADDRESS: ss.address };
    await ss.secretTool(['store', '--label=Token', 'service', 'locked-src', 'account', 'fay'], 'tok-locked');
    const r = await ss.dbusSend([
      '--print-reply',
      '--dest=org.freedesktop.secrets',
      '/org/freedesktop/secrets',
      'org.freedesktop.Secret.Service.Lock',
      'array:objpath:/org/freedesktop/secrets/collection/login',
    ]);
    if (r.code !== 0) throw new Error(`could not lock the test keyring: ${r.stderr}`);
  });
  afterAll(async () => {
    await ss?.stop();
  });

  it('the keychain source is exit 3 with how to unlock it, and never prompts', async () => {
    sb.writeConfig(keychainProfile('locked-src', { account: 'fay' }));
    const r = await runKeybroker([], sb, { env });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'keybroker: keychain (Secret Service): the item service=locked-src account=fay is locked (unlock it (log in to the desktop session, or unlock the login keyring in "Passwords and Keys"), or set cache.storage to "file" or "none"; run keybroker explain ERR_KEYCHAIN_LOCKED)\n',
    );
    // Still locked: nothing unlocked it behind our back.
    const search = await ss.secretTool(['search', 'service', 'locked-src']);
    expect(search.stdout).not.toContain('tok-locked');
  });
});
