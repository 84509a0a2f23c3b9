/**
 * Storage "none" and --no-cache: no entry is ever kept. A source's memo still lives for the
 * run (in memory), so one fetch does not log in twice.
 */
import type { CacheStore } from './types.js';

export function createNullStore(): CacheStore {
  const blobs = new Map<string, string>();
  return {
    kind: 'none',
    read: async () => undefined,
    write: async () => {},
    delete: async () => {},
    readBlob: async (n) => blobs.get(n),
    writeBlob: async (n, d) => {
      blobs.set(n, d);
    },
    deleteBlob: async (n) => {
      blobs.delete(n);
    },
    listKeys: async () => [],
  };
}
