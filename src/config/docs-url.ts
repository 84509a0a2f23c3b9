/**
 * The managed config's `docsUrl`: error hints then also point at the company's own page
 * (`<docsUrl>#err_x`). Only the managed layer may set it, so a repository cannot send people
 * elsewhere. It only decorates a line about to be printed, so it never throws.
 */
import { type ConfigInputs, managedPolicy, readManagedLayerOnly } from './load.js';
import type { ConfigLayer } from './types.js';

function docsUrlOfLayer(layer: ConfigLayer | undefined): string | undefined {
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

/**
 * The warning when `--config` is given but the managed config's lockdown (`"allowUserConfig":
 * false`) ignores every user file: said once per invocation, whatever the command. Never throws
 * (a managed file that does not load is the command's own error to report).
 */
export function ignoredConfigFlagWarning(inputs: ConfigInputs): string | undefined {
  if (!inputs.configFlag) return undefined;
  try {
    const managed = readManagedLayerOnly(inputs);
    if (!managed.exists || !managedPolicy(managed.raw).lockdown) return undefined;
    return `warning: --config ${inputs.configFlag} is ignored: the managed config ${managed.path} sets "allowUserConfig": false, so only its profiles apply`;
  } catch {
    return undefined;
  }
}
