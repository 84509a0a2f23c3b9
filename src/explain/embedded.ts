/**
 * docs/troubleshooting.md, put here by scripts/build.mjs (esbuild `define`) for the second stage
 * only. Imported lazily by `explain`, so no other command pays for the text.
 */
import { parseTroubleshooting } from './entries.js';

declare const __KEYBROKER_TROUBLESHOOTING__: string | undefined;

export function embeddedEntries() {
  const text = typeof __KEYBROKER_TROUBLESHOOTING__ === 'string' ? __KEYBROKER_TROUBLESHOOTING__ : '';
  return parseTroubleshooting(text);
}
