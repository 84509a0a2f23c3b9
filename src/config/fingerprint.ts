/**
 * Which config the second stage has validated. The first stage does not carry the schema, so
 * it serves a cache hit only when a marker named after the loaded layers' content exists: a
 * config edited since (an unknown key, a wrong type) goes to the second stage, which reports it.
 */
import { sha256Hex } from '../platform/sha256.js';
import { type LoadedConfig, stableStringify } from './load.js';

export function validatedMarkerName(loaded: LoadedConfig): string {
  const layers = loaded.layers.map((l) => [l.kind, l.path, l.exists, l.ignored === true, l.raw ?? null]);
  return `config-ok-${sha256Hex(stableStringify(layers)).slice(0, 16)}`;
}
