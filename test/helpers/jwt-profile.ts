/** A sandbox with a jwt profile and its ES256 key, the simplest source for token-path tests. */
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sandbox } from './run.js';

export function writeJwtKey(sandbox: Sandbox, name = 'key.pem'): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const file = path.join(sandbox.home, name);
  fs.writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return file;
}

export function jwtConfig(
  keyFile: string,
  extra: Record<string, unknown> = {},
  profile: Record<string, unknown> = {},
) {
  return {
    profiles: {
      default: {
        source: {
          type: 'jwt',
          signingKey: { file: keyFile },
          issuer: 'keybroker-test',
          audience: 'gateway',
          ...extra,
        },
        ...profile,
      },
    },
  };
}

export interface AuditLine {
  cache: string | null;
  outcome: string;
  fingerprint: string | null;
  profile: string;
  error?: string;
}

export function readAudit(sandbox: Sandbox): AuditLine[] {
  const file = path.join(sandbox.home, '.local', 'state', 'keybroker', 'audit.log');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditLine);
}
