/** NO_PROXY forms and the proxy chosen per URL (contract §3a), with the reason doctor shows. */
import { describe, expect, it } from 'vitest';
import { chooseProxy, noProxyMatch } from '../../src/net/proxy-choice.js';

const u = (s: string) => new URL(s);

describe('noProxyMatch', () => {
  it.each([
    ['https://vault.corp:8200', 'vault.corp', 'vault.corp'],
    ['https://vault.corp:8200', '.corp', '.corp'],
    ['https://vault.corp:8200', '*.corp', '*.corp'],
    ['https://vault.corp:8200', 'corp', 'corp'],
    ['https://corp:8200', '.corp', '.corp'],
    ['https://vault.corp:8200', 'vault.corp:8200', 'vault.corp:8200'],
    ['https://vault.corp', 'vault.corp:443', 'vault.corp:443'],
    ['https://10.1.2.3:8200', '10.0.0.0/8', '10.0.0.0/8'],
    ['https://10.1.2.3:8200', '10.1.2.3', '10.1.2.3'],
    ['https://[fd00::5]:8200', 'fd00::/8', 'fd00::/8'],
    ['https://[::1]:8200', '[::1]:8200', '[::1]:8200'],
    ['https://anything.example', 'a.b, *', '*'],
    ['https://VAULT.CORP', 'Vault.Corp', 'vault.corp'],
  ])('%s is direct for NO_PROXY=%s', (url, noProxy, entry) => {
    expect(noProxyMatch(u(url), noProxy)).toBe(entry);
  });

  it.each([
    ['https://vault.corp:8200', 'vault.corp:8201'],
    ['https://vault.corp:8200', 'ault.corp'],
    ['https://vaultcorp.com', '.corp'],
    ['https://11.1.2.3', '10.0.0.0/8'],
    ['https://vault.corp', '10.0.0.0/8'],
    ['https://vault.corp', ''],
  ])('%s goes through the proxy for NO_PROXY=%s', (url, noProxy) => {
    expect(noProxyMatch(u(url), noProxy)).toBeUndefined();
  });
});

describe('chooseProxy', () => {
  const env = { HTTPS_PROXY: 'http://u:p4ss@proxy:3128', http_proxy: 'proxy:8080', NO_PROXY: '.internal' };
  it('https uses HTTPS_PROXY, shown without its password', () => {
    const c = chooseProxy(u('https://vault.example'), 'env', env);
    expect([c.proxy?.href, c.shown, c.why]).toEqual([
      'http://u:p4ss@proxy:3128/',
      'http://u:***@proxy:3128/',
      'HTTPS_PROXY',
    ]);
  });
  it('http uses http_proxy, a bare host:port read as http://', () => {
    const c = chooseProxy(u('http://vault.example'), 'env', env);
    expect([c.shown, c.why]).toEqual(['http://proxy:8080/', 'http_proxy']);
  });
  it('lower case wins over upper case, as curl reads them', () => {
    const c = chooseProxy(u('https://x.example'), 'env', {
      HTTPS_PROXY: 'http://upper:1',
      https_proxy: 'http://lower:2',
    });
    expect(c.why).toBe('https_proxy');
  });
  it('NO_PROXY names the matching entry; "none" and a URL setting ignore the variables', () => {
    expect(chooseProxy(u('https://vault.internal'), 'env', env)).toEqual({
      shown: 'none',
      why: 'NO_PROXY entry .internal',
    });
    expect(chooseProxy(u('https://vault.example'), 'none', env).proxy).toBeUndefined();
    expect(chooseProxy(u('https://vault.internal'), 'http://p:1', env).shown).toBe('http://p:1/');
    expect(chooseProxy(u('https://vault.example'), 'env', {})).toEqual({
      shown: 'none',
      why: 'HTTPS_PROXY is not set',
    });
  });
  it('a setting that is not an http(s) URL is reported, never dropped silently', () => {
    expect(chooseProxy(u('https://v.example'), 'env', { HTTPS_PROXY: 'socks5://p:1' }).invalid).toBe(
      'HTTPS_PROXY',
    );
  });
});
