/**
 * `n` mildly compressible bytes from a seeded linear congruential generator: mostly a few letters,
 * some noise, so a layer of them spans several deflate blocks without shrinking to nothing.
 */
export function payload(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24 < 160 ? 97 + ((x >>> 16) % 8) : x & 0xff;
  }
  return out;
}
