/**
 * Node's own TLS warnings never reach stderr raw (issue 11 finding 12b): stderr carries only
 * `keybroker:` lines. Two can fire on a network path:
 * - DEP0123, "Setting the TLS ServerName to an IP address is not permitted", when a library
 *   passes an IP address as `servername` (axios's own proxy code did, for an IP-address Vault
 *   behind a proxy; our agents never set one for an IP);
 * - the NODE_TLS_REJECT_UNAUTHORIZED=0 notice, which would also be untrue here: every client
 *   passes `rejectUnauthorized` explicitly, so the variable turns nothing off (finding 14;
 *   `doctor` reports the variable instead).
 * Both become --debug lines; every other warning passes through unchanged.
 */
let installed = false;

const TLS_WARNING = /NODE_TLS_REJECT_UNAUTHORIZED|TLS ServerName to an IP address/;

export function routeTlsWarnings(debug: (line: string) => void): void {
  if (installed) return;
  installed = true;
  const original = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === 'string' ? warning : warning?.message;
    const code =
      rest.find((r) => typeof r === 'string' && /^DEP\d+$/.test(r)) ?? (rest[0] as { code?: string })?.code;
    if (code === 'DEP0123' || (typeof text === 'string' && TLS_WARNING.test(text))) {
      debug(`net: Node warning kept off stderr: ${code ?? ''} ${String(text).slice(0, 120)}`);
      return;
    }
    return (original as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
}
