/**
 * A real HTTP proxy for the network tests: Debian's tinyproxy (installed by .ci/run), run in
 * the foreground on 127.0.0.1 with its own config and access log. With no ConnectPort line
 * it tunnels CONNECT to any port; `LogLevel Info` writes one `Request (...): CONNECT host:port`
 * line per tunnel, which the tests read.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export interface Tinyproxy {
  url: string;
  port: number;
  logFile: string;
  /** The `host:port` of every CONNECT in the access log so far. */
  connects(): string[];
  stop(): Promise<void>;
}

/** A port nothing listens on right now (bound, then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export async function startTinyproxy(
  dir: string,
  options: { basicAuth?: { user: string; password: string } } = {},
): Promise<Tinyproxy> {
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const logFile = path.join(dir, 'access.log');
  const configFile = path.join(dir, 'tinyproxy.conf');
  const lines = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 30',
    `LogFile "${logFile}"`,
    'LogLevel Info',
    'MaxClients 100',
    'Allow 127.0.0.1',
  ];
  if (options.basicAuth) lines.push(`BasicAuth ${options.basicAuth.user} ${options.basicAuth.password}`);
  fs.writeFileSync(configFile, `${lines.join('\n')}\n`);
  const child = spawn('tinyproxy', ['-d', '-c', configFile], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 200 && !(await accepts(port)); i++) {
    if (child.exitCode !== null) throw new Error(`tinyproxy exited (${child.exitCode}); see ${logFile}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logFile,
    connects() {
      const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      return [...text.matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP/g)].map((m) => m[1]!);
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
