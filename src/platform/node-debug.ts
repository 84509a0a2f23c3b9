/**
 * `NODE_DEBUG` naming http, https, http2, net or tls makes Node print request headers (a
 * Vault token, an AppRole login's answer) on stderr (contract §7). keybroker then refuses to
 * contact a source. Tiny and dependency-free: the first stage imports it.
 */
import { configError, seeDocs } from '../errors.js';

/** Node's modules whose debug output carries request headers or bodies. */
const UNSAFE_DEBUG_SECTIONS = ['http', 'https', 'http2', 'net', 'tls'] as const;

/**
 * The unsafe sections NODE_DEBUG turns on, matched as Node matches them
 * (lib/internal/util/debuglog.js): comma-separated names, case-insensitive, `*` a wildcard.
 */
export function unsafeDebugSections(nodeDebug: string | undefined): string[] {
  if (nodeDebug === undefined || nodeDebug === '') return [];
  const alternatives = nodeDebug
    .replace(/[|\\{}()[\]^$+?.]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll(',', '$|^');
  const re = new RegExp(`^(${alternatives})$`, 'i');
  return UNSAFE_DEBUG_SECTIONS.filter((s) => re.test(s));
}

/** Throws ERR_UNSAFE_DEBUG (exit 2) when NODE_DEBUG would print request headers. */
export function assertSafeNodeDebug(env: Readonly<Record<string, string | undefined>>): void {
  const sections = unsafeDebugSections(env.NODE_DEBUG);
  if (sections.length === 0) return;
  throw configError(
    'ERR_UNSAFE_DEBUG',
    `refusing to contact a source: NODE_DEBUG turns on ${sections.join(', ')}, whose debug output prints request headers, tokens included`,
    { hint: `unset NODE_DEBUG (keybroker --debug traces safely); ${seeDocs('ERR_UNSAFE_DEBUG')}` },
  );
}
