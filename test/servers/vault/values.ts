/** Values in request bodies, read as Vault reads them. */

export function parseDuration(v: unknown, fallbackSec: number): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string' || v === '') return fallbackSec;
  if (/^\d+$/.test(v)) return Number(v);
  let total = 0;
  for (const m of v.matchAll(/(\d+)(h|m|s)/g)) {
    total += Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
  }
  return total || fallbackSec;
}

export function asStringList(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (typeof v === 'string')
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return [];
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
