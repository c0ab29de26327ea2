import { IS_NIX_BASE32 } from './nix-base32.js';

const HASH_LEN = 32;
const EMPTY = Buffer.alloc(0);

/**
 * Finds store-path hash parts in a byte stream, the way Nix's reference scanner does: every
 * 32-byte window made only of nix-base32 characters is a candidate, and it is a reference when it
 * is one of the hash parts we look for. Fed the NAR serialisation of a path, this is exactly Nix's
 * rule (file contents, symlink targets and entry names all count).
 *
 * Speed: most bytes of real files are not base32, so, like Nix, we test the last byte of a window
 * first and jump a whole window ahead when it is not base32. Windows split between two `push`
 * calls are caught by carrying the trailing run of base32 bytes (at most 31) into the next call.
 */
export class RefScanner {
  /** Hash parts of `targets` found so far. */
  readonly found = new Set<string>();
  /**
   * Every distinct candidate window seen (hash part or not), up to `maxWindows`; undefined once
   * that limit was passed. Lets a cached scan be matched against a different set of targets.
   */
  windows: Set<string> | undefined = new Set<string>();
  private carry: Buffer = EMPTY;

  constructor(
    private readonly targets: { has(hashPart: string): boolean },
    private readonly maxWindows = 4096,
  ) {}

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.carry.length > 0) this.scanBoundary(buf);
    this.scan(buf, 0, buf.length);
    this.carry = this.trailingRun(buf);
  }

  private scanBoundary(buf: Buffer): void {
    let lead = 0;
    while (lead < buf.length && lead < HASH_LEN - 1 && IS_NIX_BASE32[buf[lead]!] === 1) lead++;
    if (this.carry.length + lead < HASH_LEN) return;
    // Windows wholly inside the carry or the lead are too short to exist, so this finds only
    // the windows that straddle the boundary.
    const joined = Buffer.concat([this.carry, buf.subarray(0, lead)]);
    this.scan(joined, 0, joined.length);
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

  private scan(s: Buffer, from: number, to: number): void {
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
      this.hit(s.toString('latin1', i, i + HASH_LEN));
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
