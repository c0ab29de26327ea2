import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** How one entry's header was written, beyond the values a tar reader decodes. */
export interface RawHeader {
  /** From the magic and version bytes: `ustar` (POSIX `ustar\0` `00`), `gnu` (`ustar  \0`), `v7` (none). */
  format: string;
  /** sha256 hex of every header byte of the entry: pax/GNU long-name blocks and the ustar block. */
  hash: string;
}

const BLOCK = 512;

/**
 * A pass-through that follows the tar's block structure on its own (header, data, padding) and
 * records each entry's raw header bytes as a hash. It sees what a tar reader hides: two headers
 * with equal values but other bytes (number padding, checksum format, magic, name/prefix split).
 * Memory: one block and one hash at a time, plus a small record per entry.
 */
export class TarHeaderScanner extends Transform {
  readonly headers: RawHeader[] = [];
  private block = Buffer.alloc(BLOCK);
  private fill = 0;
  /** Bytes of data (and padding) still to skip before the next header. */
  private skip = 0;
  /** Bytes of a pax/GNU long header's data to hash (part of the entry's header). */
  private meta = 0;
  private metaData: Buffer[] = [];
  private hash: Hash | undefined;
  private paxSize: number | undefined;
  private ended = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        if (this.meta > 0) {
          const m = Math.min(this.meta, n);
          const part = chunk.subarray(off, off + m);
          this.hash!.update(part);
          this.metaData.push(part);
          this.meta -= m;
          if (this.meta === 0) this.endMeta();
        }
        this.skip -= n;
        off += n;
        continue;
      }
      const n = Math.min(BLOCK - this.fill, chunk.length - off);
      chunk.copy(this.block, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill === BLOCK) {
        this.fill = 0;
        this.header(this.block);
      }
    }
    cb(null, chunk);
  }

  private header(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    this.hash ??= createHash('sha256');
    this.hash.update(h);
    const type = String.fromCharCode(h[156]!);
    let size = octal(h.subarray(124, 136));
    const padded = (s: number) => Math.ceil(s / BLOCK) * BLOCK;
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      this.meta = size;
      this.metaData = [];
      this.skip = padded(size);
      if (type === 'x') this.paxSize = undefined;
      if (size === 0) this.endMeta();
      return;
    }
    if (this.paxSize !== undefined) size = this.paxSize;
    this.headers.push({ format: formatOf(h), hash: this.hash.digest('hex') });
    this.hash = undefined;
    this.paxSize = undefined;
    // As tar-stream reads it: a directory has no data whatever its size field says.
    this.skip = type === '5' ? 0 : padded(size);
  }

  /** A pax header's `size` record overrides the next entry's size field (files of 8 GiB and more). */
  private endMeta(): void {
    const text = Buffer.concat(this.metaData).toString('utf8');
    const m = /(?:^|\n)\d+ size=(\d+)\n/.exec(text);
    if (m) this.paxSize = Number(m[1]);
    this.metaData = [];
  }
}

function octal(field: Buffer): number {
  if ((field[0] ?? 0) & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const end = field.indexOf(0);
  const s = field.subarray(0, end === -1 ? field.length : end).toString('latin1').trim();
  return s ? parseInt(s, 8) : 0;
}

function formatOf(h: Buffer): string {
  const magic = h.subarray(257, 263).toString('latin1');
  const version = h.subarray(263, 265);
  if (magic === 'ustar\0') return version.toString('latin1') === '00' ? 'ustar' : `ustar, version bytes ${version.toString('hex')}`;
  if (magic === 'ustar ' && version[0] === 0x20 && version[1] === 0) return 'gnu';
  if (h.subarray(257, 265).every((b) => b === 0)) return 'v7';
  return `unknown magic bytes ${h.subarray(257, 265).toString('hex')}`;
}
