/** A source's memo (a Vault login, a KV mount's version) kept as blobs beside its profile's entry. */
import { createHash } from 'node:crypto';
import type { SourceMemo } from '../sources/types.js';
import type { CacheStore } from './types.js';

export function memoFor(store: CacheStore, key: string): SourceMemo {
  const blobName = (name: string) =>
    `${key}.memo-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
  return {
    async get(name) {
      const text = await store.readBlob(blobName(name)).catch(() => undefined);
      if (text === undefined) return undefined;
      try {
        const o = JSON.parse(text) as { value: unknown; expiresAtMs?: unknown };
        if (typeof o.value !== 'string') return undefined;
        return typeof o.expiresAtMs === 'number'
          ? { value: o.value, expiresAtMs: o.expiresAtMs }
          : { value: o.value };
      } catch {
        return undefined;
      }
    },
    async set(name, value, expiresAtMs) {
      await store.writeBlob(blobName(name), JSON.stringify({ value, expiresAtMs }));
    },
    async delete(name) {
      await store.deleteBlob(blobName(name));
    },
  };
}
