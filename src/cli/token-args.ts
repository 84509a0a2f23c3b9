/**
 * The token path's command line, read without a CLI parser: `keybroker [token]` with its few
 * flags. Both stages read it here; anything else (another command, --help, a flag written
 * another way) is left to yargs, which the second stage then loads with its help and errors.
 * Stage 1 imports this: it imports nothing.
 */
export interface TokenFlags {
  refresh: boolean;
  /** false for --no-cache. */
  cache: boolean;
  json: boolean;
  debug: boolean;
  profile?: string;
  config?: string;
}

export function parseTokenArgv(argv: readonly string[]): TokenFlags | undefined {
  const out: TokenFlags = { refresh: false, cache: true, json: false, debug: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === 'token' && i === 0) continue;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? a.slice(2, eq === -1 ? undefined : eq) : '';
    if (a === '--json') out.json = true;
    else if (a === '--refresh') out.refresh = true;
    else if (a === '--no-cache') out.cache = false;
    else if (a === '--cache') out.cache = true;
    else if (a === '--debug') out.debug = true;
    else if (a === '--profile' || a === '--config') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('-')) return undefined;
      out[name as 'profile' | 'config'] = v;
    } else if (a.startsWith('--profile=') || a.startsWith('--config=')) {
      out[name as 'profile' | 'config'] = a.slice(eq + 1);
    } else return undefined;
  }
  return out;
}
