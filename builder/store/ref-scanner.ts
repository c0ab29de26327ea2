import { IS_NIX_BASE32 } from './nix-base32.js';

const HASH_LEN = 32;
const EMPTY = Buffer.alloc(0);
const DASH = 0x2d;

/** The last `n` bytes of `prev + buf` (a copy: `buf` may be reused by its producer). */
function lastBytes(prev: Buffer, buf: Buffer, n: number): Buffer {
  if (buf.length >= n) return Buffer.from(buf.subarray(buf.length - n));
  const joined = Buffer.concat([prev, buf]);
  return Buffer.from(joined.subarray(Math.max(0, joined.length - n)));
}

/**
 * Finds store-path hash parts in a byte stream, the way Nix's reference scanner does: every
 * 32-byte window made only of nix-base32 characters is a candidate, and it is a reference when it
 * is one of the hash parts we look for. Fed the NAR serialisation of a path, this is exactly Nix's
 * rule (file contents, symlink targets and entry names all count).
 *
 * Speed: most bytes of real files are not base32, so, like Nix, we test the last byte of a window
 * first and jump a whole window ahead when it is not base32. Windows split between two `push`
 * calls are caught by carrying the trailing run of base32 bytes (at most 31) into the next call.
 *
 * Mentions: given a store dir, the scanner also notes each hash part written as a store path —
 * a run of exactly 32 base32 bytes right after `<storeDir>/` and right before `-` — whether or not
 * it is a target (`mentioned`). A build compares them with the store's entries to warn of a path
 * the files name that the store lacks. It costs nothing on bytes that are not base32: only the
 * first window of a run is looked at, by comparing the bytes before it with `<storeDir>/` (the
 * last bytes of the previous push are kept for a run at the start of a chunk).
 */
export class RefScanner {
  /** Hash parts of `targets` found so far. */
  readonly found = new Set<string>();
  /**
   * Every distinct candidate window seen (hash part or not), up to `maxWindows`; undefined once
   * that limit was passed. Lets a cached scan be matched against a different set of targets.
   */
  windows: Set<string> | undefined = new Set<string>();
  /**
   * Hash parts written as store paths (`<storeDir>/<hash>-`), targets or not, up to
   * `maxWindows`; undefined when no store dir was given or past that limit.
   */
  mentioned: Set<string> | undefined;
  private carry: Buffer = EMPTY;
  /** `<storeDir>/`, when mentions are looked for. */
  private readonly prefix: Buffer | undefined;
  /** The last bytes pushed (up to `prefix.length + 31`): what precedes the next chunk. */
  private tail: Buffer = EMPTY;
  /** A mention whose `-` would be the next chunk's first byte. */
  private pending: string | undefined;

  constructor(
    private readonly targets: { has(hashPart: string): boolean },
    private readonly maxWindows = 4096,
    options: { storeDir?: string } = {},
  ) {
    if (options.storeDir !== undefined) {
      this.prefix = Buffer.from(`${options.storeDir === '/' ? '' : options.storeDir}/`);
      this.mentioned = new Set<string>();
    }
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.pending !== undefined) {
      if (buf[0] === DASH) this.mention(this.pending);
      this.pending = undefined;
    }
    if (this.carry.length > 0) this.scanBoundary(buf);
    this.scan(buf, 0, buf.length, false);
    this.carry = this.trailingRun(buf);
    if (this.prefix) this.tail = lastBytes(this.tail, buf, this.prefix.length + HASH_LEN - 1);
  }

  private scanBoundary(buf: Buffer): void {
    let lead = 0;
    while (lead < buf.length && lead < HASH_LEN - 1 && IS_NIX_BASE32[buf[lead]!] === 1) lead++;
    if (this.carry.length + lead < HASH_LEN) return;
    // Windows wholly inside the carry or the lead are too short to exist, so this finds only
    // the windows that straddle the boundary. With mentions looked for, the bytes before the
    // carry come along (the tail ends with the carry), so the prefix check sees them.
    const before = this.prefix ? this.tail.subarray(0, this.tail.length - this.carry.length) : EMPTY;
    const joined = Buffer.concat([before, this.carry, buf.subarray(0, lead)]);
    this.boundaryNext = lead < buf.length ? buf[lead] : undefined;
    this.scan(joined, before.length, joined.length, true);
  }

  /** The byte after the boundary buffer (`buf[lead]`), when the chunk has one. */
  private boundaryNext: number | undefined;

  /**
   * Whether the run starting at `s[i]` is a store path's hash part: `<storeDir>/` before it and
   * `-` right after its 32 bytes. `boundary`: `s` is the boundary buffer, which holds the bytes
   * before the run; else `s` is a chunk, preceded by `tail`.
   */
  private checkMention(s: Buffer, i: number, to: number, boundary: boolean, hash: string): void {
    const prefix = this.prefix!;
    const p = prefix.length;
    // Compared byte by byte from the end (the `/` first): most runs fail at once, and a loop of
    // a few bytes costs less than Buffer#compare's argument checks.
    if (i >= p) {
      for (let k = 1; k <= p; k++) if (s[i - k] !== prefix[p - k]) return;
    } else if (boundary) {
      return; // the boundary buffer holds every byte there is before it
    } else {
      const tail = this.tail;
      if (tail.length < p - i) return;
      for (let k = 1; k <= p; k++) {
        const b = k <= i ? s[i - k] : tail[tail.length - (k - i)];
        if (b !== prefix[p - k]) return;
      }
    }
    const end = i + HASH_LEN;
    if (end < to) {
      if (s[end] === DASH) this.mention(hash);
    } else if (boundary && this.boundaryNext !== undefined) {
      if (this.boundaryNext === DASH) this.mention(hash);
    } else this.pending = hash; // the `-` would be the next chunk's first byte
  }

  private mention(hash: string): void {
    if (!this.mentioned) return;
    this.mentioned.add(hash);
    if (this.mentioned.size > this.maxWindows) this.mentioned = undefined;
  }

  /** The last run of base32 bytes of `carry + buf`, at most 31 bytes long. */
  private trailingRun(buf: Buffer): Buffer {
    let start = buf.length;
    while (start > 0 && buf.length - start < HASH_LEN - 1 && IS_NIX_BASE32[buf[start - 1]!] === 1) start--;
    if (start === buf.length) return EMPTY; // the usual case: data ends in a non-base32 byte
    const run = buf.subarray(start);
    if (start > 0 || this.carry.length === 0) return Buffer.from(run);
    // The whole chunk is base32 and shorter than a window: the run continues the old carry.
    const joined = Buffer.concat([this.carry, run]);
    return joined.subarray(Math.max(0, joined.length - (HASH_LEN - 1)));
  }

  private scan(s: Buffer, from: number, to: number, boundary: boolean): void {
    const table = IS_NIX_BASE32;
    let i = from;
    while (i + HASH_LEN <= to) {
      let j = HASH_LEN - 1;
      while (j >= 0 && table[s[i + j]!] === 1) j--;
      if (j >= 0) {
        i += j + 1;
        continue;
      }
      // A run of base32 bytes: every further byte that is base32 too ends one more window.
      // Only its first window can follow `<storeDir>/` (the byte before a run is not base32).
      const first = s.toString('latin1', i, i + HASH_LEN);
      if (this.mentioned) this.checkMention(s, i, to, boundary, first);
      this.hit(first);
      while (i + HASH_LEN < to && table[s[i + HASH_LEN]!] === 1) {
        i++;
        this.hit(s.toString('latin1', i, i + HASH_LEN));
      }
      // The byte after the run is not base32 (or the data ends), so no window starts before it.
      i += HASH_LEN + 1;
    }
  }

  private hit(window: string): void {
    if (this.targets.has(window)) this.found.add(window);
    if (this.windows) {
      this.windows.add(window);
      if (this.windows.size > this.maxWindows) this.windows = undefined;
    }
  }
}
