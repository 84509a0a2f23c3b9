/**
 * The local Secrets Manager against a second, independent SigV4 implementation: the AWS CLI
 * (botocore). If our verifier only accepted what the JS SDK signs, these would fail. Runs for
 * each AWS CLI found (`aws` on PATH, Debian's /usr/bin/aws); without one there is nothing to
 * run (the case is reported as skipped, by name).
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_CREDENTIALS,
  type SecretsManagerServer,
  startSecretsManagerServer,
} from '../servers/secrets-manager-server.js';

function findClis(): string[] {
  const out: string[] = [];
  const which = spawnSync('/bin/sh', ['-c', 'command -v aws'], { encoding: 'utf8' });
  const candidates = [which.status === 0 ? which.stdout.trim() : '', '/usr/bin/aws'].filter(Boolean);
  const seen = new Set<string>();
  for (const c of candidates) {
    if (!fs.existsSync(c) || spawnSync(c, ['--version']).status !== 0) continue;
    const id = spawnSync(c, ['--version'], { encoding: 'utf8' }).stdout.trim().split(/\s+/)[0] ?? c;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(c);
  }
  return out;
}

const clis = findClis();
let server: SecretsManagerServer;
let home: string;

beforeAll(async () => {
  server = await startSecretsManagerServer({ region: 'us-east-1' });
  server.putSecret('cli/llm', 'sk-cli-interop-token');
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-awscli-'));
});
afterAll(async () => {
  await server.close();
  fs.rmSync(home, { recursive: true, force: true });
});

function runCli(cli: string, region: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      cli,
      [
        'secretsmanager',
        'get-secret-value',
        '--endpoint-url',
        server.url,
        '--secret-id',
        'cli/llm',
        '--query',
        'SecretString',
        '--output',
        'text',
      ],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIALS.secretAccessKey,
          AWS_DEFAULT_REGION: region,
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_PAGER: '',
          AWS_MAX_ATTEMPTS: '1',
        },
        timeout: 100_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe.skipIf(clis.length === 0)('AWS CLI against the local Secrets Manager', () => {
  for (const cli of clis) {
    it(`${cli}: its signature verifies and it reads the secret`, { timeout: 120_000 }, async () => {
      const r = await runCli(cli, 'us-east-1');
      expect(r).toEqual({ code: 0, stdout: 'sk-cli-interop-token\n', stderr: '' });
    });

    it(`${cli}: a request signed for another region is refused as InvalidSignatureException`, {
      timeout: 120_000,
    }, async () => {
      const r = await runCli(cli, 'eu-west-1');
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('(InvalidSignatureException)');
    });
  }
});
