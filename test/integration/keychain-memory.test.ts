/**
 * The keychain source, the keychain cache store and the D-Bus wire format, without a Secret
 * Service: the in-memory keyring stands in for the OS.
 */
import { describe, expect, it } from 'vitest';
import { createKeychainStore } from '../../src/cache/keychain-store.js';
import { formatErrorLine, unreachableError } from '../../src/errors.js';
import { createLogger } from '../../src/output/logger.js';
import { createMemoryKeyring, type Keyring } from '../../src/platform/keyring.js';
import { loadKeyringAddon } from '../../src/platform/keyring-addon.js';
import { sessionBusPaths, wire } from '../../src/platform/keyring-dbus.js';
import { createKeychainSource } from '../../src/sources/keychain.js';
import type { SourceDeps, TokenRequest } from '../../src/sources/types.js';
import { rejection } from '../helpers/secret-service.js';

const deps: SourceDeps = {
  logger: createLogger({ debug: false, write: () => {} }),
  memo: { get: async () => undefined, set: async () => {}, delete: async () => {} },
  env: {},
  homeDir: '/nonexistent',
  ttlMs: 300_000,
  refreshMarginMs: 120_000,
};
const request: TokenRequest = {
  signal: new AbortController().signal,
  now: () => 1_000,
  deadlineMs: 9_000,
  forceFresh: false,
};

describe('keychain source', () => {
  it('returns the stored value and asks for a keyring bounded by the deadline', async () => {
    const keyring = createMemoryKeyring();
    await keyring.set('llm', 'alice', 'sk-123');
    const seen: number[] = [];
    const source = createKeychainSource({ type: 'keychain', service: 'llm', account: 'alice' }, deps, {
      openKeyring: async (o) => {
        seen.push(o.timeoutMs);
        return keyring;
      },
    });
    expect(source.describe()).toBe('keychain service=llm account=alice');
    expect(await source.getToken(request)).toEqual({ value: 'sk-123' });
    expect(seen).toEqual([8_000]);
  });

  it('a missing item is exit 5 naming service and account', async () => {
    const source = createKeychainSource({ type: 'keychain', service: 'llm', account: 'bob' }, deps, {
      openKeyring: async () => createMemoryKeyring(),
    });
    const e = await rejection(source.getToken(request));
    expect(e.exitCode).toBe(5);
    expect(formatErrorLine(e)).toBe(
      'keybroker: keychain item service=llm account=bob: not found (store it with `keybroker keychain set --service llm --account bob`; run keybroker explain ERR_KEYCHAIN_ITEM_MISSING)',
    );
  });

  it('an empty value is exit 5', async () => {
    const keyring = createMemoryKeyring();
    await keyring.set('llm', 'bob', '  \n');
    const source = createKeychainSource({ type: 'keychain', service: 'llm', account: 'bob' }, deps, {
      openKeyring: async () => keyring,
    });
    const e = await rejection(source.getToken(request));
    expect(e.code).toBe('ERR_KEYCHAIN_ITEM_EMPTY');
    expect(e.exitCode).toBe(5);
    expect(e.message).toBe('keychain item service=llm account=bob: the value is empty');
  });

  it('an unreachable keychain stays exit 3', async () => {
    const source = createKeychainSource({ type: 'keychain', service: 'llm', account: 'bob' }, deps, {
      openKeyring: async () => {
        throw unreachableError('ERR_KEYCHAIN_UNAVAILABLE', 'keychain (Secret Service): gone');
      },
    });
    const e = await rejection(source.getToken(request));
    expect([e.code, e.exitCode]).toEqual(['ERR_KEYCHAIN_UNAVAILABLE', 3]);
  });
});

describe('keychain cache store (memory keyring)', () => {
  it('fails with ERR_KEYCHAIN_UNAVAILABLE when opening fails, without trying again', async () => {
    let opens = 0;
    const e = await rejection(
      createKeychainStore({
        env: {},
        platform: 'linux',
        timeoutMs: 100,
        openKeyring: async () => {
          opens++;
          throw unreachableError('ERR_KEYCHAIN_LOCKED', 'keychain (Secret Service): the keyring is locked', {
            hint: 'unlock it; run keybroker explain ERR_KEYCHAIN_LOCKED',
          });
        },
      }),
    );
    expect(opens).toBe(1);
    expect(formatErrorLine(e)).toBe(
      'keybroker: keychain cache: keychain (Secret Service): the keyring is locked (unlock it; run keybroker explain ERR_KEYCHAIN_UNAVAILABLE)',
    );
  });

  it('after one failed call, later calls fail at once with the same error', async () => {
    const inner = createMemoryKeyring();
    let gets = 0;
    const flaky: Keyring = {
      ...inner,
      backend: 'memory',
      get: async () => {
        gets++;
        throw unreachableError(
          'ERR_KEYCHAIN_UNAVAILABLE',
          'keychain (Secret Service): no answer within 100 ms',
        );
      },
    };
    const store = await createKeychainStore({
      env: {},
      platform: 'linux',
      timeoutMs: 100,
      openKeyring: async () => flaky,
    });
    const first = await rejection(store.read('k'));
    const second = await rejection(store.readBlob('b'));
    expect(second).toBe(first);
    expect(gets).toBe(1);
    expect(first.code).toBe('ERR_KEYCHAIN_UNAVAILABLE');
  });

  it('lists only entries, not blobs', async () => {
    const keyring = createMemoryKeyring();
    const store = await createKeychainStore({
      env: {},
      platform: 'linux',
      timeoutMs: 100,
      openKeyring: async () => keyring,
    });
    await store.write('p-1', { v: 1, key: 'p-1', profile: 'p', source: 'jwt', token: 't', fetchedAtMs: 1 });
    await store.writeBlob('memo', 'x');
    expect(await store.listKeys()).toEqual(['p-1']);
    expect(await keyring.list!('keybroker-cache')).toEqual(['blob:memo', 'p-1']);
    // An entry stored under another key is corrupt for this one.
    await keyring.set(
      'keybroker-cache',
      'p-2',
      JSON.stringify({ v: 1, key: 'p-1', profile: 'p', source: 'jwt', token: 't', fetchedAtMs: 1 }),
    );
    expect(await store.read('p-2')).toBeUndefined();
    expect(await keyring.get('keybroker-cache', 'p-2')).toBeUndefined();
  });
});

describe('D-Bus wire format', () => {
  it('round-trips the Secret Service CreateItem arguments', () => {
    const args = [
      [
        ['org.freedesktop.Secret.Item.Label', ['s', 'label']],
        [
          'org.freedesktop.Secret.Item.Attributes',
          [
            'a{ss}',
            [
              ['service', 'S'],
              ['account', 'A'],
            ],
          ],
        ],
      ],
      ['/org/freedesktop/secrets/session/1', Buffer.alloc(0), Buffer.from('vålue'), 'text/plain'],
      true,
    ];
    const buf = wire.marshal('a{sv}(oayays)b', args);
    expect(wire.unmarshal('a{sv}(oayays)b', buf)).toEqual(args);
  });

  it('aligns 64-bit values and structs to 8 bytes', () => {
    const buf = wire.marshal('yt(y)', [1, 2n, [3]]);
    expect([...buf]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]);
  });

  it('encodes a method call that decodes back to its header and body', () => {
    const msg = wire.encodeCall(7, {
      destination: 'org.freedesktop.secrets',
      path: '/org/freedesktop/secrets',
      interface: 'org.freedesktop.Secret.Service',
      member: 'ReadAlias',
      signature: 's',
      body: ['default'],
    });
    expect(wire.messageLength(msg)).toBe(msg.length);
    expect(wire.messageLength(msg.subarray(0, msg.length - 1))).toBe(0);
    const decoded = wire.decodeMessage(msg);
    expect(decoded).toMatchObject({ type: 1, serial: 7, body: ['default'] });
  });

  it('finds the session bus socket from the address or XDG_RUNTIME_DIR', () => {
    expect(sessionBusPaths({ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/tmp/dbus-x,guid=1' })).toEqual([
      '/tmp/dbus-x',
    ]);
    expect(sessionBusPaths({ DBUS_SESSION_BUS_ADDRESS: 'tcp:host=h;unix:abstract=/tmp/a%20b' })).toEqual([
      '\0/tmp/a b',
    ]);
    expect(() => sessionBusPaths({ DBUS_SESSION_BUS_ADDRESS: 'tcp:host=localhost,port=1' })).toThrow(
      'DBUS_SESSION_BUS_ADDRESS names no unix socket',
    );
    expect(() => sessionBusPaths({ XDG_RUNTIME_DIR: '/nonexistent-kb' })).toThrow('no session bus');
  });
});

describe('native keyring addon (macOS / Windows backends)', () => {
  it('loads through the one loader, once, with the Entry API those backends use', async () => {
    const addon = await loadKeyringAddon();
    expect(typeof addon.AsyncEntry).toBe('function');
    expect(typeof addon.AsyncEntry.withTarget).toBe('function');
    expect(typeof addon.findCredentialsAsync).toBe('function');
    expect(await loadKeyringAddon()).toBe(addon);
  });
});
