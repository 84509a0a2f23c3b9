/**
 * Doctor: the network path of the profile's source (contract §3a). Per source URL, the proxy
 * chosen (or none, and why) and the trust store in use; NODE_TLS_REJECT_UNAUTHORIZED=0 is
 * flagged (keybroker ignores it, since every client sets its checks explicitly). With
 * `--probe`, one HEAD request per https URL through the same client: the server
 * certificate's subject and issuer, and the proxy round trip.
 */
import type { SourceConfig } from '../../config/types.js';
import type { NetClient } from '../../net/client.js';
import { type CheckResult, check } from '../report.js';
import { type DoctorScope, fromError } from './scope.js';
import { sourceDeps } from './source.js';

/** The URLs a source connects to (its server; the AWS regional endpoint when none is set). */
function sourceUrls(src: SourceConfig): string[] {
  switch (src.type) {
    case 'vault':
    case 'vault-identity':
      return src.address ? [src.address] : [];
    case 'aws-secrets-manager':
      return [
        src.endpoint ?? (src.region ? `https://secretsmanager.${src.region}.amazonaws.com` : ''),
      ].filter(Boolean);
    default: {
      const issuer = (src as { issuer?: unknown }).issuer;
      return typeof issuer === 'string' ? [issuer] : [];
    }
  }
}

async function netClientFor(scope: DoctorScope): Promise<NetClient> {
  const resolved = scope.resolved!;
  const src = resolved.source;
  const deps = sourceDeps(scope.ctx, resolved, scope.env);
  if (src.type === 'vault' || src.type === 'vault-identity') {
    return (await import('../../sources/vault-client.js')).vaultNetClient(src, deps);
  }
  const { createNetClient } = await import('../../net/client.js');
  return createNetClient({ env: scope.env, proxy: deps.proxy ?? 'env', rejectUnauthorized: true });
}

export async function networkChecks(scope: DoctorScope, probe: boolean): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  if (scope.env.NODE_TLS_REJECT_UNAUTHORIZED === '0') {
    out.push(
      check(
        'net.tls',
        'warn',
        'NODE_TLS_REJECT_UNAUTHORIZED=0 is set: keybroker ignores it, other Node programs do not',
        {
          code: 'ERR_TLS_UNTRUSTED',
          hint: 'unset it and install the CA your servers need in the system trust store (or set caCert)',
        },
      ),
    );
  }
  const urls = sourceUrls(scope.resolved!.source);
  if (urls.length === 0) return out;
  let net: NetClient;
  try {
    net = await netClientFor(scope);
  } catch (e) {
    out.push(fromError('net', e));
    return out;
  }
  try {
    for (const url of urls) {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        continue;
      }
      let choice: ReturnType<NetClient['proxyFor']>;
      try {
        choice = net.proxyFor(target);
      } catch (e) {
        out.push(fromError('net.proxy', e));
        continue;
      }
      out.push(check('net.proxy', 'pass', `${target.origin}: proxy ${choice.shown} (${choice.why})`));
      if (target.protocol === 'https:')
        out.push(check('net.trust', 'pass', `${target.origin}: ${net.describeTrust()}`));
      if (probe && target.protocol === 'https:') out.push(await probeTls(net, target, choice.shown));
    }
  } finally {
    net.close();
  }
  return out;
}

/** One HEAD request: the certificate the server presented, and how long the round trip took. */
async function probeTls(net: NetClient, target: URL, proxyShown: string): Promise<CheckResult> {
  const https = await import('node:https');
  const started = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const req = https.request(target, { method: 'HEAD', agent: net.httpsAgent, timeout: 8000 }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end();
    });
  } catch (e) {
    return fromError('net.probe', net.explain(e, target) ?? e);
  }
  const ms = Math.round(performance.now() - started);
  const peer = net.peer(target.hostname, target.port || '443');
  const via = proxyShown === 'none' ? 'direct' : `through proxy ${proxyShown}`;
  const cert = peer ? `certificate subject ${peer.subject}, issuer ${peer.issuer}` : 'no certificate seen';
  return check('net.probe', 'pass', `${target.origin}: ${cert}; round trip ${via} ${ms} ms`);
}
