/**
 * A tiny HTTP server on 127.0.0.1 whose every answer is decided by the test (status, headers,
 * raw body, or a dropped connection), for driving the sources' response handling with
 * random answers through the real clients (node-vault, the AWS SDK).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedAnswer {
  status: number;
  headers?: Record<string, string>;
  body: string;
  /** Send the headers and part of the body, then destroy the socket. */
  reset?: boolean;
}

export interface ScriptedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface ScriptedServer {
  url: string;
  requests: ScriptedRequest[];
  answer: (req: ScriptedRequest) => ScriptedAnswer;
  close(): Promise<void>;
}

export async function startScriptedServer(): Promise<ScriptedServer> {
  const state: ScriptedServer = {
    url: '',
    requests: [],
    answer: () => ({ status: 500, body: '' }),
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: ScriptedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      state.requests.push(r);
      let a: ScriptedAnswer;
      try {
        a = state.answer(r);
      } catch {
        a = { status: 500, body: 'scripted answer threw' };
      }
      const body = Buffer.from(a.body, 'utf8');
      res.writeHead(a.status, {
        'content-length': String(a.reset ? body.length + 100 : body.length),
        ...a.headers,
      });
      if (a.reset) {
        res.write(body.subarray(0, Math.floor(body.length / 2)));
        setTimeout(() => req.socket.destroy(), 2);
        return;
      }
      res.end(body);
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
