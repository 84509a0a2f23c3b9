/** A seeded PRNG returning numbers in [0, 1). */
export function prng(seed: number): () => number;
