import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { xorshift32 } from './random.js';
import { tempDir } from './tmp.js';
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

/** `n` bytes, always the same for a seed: text-like runs mixed with noise (a compressor has real work). */
export function wordCorpus(n: number, seed = 7): Buffer {
  const next = xorshift32(seed);
  const words = Array.from({ length: 500 }, (_, i) => `w${(i * 7919).toString(36)}`);
  const b = Buffer.alloc(n);
  for (let off = 0; off < n; ) {
    if (next() % 10 === 0) b[off++] = next() & 0xff;
    else off += b.write(`${words[next() % 500]!} `, off, 'latin1');
  }
  return b;
}

/** A tree `lib/a.bin`, `lib/b.txt`, `z.dat` of word corpora of these sizes (seeds 1, 2, 3), in a new temp dir. */
export async function corpusTree(prefix: string, [a, b, z]: [number, number, number]): Promise<string> {
  const dir = join(await tempDir(prefix), 'tree');
  await mkdir(join(dir, 'lib'), { recursive: true });
  await writeFile(join(dir, 'lib', 'a.bin'), wordCorpus(a, 1));
  await writeFile(join(dir, 'lib', 'b.txt'), wordCorpus(b, 2));
  await writeFile(join(dir, 'z.dat'), wordCorpus(z, 3));
  return dir;
}
