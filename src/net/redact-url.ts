/**
 * A URL as it may be shown (stderr, audit, doctor): its password becomes `***`
 * (`http://user:***@proxy:3128/`). Same rule and output as src/output/redact.ts's redactUrl
 * (the secout engineer's one redaction); this re-states it only until that file lands.
 */
export function redactUrl(url: string): string {
  return url.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:"'<>]*):([^\s/?#"'<>]*)@/gi, '$1$2:***@');
}
