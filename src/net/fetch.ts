/**
 * The fetch half of the network client (./client.ts), for libraries that take a WHATWG
 * `customFetch` (openid-client v6, oauth4webapi). undici (Node's own fetch implementation, as
 * a package, so that a dispatcher can be passed) is loaded only here, on first use.
 *
 * - Every origin gets a dispatcher chosen by the same proxy rules as the Node agents: an
 *   undici Pool with the client's TLS settings, or a ProxyAgent tunnelling with CONNECT
 *   (plain-http targets too) with the same TLS settings for the target.
 * - `redirect` is always `manual`: a 3xx comes back to the caller, never followed
 *   (contract §3a: only Vault's 307 is ever followed).
 * - Errors: undici wraps network failures in `TypeError('fetch failed')` with the cause
 *   chain; `NetClient.explain(e, url)` turns the proxy and trust ones into ERR_PROXY /
 *   ERR_TLS_UNTRUSTED.
 */
import type * as tls from 'node:tls';
import { proxyError, withoutDebugEnv } from './client.js';
import type { ProxyChoice } from './proxy-choice.js';

export interface FetchParts {
  proxyFor(url: URL): ProxyChoice;
  tlsOptions(): { secureContext: tls.SecureContext; rejectUnauthorized: boolean };
}

type Fetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

export async function createFetch(parts: FetchParts): Promise<Fetch> {
  // Bundled (dist/), undici is CommonJS behind ESM interop: its exports sit on `default`.
  const loaded = await withoutDebugEnv(() => import('undici'));
  const undici = (
    (loaded as { Agent?: unknown }).Agent ? loaded : (loaded as unknown as { default: typeof loaded }).default
  ) as typeof loaded;
  const byProxy = new Map<string, InstanceType<typeof undici.ProxyAgent>>();
  const agent = new undici.Agent({
    connect: parts.tlsOptions(),
    factory(origin, opts) {
      const url = new URL(String(origin));
      const choice = parts.proxyFor(url);
      if (!choice.proxy) return new undici.Pool(origin, opts);
      let proxied = byProxy.get(choice.proxy.href);
      if (!proxied) {
        proxied = new undici.ProxyAgent({
          uri: choice.proxy.href,
          requestTls: parts.tlsOptions(),
          ...(choice.proxy.protocol === 'https:'
            ? { proxyTls: { ...parts.tlsOptions(), rejectUnauthorized: true } }
            : {}),
        });
        byProxy.set(choice.proxy.href, proxied);
      }
      return wrapProxyErrors(proxied, choice);
    },
  });
  return async (input, init) => {
    const response = await undici.fetch(
      input as string,
      {
        ...(init as Record<string, unknown>),
        redirect: 'manual',
        dispatcher: agent,
      } as Parameters<typeof undici.fetch>[1],
    );
    return response as unknown as Response;
  };
}

/**
 * undici reports a refused CONNECT as `Proxy response (407) !== 200 when HTTP Tunneling` and
 * an unreachable proxy as the socket's own error: both become ERR_PROXY naming the proxy.
 */
function wrapProxyErrors<D extends { dispatch: (...a: never[]) => boolean }>(
  dispatcher: D,
  choice: ProxyChoice,
): D {
  const dispatch = dispatcher.dispatch.bind(dispatcher) as (
    opts: unknown,
    handler: Record<string, unknown>,
  ) => boolean;
  return new Proxy(dispatcher, {
    get(target, prop, receiver) {
      if (prop !== 'dispatch') return Reflect.get(target, prop, receiver);
      return (opts: unknown, handler: Record<string, unknown>) => {
        const onError = handler.onError as ((e: Error) => void) | undefined;
        const onResponseError = handler.onResponseError as ((c: unknown, e: Error) => void) | undefined;
        const translate = (e: Error): Error => {
          const m = /Proxy response \((\d+)\)/.exec(e?.message ?? '');
          if (m) return proxyError(choice, `answered HTTP ${m[1]} to CONNECT`, e);
          const code = (e as { code?: string })?.code;
          const port = (e as { port?: number })?.port;
          if (code && port !== undefined && String(port) === (choice.proxy!.port || '80'))
            return proxyError(
              choice,
              code === 'ECONNREFUSED' ? 'connection refused' : `network error (${code})`,
              e,
            );
          return e;
        };
        const wrapped = Object.create(handler) as Record<string, unknown>;
        if (onError) wrapped.onError = (e: Error) => onError.call(handler, translate(e));
        if (onResponseError)
          wrapped.onResponseError = (c: unknown, e: Error) => onResponseError.call(handler, c, translate(e));
        return dispatch(opts, wrapped);
      };
    },
  });
}
