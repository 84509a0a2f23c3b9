// Largest and smallest of a list of any length. `Math.max(...list)` passes every element as an
// argument and overflows the stack beyond about 100,000 of them (10,000 laptops × their gaps).

/** The largest number in `list`; -Infinity for an empty one, as Math.max(). */
export function maxOf(list) {
  let m = Number.NEGATIVE_INFINITY;
  for (const x of list) if (x > m) m = x;
  return m;
}

/** The smallest number in `list`; Infinity for an empty one, as Math.min(). */
export function minOf(list) {
  let m = Number.POSITIVE_INFINITY;
  for (const x of list) if (x < m) m = x;
  return m;
}
