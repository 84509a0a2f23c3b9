/**
 * Signing keys for the jwt source: where they come from (a file, an environment variable, the
 * keychain), the forms they take (PKCS#8 PEM, a JWK JSON, or for HS256 a raw secret), whether
 * they fit the algorithm, and their `kid`. Also key generation for `keybroker keygen`.
 *
 * Keys are parsed with node:crypto (cheap, precise key-type details for the fit check); jose is
 * loaded lazily only for the RFC 7638 thumbprint. No message here ever holds key material: parse
 * errors name where the key came from, never what it contains, and carry no `cause` (a JSON
 * SyntaxError quotes the text it failed on).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import type { JwtAlgorithm, KeyRef } from '../config/types.js';
import { configError, seeDocs } from '../errors.js';
import { expandHome } from '../platform/paths.js';
import { readPrivateFile } from '../platform/safe-fs.js';
import { isObject } from '../platform/text.js';

export const JWT_ALGORITHMS: readonly JwtAlgorithm[] = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'HS256'];
export const DEFAULT_JWT_ALGORITHM: JwtAlgorithm = 'ES256';
/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output. */
const MIN_HMAC_SECRET_BYTES = 32;
const MIN_RSA_BITS = 2048;

/** A public JWK as published in a JWK Set (no private members). */
export type PublicJwk = Record<string, string>;

export interface SigningKey {
  alg: JwtAlgorithm;
  /** What jose signs with: a private KeyObject, or the HMAC secret bytes for HS256. */
  key: KeyObject | Uint8Array;
  /** The public key as a JWK; absent for HS256 (a shared secret has no public half). */
  publicJwk?: PublicJwk;
  kid: string;
  /** Where the key came from, for messages: `file /p`, `environment variable X`, `keychain item ...`. */
  origin: string;
}

export interface KeyLoadOptions {
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  /** Bound for a keychain lookup. */
  timeoutMs: number;
  platform?: NodeJS.Platform;
}

export interface KeyConfig {
  algorithm?: JwtAlgorithm;
  signingKey?: KeyRef;
  keyId?: string;
}

export function jwtAlgorithm(config: KeyConfig): JwtAlgorithm {
  const alg = config.algorithm ?? DEFAULT_JWT_ALGORITHM;
  if (!JWT_ALGORITHMS.includes(alg)) {
    throw configError('ERR_JWT_ALGORITHM', `jwt source: algorithm ${String(alg)} is not supported`, {
      hint: `use one of ${JWT_ALGORITHMS.join(', ')}; ${seeDocs('ERR_JWT_ALGORITHM')}`,
    });
  }
  return alg;
}

/** Where a KeyRef points, without secrets: `file /p`, `environment variable X`, `keychain item service=S account=A`. */
export function describeKeyRef(ref: KeyRef): string {
  if ('file' in ref) return `file ${ref.file}`;
  if ('env' in ref) return `environment variable ${ref.env}`;
  return `keychain item service=${ref.keychain.service} account=${ref.keychain.account ?? loginName()}`;
}

/** The OS login name: the contract default for a jwt `sub`, its `user` claim and a keychain account. */
export function loginName(env: Readonly<Record<string, string | undefined>> = process.env): string {
  try {
    return os.userInfo().username;
  } catch {
    return env.USER ?? env.USERNAME ?? '';
  }
}

/** Loads, parses and checks the configured signing key and works out its kid. */
export async function loadSigningKey(config: KeyConfig, options: KeyLoadOptions): Promise<SigningKey> {
  const alg = jwtAlgorithm(config);
  const ref = config.signingKey;
  if (!ref) {
    throw configError('ERR_JWT_NO_SIGNING_KEY', 'jwt source: no signingKey is configured', {
      hint: `create one with keybroker keygen and set "signingKey": {"file": PATH} in the profile's source; ${seeDocs('ERR_JWT_NO_SIGNING_KEY')}`,
    });
  }
  const { material, origin } = await readKeyMaterial(ref, alg, options);
  const parsed = parseKeyMaterial(material, alg, origin);
  const kid = config.keyId ?? (await jwkThumbprint(parsed.thumbprintJwk));
  return {
    alg,
    key: parsed.key,
    ...(parsed.publicJwk ? { publicJwk: parsed.publicJwk } : {}),
    kid,
    origin,
  };
}

async function readKeyMaterial(
  ref: KeyRef,
  alg: JwtAlgorithm,
  options: KeyLoadOptions,
): Promise<{ material: string; origin: string }> {
  if ('file' in ref) {
    const file = path.resolve(expandHome(ref.file, options.homeDir));
    const origin = `file ${file}`;
    try {
      // A root-owned 0640 key is accepted (docs/managed-config.md says what such a key allows).
      const rule = { rootOwnedGroupReadable: true };
      return { material: readPrivateFile(file, 'signing key file', rule).toString('utf8'), origin };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw configError('ERR_JWT_KEY_FILE_MISSING', `jwt signing key file ${file}: does not exist`, {
          hint: `create it with keybroker keygen --algorithm ${alg} --out '${file}', or fix signingKey.file; ${seeDocs('ERR_JWT_KEY_FILE_MISSING')}`,
        });
      }
      if (code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') {
        throw configError(
          'ERR_JWT_KEY_FILE_UNREADABLE',
          `jwt signing key file ${file}: cannot be read (${code})`,
          {
            hint: `check the path and that you own the file; ${seeDocs('ERR_JWT_KEY_FILE_UNREADABLE')}`,
          },
        );
      }
      throw e;
    }
  }
  if ('env' in ref) {
    const origin = `environment variable ${ref.env}`;
    const value = options.env[ref.env];
    if (value === undefined || value === '') {
      throw configError(
        'ERR_JWT_KEY_ENV_UNSET',
        `jwt signing key: environment variable ${ref.env} is ${value === undefined ? 'not set' : 'empty'}`,
        {
          hint: `set ${ref.env} to the key (a PKCS#8 PEM, a JWK JSON, or for HS256 the secret), or point signingKey elsewhere; ${seeDocs('ERR_JWT_KEY_ENV_UNSET')}`,
        },
      );
    }
    return { material: value, origin };
  }
  const service = ref.keychain.service;
  const account = ref.keychain.account ?? loginName(options.env);
  const origin = `keychain item service=${service} account=${account}`;
  const { openKeyring } = await import('../platform/keyring.js');
  const keyring = await openKeyring({
    env: options.env,
    platform: options.platform ?? process.platform,
    timeoutMs: options.timeoutMs,
  });
  const value = await keyring.get(service, account);
  if (value === undefined || value === '') {
    throw configError('ERR_JWT_KEY_KEYCHAIN_MISSING', `jwt signing key: ${origin} was not found`, {
      hint: `create it with keybroker keygen --algorithm ${alg} --keychain '${service}/${account}'; ${seeDocs('ERR_JWT_KEY_KEYCHAIN_MISSING')}`,
    });
  }
  return { material: value, origin };
}

interface ParsedKey {
  key: KeyObject | Uint8Array;
  publicJwk?: PublicJwk;
  /** The JWK whose RFC 7638 thumbprint is the default kid. */
  thumbprintJwk: PublicJwk;
}

function malformed(origin: string, why: string): Error {
  return configError('ERR_JWT_KEY_MALFORMED', `jwt signing key from ${origin}: ${why}`, {
    hint: `provide an unencrypted PKCS#8 PEM or a private JWK (keybroker keygen makes one); ${seeDocs('ERR_JWT_KEY_MALFORMED')}`,
  });
}

function mismatch(origin: string, what: string, alg: JwtAlgorithm, fix: string): Error {
  return configError(
    'ERR_JWT_KEY_MISMATCH',
    `jwt signing key from ${origin}: ${what}, which does not fit algorithm ${alg}`,
    { hint: `${fix}; ${seeDocs('ERR_JWT_KEY_MISMATCH')}` },
  );
}

/** Parses a key's text (PEM, JWK JSON, or an HS256 raw secret) and checks that it fits `alg`. */
function parseKeyMaterial(material: string, alg: JwtAlgorithm, origin: string): ParsedKey {
  const text = material.trim();
  if (text.startsWith('{')) {
    let jwk: unknown;
    try {
      jwk = JSON.parse(text);
    } catch {
      throw malformed(origin, 'is not valid JSON');
    }
    return parseJwk(jwk, alg, origin);
  }
  if (text.startsWith('-----BEGIN')) {
    if (alg === 'HS256') {
      throw mismatch(
        origin,
        'is a PEM key',
        alg,
        'HS256 takes a shared secret; set "algorithm" to the key\'s type',
      );
    }
    if (/^-----BEGIN (RSA |EC )?PUBLIC KEY-----|^-----BEGIN CERTIFICATE-----/.test(text)) {
      throw malformed(origin, 'holds a public key or certificate, not a private key');
    }
    if (/^-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
      throw malformed(origin, 'is encrypted with a passphrase, which keybroker cannot prompt for');
    }
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: text, format: 'pem' });
    } catch {
      throw malformed(origin, 'is not a valid PEM private key');
    }
    return asymmetric(key, alg, origin);
  }
  if (alg === 'HS256') return hmac(Buffer.from(text, 'utf8'), origin);
  throw malformed(origin, 'is neither a PEM private key nor a JWK');
}

function parseJwk(jwk: unknown, alg: JwtAlgorithm, origin: string): ParsedKey {
  if (!isObject(jwk) || typeof jwk.kty !== 'string') {
    throw malformed(origin, 'is JSON but not a JWK (no "kty")');
  }
  const j = jwk;
  if (typeof j.alg === 'string' && j.alg !== alg) {
    throw mismatch(
      origin,
      `is a JWK for ${j.alg}`,
      alg,
      `set "algorithm" to ${j.alg} or use a key made for ${alg}`,
    );
  }
  if (j.kty === 'oct') {
    if (alg !== 'HS256') {
      throw mismatch(origin, 'is a shared secret (JWK kty oct)', alg, `use a private key for ${alg}`);
    }
    if (typeof j.k !== 'string' || j.k === '') throw malformed(origin, 'is an oct JWK without "k"');
    return hmac(Buffer.from(j.k, 'base64url'), origin);
  }
  if (alg === 'HS256') {
    throw mismatch(origin, `is a ${String(j.kty)} JWK`, alg, 'HS256 takes a shared secret (JWK kty oct)');
  }
  if (typeof j.d !== 'string') throw malformed(origin, 'is a public JWK; signingKey needs the private key');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: j as any, format: 'jwk' });
  } catch {
    throw malformed(origin, 'is not a valid private JWK');
  }
  return asymmetric(key, alg, origin);
}

function hmac(secret: Uint8Array, origin: string): ParsedKey {
  if (secret.length < MIN_HMAC_SECRET_BYTES) {
    throw configError(
      'ERR_JWT_KEY_TOO_WEAK',
      `jwt signing key from ${origin}: the HS256 secret is ${secret.length} bytes, fewer than ${MIN_HMAC_SECRET_BYTES}`,
      {
        hint: `use a random secret of at least ${MIN_HMAC_SECRET_BYTES} bytes (keybroker keygen --algorithm HS256); ${seeDocs('ERR_JWT_KEY_TOO_WEAK')}`,
      },
    );
  }
  // The default kid of a shared secret is the thumbprint of its oct JWK (RFC 7638 covers kty oct).
  // It reveals nothing an attacker could not already test offline against any token it signs.
  return { key: secret, thumbprintJwk: { kty: 'oct', k: Buffer.from(secret).toString('base64url') } };
}

/** The algorithm a key of this type would fit, for hints. */
function keyDescription(key: KeyObject): { what: string; fits: string } {
  const t = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (t === 'ec') {
    if (d.namedCurve === 'prime256v1') return { what: 'an EC P-256 key', fits: 'ES256' };
    if (d.namedCurve === 'secp384r1') return { what: 'an EC P-384 key', fits: 'ES384' };
    return { what: `an EC ${d.namedCurve ?? 'unknown-curve'} key`, fits: '' };
  }
  if (t === 'rsa') return { what: `an RSA ${d.modulusLength ?? '?'}-bit key`, fits: 'RS256 or PS256' };
  if (t === 'ed25519') return { what: 'an Ed25519 key', fits: 'EdDSA' };
  return { what: `a ${t ?? 'unknown'} key`, fits: '' };
}

function fits(key: KeyObject, alg: JwtAlgorithm): boolean {
  const t = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  switch (alg) {
    case 'ES256':
      return t === 'ec' && curve === 'prime256v1';
    case 'ES384':
      return t === 'ec' && curve === 'secp384r1';
    case 'RS256':
    case 'PS256':
      return t === 'rsa';
    case 'EdDSA':
      return t === 'ed25519';
    default:
      return false;
  }
}

function asymmetric(key: KeyObject, alg: JwtAlgorithm, origin: string): ParsedKey {
  const { what, fits: fitting } = keyDescription(key);
  if (!fits(key, alg)) {
    const fix = fitting
      ? `set "algorithm" to ${fitting}, or make a ${alg} key with keybroker keygen --algorithm ${alg}`
      : `make a ${alg} key with keybroker keygen --algorithm ${alg}`;
    throw mismatch(origin, `is ${what}`, alg, fix);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === 'rsa' && (bits ?? 0) < MIN_RSA_BITS) {
    throw configError(
      'ERR_JWT_KEY_TOO_WEAK',
      `jwt signing key from ${origin}: is ${what}, shorter than ${MIN_RSA_BITS} bits`,
      { hint: `make a new key with keybroker keygen --algorithm ${alg}; ${seeDocs('ERR_JWT_KEY_TOO_WEAK')}` },
    );
  }
  const publicJwk = publicJwkOf(key);
  return { key, publicJwk, thumbprintJwk: publicJwk };
}

function publicJwkOf(privateKey: KeyObject): PublicJwk {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, unknown>;
  const out: PublicJwk = {};
  for (const [k, v] of Object.entries(jwk)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** RFC 7638 thumbprint (SHA-256, base64url) as jose computes it. */
export async function jwkThumbprint(jwk: PublicJwk): Promise<string> {
  const { calculateJwkThumbprint } = await import('jose');
  return calculateJwkThumbprint(jwk as any, 'sha256');
}

export interface GeneratedKey {
  alg: JwtAlgorithm;
  /** What to store: an unencrypted PKCS#8 PEM, or for HS256 an oct JWK JSON holding a random 256-bit secret. */
  material: string;
  format: 'pem' | 'jwk';
  kid: string;
}

/** Makes a new signing key for `alg` (RSA 2048 bits, EC P-256/P-384, Ed25519, or a 32-byte secret). */
export async function generateSigningKey(alg: JwtAlgorithm = DEFAULT_JWT_ALGORITHM): Promise<GeneratedKey> {
  jwtAlgorithm({ algorithm: alg });
  if (alg === 'HS256') {
    const k = randomBytes(MIN_HMAC_SECRET_BYTES).toString('base64url');
    const kid = await jwkThumbprint({ kty: 'oct', k });
    return { alg, material: `${JSON.stringify({ kty: 'oct', k, alg })}\n`, format: 'jwk', kid };
  }
  const { privateKey } =
    alg === 'ES256' || alg === 'ES384'
      ? generateKeyPairSync('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-384' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS });
  const material = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const kid = await jwkThumbprint(publicJwkOf(privateKey));
  return { alg, material, format: 'pem', kid };
}
