/**
 * What the token path prints on stdout (contract §1), for both stages: the token and one
 * newline, or with --json one object. Stage 1 imports this: it imports nothing.
 */
export interface PrintedToken {
  token: string;
  expiresAtMs?: number;
  source: string;
  profile: string;
  /** How the token was had; --json tells only hit, stale or miss. */
  cache: 'hit' | 'miss' | 'stale' | 'refresh' | 'rejected';
}

export function renderToken(t: PrintedToken, json: boolean): string {
  if (!json) return `${t.token}\n`;
  return `${JSON.stringify({
    token: t.token,
    expiresAt: t.expiresAtMs !== undefined ? new Date(t.expiresAtMs).toISOString() : null,
    source: t.source,
    profile: t.profile,
    cache: t.cache === 'hit' || t.cache === 'stale' ? t.cache : 'miss',
  })}\n`;
}
