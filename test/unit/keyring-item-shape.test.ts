/**
 * Issue 11 finding 16: which Secret Service items keybroker may read, replace or delete for
 * (service, account): exactly the shapes keybroker, keytar (libsecret, secret-tool) and
 * keyring-rs (@napi-rs/keyring) write; any other attribute makes it another application's.
 */
import { describe, expect, it } from 'vitest';
import { isKeyringItemFor } from '../../src/platform/keyring-secret-service.js';

const G = 'org.freedesktop.Secret.Generic';
const is = (attrs: Record<string, string>) => isKeyringItemFor(Object.entries(attrs), 'S', 'A');

describe('finding 16: isKeyringItemFor', () => {
  it('takes the shapes keybroker, keytar and keyring-rs write', () => {
    expect(is({ service: 'S', account: 'A', username: 'A', 'xdg:schema': G })).toBe(true); // keybroker
    expect(is({ service: 'S', account: 'A' })).toBe(true); // secret-tool store service S account A
    expect(is({ service: 'S', account: 'A', 'xdg:schema': G })).toBe(true); // keytar
    expect(is({ service: 'S', username: 'A', 'xdg:schema': G })).toBe(true); // @napi-rs/keyring
    expect(is({ service: 'S', username: 'A', application: 'rust-keyring', target: 'default' })).toBe(true);
  });

  it('leaves every other item alone', () => {
    expect(is({ service: 'S', account: 'A', server: 'mail.example' })).toBe(false);
    expect(is({ service: 'S', account: 'A', 'xdg:schema': 'org.gnome.Evolution.Data.Source' })).toBe(false);
    expect(is({ service: 'S', username: 'A', application: 'other-app' })).toBe(false);
    expect(is({ service: 'S', username: 'A', target: 'work' })).toBe(false);
    expect(is({ service: 'S', account: 'A', username: 'B' })).toBe(false);
    expect(is({ service: 'S' })).toBe(false);
    expect(is({ service: 'T', account: 'A' })).toBe(false);
    expect(is({ account: 'A' })).toBe(false);
  });
});
