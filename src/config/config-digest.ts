/**
 * Which config the second stage has validated. The first stage does not carry the schema, so
 * it serves a cache hit only when a marker named after the config digest (a hash of the loaded
 * layers' content) exists: a config edited since (an unknown key, a wrong type) goes to the
 * second stage, which reports it.
 */
import { sha256Hex } from '../platform/sha256.js';
import { type LoadedConfig, stableStringify } from './load.js';

/** The config digest: 16 hex digits of the SHA-256 of the loaded layers (kind, path, content). */
function configDigest(loaded: LoadedConfig): string {
  const layers = loaded.layers.map((l) => [l.kind, l.path, l.exists, l.ignored === true, l.raw ?? null]);
  return sha256Hex(stableStringify(layers)).slice(0, 16);
}

/** The validated-config marker's file name, `config-ok-<config digest>`. */
export function validatedMarkerName(loaded: LoadedConfig): string {
  return `config-ok-${configDigest(loaded)}`;
}
