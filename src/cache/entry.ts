/** Parsing a cache entry defensively: anything unexpected means corrupt. */
import { sha256Hex } from '../platform/sha256.js';
import { isObject, isTokenText } from '../platform/text.js';
import type { CacheEntry } from './types.js';

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** Times are printed with toISOString(), which throws beyond what a Date holds (±8.64e15 ms). */
const isTime = (v: unknown): v is number => isNum(v) && Math.abs(v) <= 8.64e15;
const isMetaValue = (v: unknown) => typeof v === 'string' || typeof v === 'boolean' || isNum(v);

export function parseEntry(text: string, key: string): CacheEntry | undefined {
  let e: unknown;
  try {
    e = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(e)) return undefined;
  if (e.v !== 1 || e.key !== key || typeof e.profile !== 'string' || typeof e.source !== 'string')
    return undefined;
  if (typeof e.token !== 'string' || !isTime(e.fetchedAtMs)) return undefined;
  // What the token path may print (contract §1): the first stage prints an entry's token as is.
  if (!isTokenText(e.token)) return undefined;
  for (const k of [
    'expiresAtMs',
    'shortLivedFromMs',
    'forcedAtMs',
    'backoffUntilMs',
    'retryAfterUntilMs',
  ] as const) {
    if (e[k] !== undefined && !isTime(e[k])) return undefined;
  }
  if (e.failures !== undefined && !isNum(e.failures)) return undefined;
  if (e.jti !== undefined && typeof e.jti !== 'string') return undefined;
  if (
    e.fingerprint !== undefined &&
    (typeof e.fingerprint !== 'string' || !/^[0-9a-f]{12}$/.test(e.fingerprint))
  ) {
    return undefined;
  }
  if (e.meta !== undefined) {
    if (!isObject(e.meta)) return undefined;
    if (!Object.values(e.meta).every(isMetaValue)) return undefined;
  }
  return e as unknown as CacheEntry;
}

/** First 12 hex digits of the token's SHA-256: how a token is named in logs and status. */
export function fingerprint(token: string): string {
  return sha256Hex(token).slice(0, 12);
}
