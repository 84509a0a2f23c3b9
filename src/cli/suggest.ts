/** "Did you mean …?": the candidates closest to what was typed, by edit distance. */

/** Damerau–Levenshtein distance (optimal string alignment): a swap of neighbours costs 1. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * Up to `max` of the nearest candidates within a distance of a third of the word (at least 1,
 * at most 3); a candidate that contains the word, or is contained in it, counts as close.
 */
export function closest(word: string, candidates: Iterable<string>, max = 3): string[] {
  const w = word.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  const scored: Array<[string, number]> = [];
  for (const c of candidates) {
    const lc = c.toLowerCase();
    const dist = editDistance(w, lc);
    const contains = w.length >= 4 && (lc.includes(w) || w.includes(lc));
    if (dist <= limit || contains) scored.push([c, contains ? Math.min(dist, limit) : dist]);
  }
  scored.sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0]));
  // Only the nearest: a one-letter slip should not also suggest everything three letters away.
  const best = scored[0]?.[1];
  return scored
    .filter(([, score]) => score === best)
    .slice(0, max)
    .map(([c]) => c);
}

/** "a", "a or b", "a, b or c". */
export function orList(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}
