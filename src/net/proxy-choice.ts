/**
 * Which proxy a request goes through (contract §3a): the profile's `"proxy"` setting
 * (`"env"`, `"none"` or a URL), and for `"env"` the usual HTTPS_PROXY / HTTP_PROXY / NO_PROXY
 * variables in either case (lower case first, as curl reads them). NO_PROXY entries are
 * comma- or space-separated: `*`, a host (`vault.corp`), a domain suffix (`.corp` or
 * `*.corp`; `corp` matches itself and its subdomains, as curl and Go do), any of those with
 * `:port`, an IP address, or a CIDR block (`10.0.0.0/8`, `fd00::/8`).
 *
 * The proxy libraries carry their own NO_PROXY parsers (proxy-from-env, undici), neither
 * with CIDR blocks; this one is shared by every client so that `doctor` can say why.
 */
import * as net from 'node:net';
import { redactUrl } from './redact-url.js';

export type ProxySetting = 'env' | 'none' | string;

export interface ProxyChoice {
  /** The proxy URL (credentials included: never print it; use `shown`). */
  proxy?: URL;
  /** The proxy URL with its credentials redacted, or `none`. */
  shown: string;
  /** Why: `HTTPS_PROXY`, `NO_PROXY entry .corp`, `profile proxy "none"`, ... */
  why: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function envValue(env: Env, name: string): { name: string; value: string } | undefined {
  for (const n of [name.toLowerCase(), name.toUpperCase()]) {
    const v = env[n]?.trim();
    if (v) return { name: n, value: v };
  }
  return undefined;
}

function defaultPort(protocol: string): string {
  return protocol === 'https:' ? '443' : '80';
}

/** The NO_PROXY entry that sends `target` direct, if any. */
export function noProxyMatch(target: URL, noProxy: string): string | undefined {
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || defaultPort(target.protocol);
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return entry;
    let pattern = entry;
    let entryPort: string | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(pattern);
    if (bracketed) {
      pattern = bracketed[1]!;
      entryPort = bracketed[2];
    } else if (!pattern.includes('/') && net.isIP(pattern) === 0) {
      const m = /^(.*):(\d+)$/.exec(pattern);
      if (m) {
        pattern = m[1]!;
        entryPort = m[2];
      }
    }
    if (entryPort !== undefined && entryPort !== port) continue;
    if (pattern.includes('/')) {
      if (cidrContains(pattern, host)) return entry;
      continue;
    }
    if (net.isIP(pattern) !== 0) {
      if (net.isIP(host) !== 0 && sameAddress(pattern, host)) return entry;
      continue;
    }
    const suffix = pattern.replace(/^\*?\./, '');
    if (host === suffix || host.endsWith(`.${suffix}`)) return entry;
  }
  return undefined;
}

function sameAddress(a: string, b: string): boolean {
  const list = new net.BlockList();
  list.addAddress(a, net.isIP(a) === 6 ? 'ipv6' : 'ipv4');
  return list.check(b, net.isIP(b) === 6 ? 'ipv6' : 'ipv4');
}

function cidrContains(cidr: string, host: string): boolean {
  const [base, bits] = cidr.split('/');
  const family = net.isIP(base ?? '');
  const hostFamily = net.isIP(host);
  if (family === 0 || hostFamily === 0 || !/^\d+$/.test(bits ?? '')) return false;
  const list = new net.BlockList();
  try {
    list.addSubnet(base!, Number(bits), family === 6 ? 'ipv6' : 'ipv4');
    return list.check(host, hostFamily === 6 ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}

/** Parses a proxy URL; `http://` is assumed when the value has no scheme (as curl does). */
function parseProxyUrl(value: string): URL | undefined {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The proxy for `target` under `setting`. A value that is not an http(s) URL yields
 * `invalid` so that the caller reports it (a proxy is never silently dropped).
 */
export function chooseProxy(
  target: URL,
  setting: ProxySetting,
  env: Env,
): ProxyChoice & { invalid?: string } {
  if (setting === 'none') return { shown: 'none', why: 'the profile sets "proxy": "none"' };
  if (setting !== 'env') {
    const proxy = parseProxyUrl(setting);
    if (!proxy)
      return { shown: 'none', why: 'the profile\'s "proxy" is not an http(s) URL', invalid: 'proxy' };
    return { proxy, shown: redactUrl(proxy.href), why: 'the profile\'s "proxy" setting' };
  }
  const noProxy = envValue(env, 'NO_PROXY');
  const skip = noProxy ? noProxyMatch(target, noProxy.value) : undefined;
  if (skip !== undefined) return { shown: 'none', why: `${noProxy!.name} entry ${skip}` };
  const variable = target.protocol === 'https:' ? envValue(env, 'HTTPS_PROXY') : envValue(env, 'HTTP_PROXY');
  if (!variable) {
    const names = target.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY';
    return { shown: 'none', why: `${names} is not set` };
  }
  const proxy = parseProxyUrl(variable.value);
  if (!proxy) return { shown: 'none', why: `${variable.name} is not an http(s) URL`, invalid: variable.name };
  return { proxy, shown: redactUrl(proxy.href), why: variable.name };
}
