/**
 * A seeded xorshift32 generator: the next unsigned 32-bit number each call, the same sequence
 * for the same seed on every run (tests that try many random cases, reproducibly).
 */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}
