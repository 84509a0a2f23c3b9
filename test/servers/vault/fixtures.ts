/** Keys and certificates the tests make: a JWT signer (kubernetes and jwt auth) and a test CA. */

import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { signJwt } from './jwt.js';
import type { OidcKey } from './state.js';

/** A private key file's PEM for signing test JWTs (kubernetes service accounts, jwt auth). */
export function makeJwtSigner(alg: 'RS256' | 'ES256' = 'RS256'): {
  publicPem: string;
  sign(claims: Record<string, unknown>): string;
} {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: OidcKey = {
    name: 'test',
    algorithm: alg,
    verificationTtlSec: 0,
    allowedClientIds: [],
    privateKey: createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' })),
    kid: randomUUID(),
    publicJwk: {},
  };
  return {
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    sign: (claims) => signJwt(key, claims),
  };
}

/** A throwaway CA and a server certificate for 127.0.0.1, made with openssl. */
export function makeTestCa(dir: string): { caFile: string; caPem: string; key: string; cert: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=keybroker test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]);
  run([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  ]);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
    '-out',
    'server.pem',
  ]);
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    caFile: path.join(dir, 'ca.pem'),
    caPem: read('ca.pem'),
    key: read('server.key'),
    cert: read('server.pem'),
  };
}
