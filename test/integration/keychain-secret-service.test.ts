/**
 * The Linux keyring backend and the keychain cache store against a real Secret Service
 * (gnome-keyring-daemon on a private bus): interoperability with secret-tool (both attribute
 * schemes) and @napi-rs/keyring, locked and absent keyrings, the timeout bound.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Entry } from '@napi-rs/keyring';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeychainStore, KEYCHAIN_CACHE_SERVICE } from '../../src/cache/keychain-store.js';
import type { CacheEntry } from '../../src/cache/types.js';
import { formatErrorLine } from '../../src/errors.js';
import { type Keyring, openKeyring } from '../../src/platform/keyring.js';
import {
  type BareBus,
  rejection,
  type SecretServiceSession,
  secretServiceSuite,
  startBusWithoutSecretService,
  startSecretService,
} from '../helpers/secret-service.js';

const suite = secretServiceSuite('keyring on a real Secret Service');

const UNAVAILABLE_HINT =
  '(start a Secret Service in your session (gnome-keyring-daemon, KWallet or KeePassXC) and unlock it, or set cache.storage to "file" or "none"; run keybroker explain ERR_KEYCHAIN_UNAVAILABLE)';
const LOCKED_HINT =
  '(unlock it (log in to the desktop session, or unlock the login keyring in "Passwords and Keys"), or set cache.storage to "file" or "none"; run keybroker explain ERR_KEYCHAIN_LOCKED)';

describe.skipIf(suite.skip)(suite.title, () => {
  let ss: SecretServiceSession;
  let keyring: Keyring;
  const open = () => openKeyring({ env: ss.env, platform: 'linux', timeoutMs: 5000 });

  beforeAll(async () => {
    ss = await startSecretService();
    keyring = await open();
  });
  afterAll(async () => {
    await ss?.stop();
  });

  it('is the secret-service backend', () => {
    expect(keyring.backend).toBe('secret-service');
  });

  it('reads an item written by secret-tool with service + account (keytar scheme)', async () => {
    const r = await ss.secretTool(
      ['store', '--label=L', 'service', 'kb-st', 'account', 'alice'],
      'tok-account',
    );
    expect(r.code).toBe(0);
    expect(await keyring.get('kb-st', 'alice')).toBe('tok-account');
  });

  it('reads an item written by secret-tool with service + username (keyring-rs scheme)', async () => {
    const r = await ss.secretTool(
      ['store', '--label=L', 'service', 'kb-un', 'username', 'bob'],
      'tok-username',
    );
    expect(r.code).toBe(0);
    expect(await keyring.get('kb-un', 'bob')).toBe('tok-username');
  });

  it('returns undefined for an item that does not exist', async () => {
    expect(await keyring.get('kb-none', 'nobody')).toBeUndefined();
  });

  it('writes an item that secret-tool finds by account and by username, with the label', async () => {
    await keyring.set('kb-set', 'carol', 'tök€n value', 'my label');
    const byAccount = await ss.secretTool(['lookup', 'service', 'kb-set', 'account', 'carol']);
    expect(byAccount).toMatchObject({ code: 0, stdout: 'tök€n value' });
    const byUsername = await ss.secretTool(['lookup', 'service', 'kb-set', 'username', 'carol']);
    expect(byUsername).toMatchObject({ code: 0, stdout: 'tök€n value' });
    const search = await ss.secretTool(['search', '--all', 'service', 'kb-set']);
    expect(search.stdout).toContain('label = my label\n');
    expect(search.stdout).toContain('schema = org.freedesktop.Secret.Generic\n');
  });

  it('replaces items other tools wrote for the same service and account, leaving one', async () => {
    await ss.secretTool(['store', '--label=old1', 'service', 'kb-rep', 'account', 'dave'], 'old-a');
    await ss.secretTool(['store', '--label=old2', 'service', 'kb-rep', 'username', 'dave'], 'old-u');
    await keyring.set('kb-rep', 'dave', 'new');
    expect(await keyring.get('kb-rep', 'dave')).toBe('new');
    const search = await ss.secretTool(['search', '--all', 'service', 'kb-rep']);
    expect(search.stdout.match(/^secret = /gm)).toEqual(['secret = ']);
    expect(search.stdout).toContain('secret = new\n');
  });

  it('interoperates with @napi-rs/keyring pinned to the Secret Service, both ways', async () => {
    await keyring.set('kb-napi', 'erin', 'from-keybroker');
    const env = { ...process.env };
    process.env.DBUS_SESSION_BUS_ADDRESS = ss.address;
    try {
      expect(new Entry('kb-napi', 'erin', { linux: { store: 'secret-service' } }).getPassword()).toBe(
        'from-keybroker',
      );
      new Entry('kb-napi2', 'frank', { linux: { store: 'secret-service' } }).setPassword('from-napi');
    } finally {
      process.env.DBUS_SESSION_BUS_ADDRESS = env.DBUS_SESSION_BUS_ADDRESS;
      if (env.DBUS_SESSION_BUS_ADDRESS === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
    }
    expect(await keyring.get('kb-napi2', 'frank')).toBe('from-napi');
  });

  it('deletes every item for the service and account, and says whether it found one', async () => {
    await ss.secretTool(['store', '--label=L', 'service', 'kb-del', 'account', 'gina'], 'x');
    await ss.secretTool(['store', '--label=L', 'service', 'kb-del', 'username', 'gina'], 'y');
    expect(await keyring.delete('kb-del', 'gina')).toBe(true);
    expect(await keyring.get('kb-del', 'gina')).toBeUndefined();
    expect((await ss.secretTool(['lookup', 'service', 'kb-del', 'account', 'gina'])).code).not.toBe(0);
    expect(await keyring.delete('kb-del', 'gina')).toBe(false);
  });

  it('lists the accounts under a service', async () => {
    await keyring.set('kb-list', 'b', '1');
    await keyring.set('kb-list', 'a', '2');
    await ss.secretTool(['store', '--label=L', 'service', 'kb-list', 'account', 'c'], '3');
    expect(await keyring.list!('kb-list')).toEqual(['a', 'b', 'c']);
  });

  describe('keychain cache store', () => {
    const entry = (key: string): CacheEntry => ({
      v: 1,
      key,
      profile: 'p',
      source: 'keychain',
      token: 'cached-token',
      fetchedAtMs: 1_700_000_000_000,
    });

    it('keeps entries as items under keybroker-cache and blobs under a distinct account', async () => {
      const store = await createKeychainStore({ env: ss.env, platform: 'linux', timeoutMs: 5000 });
      expect(store.kind).toBe('keychain');
      await store.write('p-0123456789abcdef', entry('p-0123456789abcdef'));
      await store.writeBlob('vault-login', 'login-token');
      expect(await store.read('p-0123456789abcdef')).toEqual(entry('p-0123456789abcdef'));
      expect(await store.readBlob('vault-login')).toBe('login-token');
      expect(await store.listKeys()).toEqual(['p-0123456789abcdef']);
      const item = await ss.secretTool([
        'lookup',
        'service',
        KEYCHAIN_CACHE_SERVICE,
        'account',
        'p-0123456789abcdef',
      ]);
      expect(JSON.parse(item.stdout)).toEqual(entry('p-0123456789abcdef'));
      const blob = await ss.secretTool([
        'lookup',
        'service',
        KEYCHAIN_CACHE_SERVICE,
        'account',
        'blob:vault-login',
      ]);
      expect(blob.stdout).toBe('login-token');
      await store.delete('p-0123456789abcdef');
      await store.deleteBlob('vault-login');
      expect(await store.read('p-0123456789abcdef')).toBeUndefined();
      expect(await store.readBlob('vault-login')).toBeUndefined();
      expect(await store.listKeys()).toEqual([]);
    });

    it('discards a corrupt entry and reports it absent', async () => {
      const discarded: string[] = [];
      const store = await createKeychainStore({
        env: ss.env,
        platform: 'linux',
        timeoutMs: 5000,
        onDiscard: (k) => discarded.push(k),
      });
      await ss.secretTool(
        ['store', '--label=L', 'service', KEYCHAIN_CACHE_SERVICE, 'account', 'q-1'],
        '{not json',
      );
      expect(await store.read('q-1')).toBeUndefined();
      expect(discarded).toEqual(['q-1']);
      expect(
        (await ss.secretTool(['lookup', 'service', KEYCHAIN_CACHE_SERVICE, 'account', 'q-1'])).code,
      ).not.toBe(0);
    });
  });

  it('reports a locked keyring as ERR_KEYCHAIN_LOCKED (exit 3) and never prompts', async () => {
    await keyring.set('kb-lock', 'hank', 'secret');
    const locked = await ss.dbusSend([
      '--print-reply',
      '--dest=org.freedesktop.secrets',
      '/org/freedesktop/secrets',
      'org.freedesktop.Secret.Service.Lock',
      'array:objpath:/org/freedesktop/secrets/collection/login',
    ]);
    expect(locked.code).toBe(0);
    const fresh = await open();
    const getError = await rejection(fresh.get('kb-lock', 'hank'));
    expect(getError.exitCode).toBe(3);
    expect(formatErrorLine(getError)).toBe(
      `keybroker: keychain (Secret Service): the item service=kb-lock account=hank is locked ${LOCKED_HINT}`,
    );
    const setError = await rejection(fresh.set('kb-lock', 'hank', 'other'));
    expect(formatErrorLine(setError)).toBe(
      `keybroker: keychain (Secret Service): the default keyring is locked ${LOCKED_HINT}`,
    );
    const storeError = await rejection(
      (await createKeychainStore({ env: ss.env, platform: 'linux', timeoutMs: 5000 })).write('k', {
        v: 1,
        key: 'k',
        profile: 'p',
        source: 's',
        token: 't',
        fetchedAtMs: 1,
      }),
    );
    expect(storeError.code).toBe('ERR_KEYCHAIN_UNAVAILABLE');
    expect(formatErrorLine(storeError)).toBe(
      `keybroker: keychain cache: keychain (Secret Service): the default keyring is locked ${LOCKED_HINT.replace('ERR_KEYCHAIN_LOCKED', 'ERR_KEYCHAIN_UNAVAILABLE')}`,
    );
  });
});

describe.skipIf(suite.skip)(`${suite.title}: absent or unreachable`, () => {
  let bare: BareBus;
  beforeAll(async () => {
    bare = await startBusWithoutSecretService();
  });
  afterAll(async () => {
    await bare?.stop();
  });

  it('a session bus without a Secret Service: ERR_KEYCHAIN_UNAVAILABLE, exit 3', async () => {
    const e = await rejection(openKeyring({ env: bare.env, platform: 'linux', timeoutMs: 5000 }));
    expect(e.exitCode).toBe(3);
    expect(formatErrorLine(e)).toBe(
      `keybroker: keychain (Secret Service): no Secret Service on the session bus (org.freedesktop.secrets is not provided) ${UNAVAILABLE_HINT}`,
    );
  });

  it('no session bus at all: ERR_KEYCHAIN_UNAVAILABLE', async () => {
    const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-nobus-'));
    try {
      const e = await rejection(
        openKeyring({ env: { XDG_RUNTIME_DIR: runtime }, platform: 'linux', timeoutMs: 5000 }),
      );
      expect(formatErrorLine(e)).toBe(
        `keybroker: keychain (Secret Service): no session bus (DBUS_SESSION_BUS_ADDRESS is unset) ${UNAVAILABLE_HINT}`,
      );
    } finally {
      fs.rmSync(runtime, { recursive: true, force: true });
    }
  });

  it('a bus that never answers: bounded by the timeout', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-mute-'));
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(path.join(dir, 'bus'), r));
    try {
      const e = await rejection(
        openKeyring({
          env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(dir, 'bus')}` },
          platform: 'linux',
          timeoutMs: 300,
        }),
      );
      expect(formatErrorLine(e)).toBe(
        `keybroker: keychain (Secret Service): no answer within 300 ms ${UNAVAILABLE_HINT}`,
      );
      const storeError = await rejection(
        createKeychainStore({
          env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(dir, 'bus')}` },
          platform: 'linux',
          timeoutMs: 300,
        }),
      );
      expect(storeError.code).toBe('ERR_KEYCHAIN_UNAVAILABLE');
      expect(storeError.exitCode).toBe(3);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
