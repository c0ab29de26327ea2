/**
 * The fixed input the deflate guard compresses at start-up. Generated in code (no fixture file
 * to lose or corrupt) from a seeded PRNG, and shaped to exercise every path of a deflate
 * encoder that layer data hits: incompressible literals (stored/literal-heavy blocks), text with
 * many short and medium matches, long runs (distance-1 matches up to length 258), matches near
 * the 32 KiB window edge, and tar-like blocks of octal fields and zero padding.
 *
 * Changing anything here changes the pinned digest in zlib-guard.ts: that is deliberate, never
 * casual.
 */

/** xorshift32: tiny, fast, and the same on every platform and Node version. */
function prng(seed: number): Prng {
  // The state is kept as an int32 (the same bits as the unsigned value): an unsigned one of 2^31
  // or more is not a small integer, and storing it allocated a number at every draw (~50,000 of
  // them, most of the ~15 ms this took at a thread's start).
  let x = (seed >>> 0 || 1) | 0;
  const next = (() => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  }) as Prng;
  // The low byte of each of `end - start` draws, into b[start..end): the same draws as calling
  // next() per byte, in one loop (this runs at every build's start, mostly before the JIT has
  // warmed up, where a call per byte was most of the guard's ~45 ms).
  next.fill = (b, start, end) => {
    // On int32s: the same bits (the one right shift is unsigned), fewer steps than keeping it unsigned.
    let y = x;
    for (let i = start; i < end; i++) {
      y ^= y << 13;
      y ^= y >>> 17;
      y ^= y << 5;
      b[i] = y & 0xff;
    }
    x = y;
  };
  next.state = () => x;
  next.setState = (v) => {
    x = v | 0;
  };
  return next;
}

/** The generator, its bytes in bulk, and its state (an int32) for a loop that draws inline. */
type Prng = (() => number) & { fill(b: Buffer, start: number, end: number): void; state(): number; setState(v: number): void };

const KiB = 1024;

/** About 320 KiB, always the same bytes. */
export function goldenDeflateInput(): Buffer {
  const next = prng(0x1a2b3c4d);
  const parts: Buffer[] = [randomBytes(next, 64 * KiB), pseudoText(next, 96 * KiB), runs(next, 32 * KiB), farRepeats(next, 64 * KiB), tarLike(next, 64 * KiB)];
  return Buffer.concat(parts);
}

function randomBytes(next: Prng, n: number): Buffer {
  const b = Buffer.alloc(n);
  next.fill(b, 0, n);
  return b;
}

/** Words from a small vocabulary, picked with a skew (some words are much more frequent). */
function pseudoText(next: Prng, n: number): Buffer {
  const letters = 'etaoinshrdlucmfwypvbgkjqxz';
  const vocab: string[] = [];
  for (let w = 0; w < 300; w++) {
    const len = 2 + (next() % 10);
    let s = '';
    for (let i = 0; i < len; i++) s += letters[Math.min(next() % 26, next() % 26)];
    vocab.push(s);
  }
  // Each word's bytes with each of its three endings, made once: a Buffer.write of a joined
  // string per word was most of this function's time, which runs at a thread's start, mostly
  // before the JIT has warmed up.
  const endings = ['.\n', ', ', ' '];
  const forms = vocab.map((word) => endings.map((end) => Buffer.from(word + end, 'latin1')));
  const b = Buffer.alloc(n);
  let filled = 0;
  // The three draws per word inline (next()'s steps on a local int32): this loop runs ~13,000
  // times at a thread's start, mostly before the JIT has warmed up, where a call per draw was
  // most of its time.
  let y = next.state();
  while (filled < n) {
    y ^= y << 13;
    y ^= y >>> 17;
    y ^= y << 5;
    const d1 = (y >>> 0) % 300;
    y ^= y << 13;
    y ^= y >>> 17;
    y ^= y << 5;
    const d2 = (y >>> 0) % 300;
    y ^= y << 13;
    y ^= y >>> 17;
    y ^= y << 5;
    const r = (y >>> 0) % 20;
    // min of two draws skews towards the start of the vocabulary
    const bytes = forms[Math.min(d1, d2)]![r === 0 ? 0 : r === 1 ? 1 : 2]!;
    // Byte by byte (a TypedArray set per word cost more for ~8 bytes); the last word is cut at n.
    const end = Math.min(n, filled + bytes.length);
    for (let i = 0; filled < end; i++) b[filled++] = bytes[i]!;
  }
  next.setState(y);
  return b;
}

function runs(next: Prng, n: number): Buffer {
  const b = Buffer.alloc(n);
  let i = 0;
  while (i < n) {
    const len = Math.min(n - i, 1 + (next() % 2000));
    b.fill(next() & 0xff, i, i + len);
    i += len;
  }
  return b;
}

/** Fresh random chunks and copies of earlier chunks from 16..32 KiB back (the window's far end). */
function farRepeats(next: Prng, n: number): Buffer {
  const b = Buffer.alloc(n);
  let i = 0;
  while (i < n) {
    const len = Math.min(n - i, 64 + (next() % 600));
    const dist = 16 * KiB + (next() % (16 * KiB - 1024));
    if (i >= dist && next() % 3 !== 0) b.copy(b, i, i - dist, i - dist + len);
    else next.fill(b, i, i + len);
    i += len;
  }
  return b;
}

/** 512-byte blocks shaped like tar headers followed by short contents and zero padding. */
function tarLike(next: Prng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let off = 0; off + 1024 <= n; off += 1024) {
    const name = `nix/store/${(next() >>> 0).toString(36)}${(next() >>> 0).toString(36)}-pkg-${next() % 100}/lib/file${next() % 1000}`;
    b.write(name, off, 'latin1');
    const octal = (v: number, w: number) => v.toString(8).padStart(w - 1, '0');
    b.write(`${octal(0o444 + (next() % 2) * 0o111, 8)}\0${octal(0, 8)}\0${octal(0, 8)}\0`, off + 100, 'latin1');
    b.write(`${octal(next() % 512, 12)}\0${octal(1, 12)}\0`, off + 124, 'latin1');
    b.write('ustar\x0000root', off + 257, 'latin1');
    b.write('root', off + 297, 'latin1');
    const content = randomBytes(next, next() % 512);
    content.copy(b, off + 512);
  }
  return b;
}
