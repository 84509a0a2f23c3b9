/**
 * The troubleshooting entries, parsed from docs/troubleshooting.md. Pure: the text comes in,
 * so tests parse the file itself and the executable parses the copy built into it.
 */
export interface ExplainEntry {
  code: string;
  /** The `## ` section the entry sits in ("Vault and vault-identity sources"). */
  section: string;
  /** The entry's text, markdown as written, without its heading. */
  body: string;
}

const HEADING = /^(#{1,6})\s+(.*)$/;
const CODE = /ERR_[A-Z0-9_]+/g;

/** Every `##`–`####` heading that names ERR_ codes starts an entry for each code it names. */
export function parseTroubleshooting(markdown: string): Map<string, ExplainEntry> {
  const entries = new Map<string, ExplainEntry>();
  let section = '';
  let codes: string[] = [];
  let body: string[] = [];
  const flush = () => {
    const text = body.join('\n').trim();
    for (const code of codes) if (!entries.has(code)) entries.set(code, { code, section, body: text });
    codes = [];
    body = [];
  };
  let fence = false;
  for (const line of markdown.split(/\r?\n/)) {
    if (line.startsWith('```')) fence = !fence;
    const m = fence ? null : HEADING.exec(line);
    if (!m) {
      if (codes.length > 0) body.push(line);
      continue;
    }
    flush();
    const level = m[1]!.length;
    const named = m[2]!.match(CODE) ?? [];
    if (level >= 2 && level <= 4 && named.length > 0) codes = [...named];
    else if (level === 2) section = m[2]!.trim();
  }
  flush();
  return entries;
}

/** What `keybroker explain CODE` prints. */
export function renderEntry(entry: ExplainEntry, docsUrl?: string): string {
  const more = docsUrl ? `\n\nMore: ${docsUrl.replace(/#.*$/, '')}#${entry.code.toLowerCase()}` : '';
  const where = entry.section ? ` (${entry.section})` : '';
  return `${entry.code}${where}\n\n${entry.body}${more}\n`;
}
