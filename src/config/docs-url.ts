/**
 * The managed config's `docsUrl`: error hints then also point at the company's own page
 * (`<docsUrl>#err_x`). Only the managed layer may set it, so a repository cannot send people
 * elsewhere. It only decorates a line about to be printed, so it never throws.
 */
import { type ConfigInputs, managedPolicy, readManagedLayerOnly } from './load.js';
import type { ConfigLayer } from './types.js';

export function docsUrlOfLayer(layer: ConfigLayer | undefined): string | undefined {
  const value = managedPolicy(layer?.raw).docsUrl;
  if (value === undefined) return undefined;
  try {
    // https only, as the schema says: the hint sends people there.
    const url = new URL(value);
    return url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

export function managedDocsUrl(inputs: ConfigInputs): string | undefined {
  try {
    return docsUrlOfLayer(readManagedLayerOnly(inputs));
  } catch {
    return undefined;
  }
}
