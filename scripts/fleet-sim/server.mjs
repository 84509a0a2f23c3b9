// The counting upstream: a local HTTP server on 127.0.0.1 that answers each token request and
// records it under the virtual time the simulation sends (x-sim-time-ms). During a configured
// outage it answers 503, as a dead Vault behind a load balancer would.
import * as http from 'node:http';

export async function startCountingServer({ outageFromMs = Infinity, outageUntilMs = -Infinity } = {}) {
  const times = [];
  const failures = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const t = Number(req.headers['x-sim-time-ms']);
    req.resume();
    req.on('end', () => {
      if (t >= outageFromMs && t < outageUntilMs) {
        failures.push(t);
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"errors":["upstream unavailable"]}');
        return;
      }
      times.push(t);
      const body = JSON.stringify({ data: { token: `sim-token-${++n}` } });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    /** Successful token requests, by virtual time (ms). */
    times,
    /** Requests answered 503 during the outage, by virtual time (ms). */
    failures,
    /** One token request at virtual time tMs: resolves to { ok, token }. */
    request(tMs, laptop) {
      return new Promise((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            path: `/v1/secret/data/llm?laptop=${laptop}`,
            method: 'GET',
            agent,
            headers: { 'x-sim-time-ms': String(tMs) },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (text += d));
            res.on('end', () => {
              if (res.statusCode !== 200) return resolve({ ok: false });
              resolve({ ok: true, token: JSON.parse(text).data.token });
            });
          },
        );
        req.on('error', reject);
        req.end();
      });
    },
    close() {
      agent.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}
