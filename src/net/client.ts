/**
 * One network client per source: the TLS settings (trust store, verification, a client
 * certificate) and the proxy routing that every source's HTTP library is given, so that no
 * library falls back to its own defaults (contract §3a; issue 11 finding 14: with explicit
 * settings, NODE_TLS_REJECT_UNAUTHORIZED=0 turns nothing off).
 *
 * - `httpsAgent` / `httpAgent`: Node agents for axios (node-vault) and the AWS SDK's
 *   NodeHttpHandler. Each request picks its route per host: direct, or through a CONNECT
 *   tunnel (https-proxy-agent) to the proxy `chooseProxy` names. Plain-http targets are
 *   tunnelled too, so a proxy never reads a request (a token header) in clear.
 * - `fetch`: a WHATWG fetch (undici) with the same TLS settings and routing, for libraries
 *   that take a `customFetch` (openid-client v6). See ./fetch.ts.
 * - `explain(e)`: a typed error for what the network layer itself knows: the proxy failed
 *   (ERR_PROXY) or the server's certificate is not trusted (ERR_TLS_UNTRUSTED, naming the
 *   issuer). Anything else is left to the source's own mapping.
 *
 * The proxy libraries load `debug`, which reads DEBUG once when it loads and would then log
 * proxy URLs (credentials included); `withoutDebugEnv` loads them with DEBUG unset.
 */
import type * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { type AgentConnectOpts, Agent as BaseAgent } from 'agent-base';
import { isKeybrokerError, type KeybrokerError, seeDocs, unreachableError } from '../errors.js';
import { printableAscii } from '../platform/text.js';
import { chooseProxy, type ProxyChoice, type ProxySetting } from './proxy-choice.js';
import { describeTrust, loadTrustStore, type TrustStore } from './trust.js';
import { routeTlsWarnings } from './warnings.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface NetClientOptions {
  /** Proxy variables, SSL_CERT_FILE / SSL_CERT_DIR, NODE_EXTRA_CA_CERTS. */
  env: Env;
  /** The profile's `"proxy"` setting (default `"env"`). */
  proxy?: ProxySetting;
  /** Verify servers' certificates: false only with a source's tlsSkipVerify. */
  rejectUnauthorized: boolean;
  /** The source's `caCert`, added to the trust store. */
  caCerts?: { file: string; pem: Buffer }[];
  /** A TLS client certificate (Vault `cert` auth). */
  clientCert?: { cert: Buffer; key: Buffer };
  debug?: (line: string) => void;
}

/** What the server presented, for ERR_TLS_UNTRUSTED and `doctor --probe`. */
export interface PeerInfo {
  subject: string;
  /** The issuer of the last certificate the server sent: the CA that must be trusted. */
  issuer: string;
}

export interface NetClient {
  readonly httpsAgent: http.Agent;
  readonly httpAgent: http.Agent;
  /** WHATWG fetch through the same TLS settings and proxies; never follows a redirect. */
  fetch(input: string | URL, init?: RequestInit): Promise<Response>;
  proxyFor(url: string | URL): ProxyChoice;
  /** The trust store, loaded on first use. */
  trust(): TrustStore;
  describeTrust(): string;
  /** The certificate the server at host:port presented on this client's last connection to it. */
  peer(host: string, port: number | string): PeerInfo | undefined;
  /** ERR_PROXY or ERR_TLS_UNTRUSTED for an error this layer understands; undefined otherwise. */
  explain(e: unknown, url: string | URL): KeybrokerError | undefined;
  close(): void;
}

const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
]);

function distinguishedName(name: unknown): string {
  if (!name || typeof name !== 'object') return '(unknown)';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(name as Record<string, unknown>)) {
    for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${String(one)}`);
  }
  return printableAscii(parts.join(', ') || '(empty)');
}

function peerInfoOf(socket: tls.TLSSocket): PeerInfo | undefined {
  const leaf = socket.getPeerCertificate(true);
  if (!leaf || Object.keys(leaf).length === 0) return undefined;
  let top: tls.DetailedPeerCertificate = leaf;
  for (let i = 0; i < 10 && top.issuerCertificate && top.issuerCertificate !== top; i++) {
    top = top.issuerCertificate;
  }
  return { subject: distinguishedName(leaf.subject), issuer: distinguishedName(top.issuer) };
}

function hostPort(host: string, port: number | string): string {
  const h = host.replace(/^\[|\]$/g, '');
  return net.isIPv6(h) ? `[${h}]:${port}` : `${h}:${port}`;
}

function codeOf(e: unknown): string | undefined {
  const c = e && typeof e === 'object' ? (e as { code?: unknown }).code : undefined;
  return typeof c === 'string' ? c : undefined;
}

/** The error and its causes, outermost first. */
export function causes(e: unknown): unknown[] {
  const out: unknown[] = [];
  for (let c = e, i = 0; c !== undefined && c !== null && i < 8; i++) {
    out.push(c);
    c = typeof c === 'object' ? (c as { cause?: unknown }).cause : undefined;
  }
  return out;
}

function networkWhy(e: unknown): string {
  const code = codeOf(e);
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found';
  if (code === 'ETIMEDOUT') return 'no answer';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection closed';
  return code ? `network error (${code})` : 'network error';
}

export function proxyError(choice: ProxyChoice, why: string, cause?: unknown): KeybrokerError {
  const via = choice.why.includes('"proxy"') ? 'the profile\'s "proxy"' : choice.why;
  return unreachableError('ERR_PROXY', `proxy ${choice.shown}: ${why}`, {
    hint: `check ${via} (the proxy's address and credentials), or list the host in NO_PROXY if it must be reached directly; ${seeDocs('ERR_PROXY')}`,
    cause,
  });
}

function untrustedError(target: string, peer: PeerInfo | undefined, cause?: unknown): KeybrokerError {
  const issuer = peer ? `issuer ${peer.issuer}` : 'an issuer';
  return unreachableError(
    'ERR_TLS_UNTRUSTED',
    `TLS to ${target}: the certificate is signed by ${issuer}, which is not trusted`,
    {
      hint: `install that CA in the system trust store or set the profile's caCert to its PEM file; ${seeDocs('ERR_TLS_UNTRUSTED')}`,
      cause,
    },
  );
}

/** Runs `load` with DEBUG unset, so `debug` loggers loaded now stay off for good. */
export async function withoutDebugEnv<T>(load: () => Promise<T>): Promise<T> {
  const saved = process.env.DEBUG;
  delete process.env.DEBUG;
  try {
    return await load();
  } finally {
    if (saved !== undefined) process.env.DEBUG = saved;
  }
}

export function createNetClient(options: NetClientOptions): NetClient {
  const setting: ProxySetting = options.proxy ?? 'env';
  const debug = options.debug ?? (() => {});
  routeTlsWarnings(debug);
  let store: TrustStore | undefined;
  let context: tls.SecureContext | undefined;
  const peers = new Map<string, PeerInfo>();
  const tunnels = new Map<string, http.Agent>();

  const trust = (): TrustStore => {
    if (!store) {
      store = loadTrustStore(
        options.env,
        (options.caCerts ?? []).map((c) => ({ label: `caCert ${c.file}`, pem: c.pem })),
      );
      debug(`net: trust store ${describeTrust(store)}`);
    }
    return store;
  };
  const secureContext = (): tls.SecureContext => {
    if (!context) {
      context = tls.createSecureContext({
        ca: trust().ca,
        ...(options.clientCert ? { cert: options.clientCert.cert, key: options.clientCert.key } : {}),
      });
    }
    return context;
  };
  const tlsOptions = () => ({
    secureContext: secureContext(),
    rejectUnauthorized: options.rejectUnauthorized,
  });

  const watch = (socket: tls.TLSSocket, host: string, port: number | string) => {
    // Runs before Node's own 'secure' handler, which destroys the socket when the chain
    // does not verify: the only moment the rejected certificate can still be read.
    socket.prependOnceListener('secure', () => {
      const info = peerInfoOf(socket);
      if (info) peers.set(hostPort(host, port), info);
    });
    return socket;
  };

  const proxyFor = (url: string | URL): ProxyChoice => {
    const target = typeof url === 'string' ? new URL(url) : url;
    const choice = chooseProxy(target, setting, options.env);
    if (choice.invalid) {
      throw proxyError(choice, 'not an http(s) URL');
    }
    return choice;
  };

  type ProxyLib = typeof import('https-proxy-agent');
  const tunnelClass = (lib: ProxyLib) =>
    class Tunnel extends lib.HttpsProxyAgent<string> {
      constructor(private readonly choice: ProxyChoice) {
        super(choice.proxy!.href, {
          keepAlive: false,
          // For an https:// proxy: the proxy's own certificate is checked like any server's.
          ...(choice.proxy!.protocol === 'https:'
            ? { secureContext: secureContext(), rejectUnauthorized: true }
            : {}),
        });
      }

      override async connect(req: http.ClientRequest, opts: AgentConnectOpts) {
        let status: number | undefined;
        req.once('proxyConnect', (c: { statusCode: number }) => {
          status = c.statusCode;
        });
        const target = hostPort(opts.host ?? '', opts.port);
        let socket: Awaited<ReturnType<InstanceType<ProxyLib['HttpsProxyAgent']>['connect']>>;
        try {
          // https-proxy-agent drops `host` for the tunnelled TLS and sets no servername for an IP
          // address (DEP0123), so Node would check the certificate against "localhost": check
          // it against the host asked for.
          const host = opts.host ?? '';
          const secure = {
            ...tlsOptions(),
            checkServerIdentity: (_name: string, cert: tls.PeerCertificate) =>
              tls.checkServerIdentity(host, cert),
          };
          socket = await super.connect(req, opts.secureEndpoint ? { ...opts, ...secure } : opts);
        } catch (e) {
          throw proxyError(this.choice, networkWhy(e), e);
        }
        if (status !== 200) {
          socket.destroy();
          const answer = status === 407 ? 'asks for credentials (HTTP 407)' : `answered HTTP ${status}`;
          throw proxyError(this.choice, `${answer} to CONNECT ${target}`);
        }
        debug(`net: CONNECT ${target} through proxy ${this.choice.shown} (${this.choice.why})`);
        if (socket instanceof tls.TLSSocket) watch(socket, opts.host ?? '', opts.port);
        return socket;
      }
    };

  // Loaded on first use, with DEBUG unset: its `debug` logger would print the proxy URL.
  let Tunnel: Promise<ReturnType<typeof tunnelClass>> | undefined;
  const tunnelFor = async (choice: ProxyChoice): Promise<http.Agent> => {
    Tunnel ??= withoutDebugEnv(() => import('https-proxy-agent')).then(tunnelClass);
    const TunnelAgent = await Tunnel;
    const key = choice.proxy!.href;
    let agent = tunnels.get(key);
    if (!agent) {
      agent = new TunnelAgent(choice);
      tunnels.set(key, agent);
    }
    return agent;
  };

  class Router extends BaseAgent {
    override async connect(_req: http.ClientRequest, opts: AgentConnectOpts) {
      const host = opts.host ?? 'localhost';
      const port = opts.port;
      const url = new URL(`${opts.secureEndpoint ? 'https' : 'http'}://${hostPort(host, port)}/`);
      const choice = proxyFor(url);
      if (choice.proxy) return tunnelFor(choice);
      debug(`net: ${hostPort(host, port)} direct (${choice.why})`);
      if (!opts.secureEndpoint) return net.connect({ host, port });
      return watch(
        tls.connect({
          host,
          port,
          ...(net.isIP(host) === 0 ? { servername: host } : {}),
          ALPNProtocols: ['http/1.1'],
          ...tlsOptions(),
        }),
        host,
        port,
      );
    }
  }

  const httpsAgent = new Router({ keepAlive: false });
  const httpAgent = new Router({ keepAlive: false });
  let fetchImpl: Promise<(input: string | URL, init?: RequestInit) => Promise<Response>> | undefined;

  const client: NetClient = {
    httpsAgent,
    httpAgent,
    proxyFor,
    trust,
    describeTrust: () => describeTrust(trust()),
    peer: (host, port) => peers.get(hostPort(host, port)),
    async fetch(input, init) {
      fetchImpl ??= import('./fetch.js').then((m) => m.createFetch({ proxyFor, tlsOptions }));
      return (await fetchImpl)(input, init);
    },
    explain(e, url) {
      const target = typeof url === 'string' ? new URL(url) : url;
      for (const c of causes(e)) {
        if (isKeybrokerError(c)) return c.code === 'ERR_PROXY' ? c : undefined;
      }
      const codes = causes(e).map(codeOf);
      const untrusted = codes.find((c) => c !== undefined && UNTRUSTED_CODES.has(c));
      if (untrusted) {
        const port = target.port || (target.protocol === 'https:' ? '443' : '80');
        return untrustedError(hostPort(target.hostname, port), client.peer(target.hostname, port), e);
      }
      return undefined;
    },
    close() {
      httpsAgent.destroy();
      httpAgent.destroy();
      for (const t of tunnels.values()) t.destroy();
    },
  };
  return client;
}
