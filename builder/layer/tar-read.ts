import { ImgbuildError } from '../errors.js';
import { BLOCK, padding } from './tar-header.js';

/**
 * A streaming tar reader: POSIX ustar, pax extended headers (`x`, and `g` merged into the next
 * `x` as tar-stream did), GNU long names (`L`, `K`), base-256 numbers, v7 headers. It pulls
 * chunks from an async iterable and yields each entry with its content as subarrays of those
 * chunks: nothing is copied but a header that straddles two chunks, and memory is one chunk and
 * the entry's long-header records (at most MAX_META_BYTES).
 *
 * Semantics, for `diff`'s sake the same as tar-stream's (which this replaced): a pax `path`,
 * `linkpath` and `size` replace the header's fields, other pax records only show in `pax`; a
 * directory has no content whatever its size field says; a regular file whose name ends in `/`
 * is a directory (old tars); the archive ends at the first zero block (the rest is read, so a
 * hash of the stream sees it, and ignored, as GNU tar does); input that ends mid-header or
 * mid-content is an error, one that ends on a header boundary without the end blocks is not.
 */

/** Largest pax or GNU long-name record set accepted (tar-stream's limit too): a header, not data. */
export const MAX_META_BYTES = 4 * 1024 * 1024;

export type TarReadType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'contiguous-file' | 'unknown';

/** One entry as its headers say, long names and pax path/linkpath/size applied. */
export interface TarReadEntry {
  name: string;
  type: TarReadType;
  /** The typeflag byte as a character (`'0'`, `'5'`, `'S'`…): says what an `unknown` type is. */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch, from the header's field (a pax `mtime` shows in `pax` only). */
  mtime: number;
  uname: string;
  gname: string;
  /** Symlink or hard link target; undefined when the field is empty. */
  linkname?: string;
  devmajor: number;
  devminor: number;
  /** The pax records applying to this entry (a global header's merged under its own), if any. */
  pax?: Record<string, string>;
  /** `ustar` (`ustar\0` `00`), `gnu` (`ustar  \0`), `v7` (no magic), or what the magic bytes were. */
  format: string;
  /** Offset of the entry's content in the tar. */
  dataOffset: number;
  /**
   * Every header byte of the entry as written: each long header's block and records (without
   * their padding), then the entry's own block. Views into the input: use them before the next entry.
   */
  headerBytes: Buffer[];
}

export interface TarReadItem {
  entry: TarReadEntry;
  /** The entry's content, in pieces; what is not read is skipped when the next entry is asked for. */
  content: AsyncIterable<Buffer>;
}

/** A tar that cannot be read: not a tar, corrupt, or cut short. */
export class TarReadError extends ImgbuildError {
  override name = 'TarReadError';
  constructor(message: string, readonly offset: number) {
    super('tar-read', message);
  }
}

/** Reads `source` as a tar; see the module comment for what it accepts. */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarReadItem> {
  const input = new ChunkInput(source);
  try {
    let pax: Record<string, string> | undefined;
    let paxGlobal: Record<string, string> | undefined;
    let longName: string | undefined;
    let longLink: string | undefined;
    let headerBytes: Buffer[] = [];
    for (;;) {
      const at = input.offset;
      const block = await input.read(BLOCK);
      if (block === undefined) {
        if (headerBytes.length > 0) throw new TarReadError(`the tar ends at byte ${at}, after a long-name or pax header and before its entry`, at);
        return;
      }
      if (block.length < BLOCK) throw new TarReadError(`the tar ends inside a header at byte ${at}: ${block.length} of its ${BLOCK} bytes`, at);
      if (isZeroBlock(block)) {
        await input.drain();
        return;
      }
      checkChecksum(block, at);
      headerBytes.push(block);
      const typeflag = String.fromCharCode(block[156]!);
      const fieldSize = decodeNumber(block, 124, 12);
      if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K' || typeflag === 'N') {
        if (!(fieldSize >= 0) || fieldSize > MAX_META_BYTES) throw new TarReadError(`the ${metaWhat(typeflag)} at byte ${at} says it is ${fieldSize} bytes; at most ${MAX_META_BYTES} are accepted`, at);
        const records = await input.read(fieldSize);
        if (records === undefined || records.length < fieldSize) throw new TarReadError(`the tar ends inside the ${metaWhat(typeflag)} at byte ${at}`, at);
        headerBytes.push(records);
        await skipOrFail(input, padding(fieldSize), at, `the padding of the ${metaWhat(typeflag)}`);
        if (typeflag === 'x') pax = { ...paxGlobal, ...decodePax(records) };
        else if (typeflag === 'g') paxGlobal = decodePax(records);
        else if (typeflag === 'K') longLink = decodeString(records, 0, records.length);
        else longName = decodeString(records, 0, records.length);
        continue;
      }
      const format = formatOf(block);
      let name = longName ?? ustarName(block, format);
      let linkname = longLink ?? (block[157] === 0 ? undefined : decodeString(block, 157, 100));
      let size = fieldSize;
      if (pax?.path) name = pax.path;
      if (pax?.linkpath) linkname = pax.linkpath;
      if (pax?.size) size = parseInt(pax.size, 10);
      if (!(size >= 0) || !Number.isSafeInteger(size)) throw new TarReadError(`the entry ${JSON.stringify(name)} at byte ${at} has an invalid size`, at);
      let type = typeOf(typeflag);
      if (type === 'file' && typeflag === '0' && name.endsWith('/')) type = 'directory';
      if (typeflag === '\0' && name.endsWith('/')) type = 'directory';
      const entry: TarReadEntry = {
        name,
        type,
        typeflag,
        mode: decodeNumber(block, 100, 8),
        uid: decodeNumber(block, 108, 8),
        gid: decodeNumber(block, 116, 8),
        size,
        mtime: decodeNumber(block, 136, 12),
        uname: decodeString(block, 265, 32),
        gname: decodeString(block, 297, 32),
        ...(linkname !== undefined ? { linkname } : {}),
        devmajor: decodeNumber(block, 329, 8),
        devminor: decodeNumber(block, 337, 8),
        ...(pax ? { pax } : {}),
        format,
        dataOffset: input.offset,
        headerBytes,
      };
      pax = undefined;
      longName = undefined;
      longLink = undefined;
      headerBytes = [];
      const dataSize = type === 'directory' ? 0 : size;
      const body = new EntryBody(input, dataSize, name);
      yield { entry, content: body };
      await body.finish();
      await skipOrFail(input, padding(dataSize), input.offset, `the padding of ${JSON.stringify(name)}`);
    }
  } finally {
    await input.close();
  }
}

/** The content of one entry: pieces of the input, `size` bytes in all. */
class EntryBody implements AsyncIterable<Buffer> {
  private left: number;
  constructor(
    private readonly input: ChunkInput,
    size: number,
    private readonly name: string,
  ) {
    this.left = size;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    while (this.left > 0) {
      const piece = await this.input.next(this.left);
      if (piece === undefined) throw this.cut();
      this.left -= piece.length;
      yield piece;
    }
  }

  /** Skips what the reader of the entry left unread. */
  async finish(): Promise<void> {
    const skipped = await this.input.skip(this.left);
    this.left -= skipped;
    if (this.left > 0) throw this.cut();
  }

  private cut(): TarReadError {
    return new TarReadError(`the tar ends inside the content of ${JSON.stringify(this.name)}, ${this.left} bytes short`, this.input.offset);
  }
}

/** Pulls chunks on demand and hands out exact reads, pieces, or skips. */
class ChunkInput {
  private readonly it: AsyncIterator<Uint8Array>;
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  private done = false;
  /** Bytes handed out or skipped so far: the offset in the tar of the next byte. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** False when the input has ended. */
  private async fill(): Promise<boolean> {
    while (this.pos >= this.chunk.length) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      const c = r.value;
      this.chunk = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      this.pos = 0;
    }
    return true;
  }

  /** Up to `max` bytes (at least one), as a view; undefined at the end of the input. */
  async next(max: number): Promise<Buffer | undefined> {
    if (!(await this.fill())) return undefined;
    const n = Math.min(max, this.chunk.length - this.pos);
    const piece = this.chunk.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return piece;
  }

  /** Exactly `n` bytes (fewer only at the end of the input; undefined when none are left). */
  async read(n: number): Promise<Buffer | undefined> {
    if (n === 0) return Buffer.alloc(0);
    const first = await this.next(n);
    if (first === undefined || first.length === n) return first;
    const parts = [first];
    let have = first.length;
    while (have < n) {
      const piece = await this.next(n - have);
      if (piece === undefined) break;
      parts.push(piece);
      have += piece.length;
    }
    return Buffer.concat(parts, have);
  }

  /** Skips up to `n` bytes; returns how many were skipped (fewer only at the end of the input). */
  async skip(n: number): Promise<number> {
    let skipped = 0;
    while (skipped < n) {
      const piece = await this.next(n - skipped);
      if (piece === undefined) break;
      skipped += piece.length;
    }
    return skipped;
  }

  /** Reads the rest of the input, so that whatever hashes or counts the stream sees all of it. */
  async drain(): Promise<void> {
    while ((await this.next(Number.MAX_SAFE_INTEGER)) !== undefined);
  }

  /** Stops the source early (a reader that stopped iterating, or an error): its stream is closed. */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}

async function skipOrFail(input: ChunkInput, n: number, at: number, what: string): Promise<void> {
  if ((await input.skip(n)) < n) throw new TarReadError(`the tar ends inside ${what} (header at byte ${at})`, at);
}

function metaWhat(typeflag: string): string {
  return typeflag === 'x' ? 'pax header' : typeflag === 'g' ? 'pax global header' : 'GNU long-name header';
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

function checkChecksum(b: Buffer, at: number): void {
  if (!checksumMatches(b)) throw new TarReadError(`not a tar, or a corrupt one: the header at byte ${at} has a wrong checksum (is it compressed with something other than gzip or zstd?)`, at);
}

/**
 * Whether a 512-byte block is a tar header: not all zeros, and its checksum (the sum of the
 * header's bytes, the field itself as spaces; unsigned, or signed as some old tars wrote it) right.
 */
export function isTarHeader(b: Buffer): boolean {
  return b.length >= BLOCK && !isZeroBlock(b) && checksumMatches(b);
}

function checksumMatches(b: Buffer): boolean {
  let unsigned = 8 * 0x20;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    unsigned += b[i]!;
    signed += b[i]! > 127 ? b[i]! - 256 : b[i]!;
  }
  const stored = decodeNumber(b, 148, 8);
  return stored === unsigned || stored === signed;
}

/**
 * A numeric field: octal digits, possibly led by spaces or zeros and ended by a space or NUL; or
 * base-256 (first byte 0x80, or 0xff for a negative number: GNU tar's form for large values).
 */
export function decodeNumber(b: Buffer, offset: number, length: number): number {
  const first = b[offset]!;
  if (first === 0x80 || first === 0xff) {
    let n = 0;
    for (let i = offset + 1; i < offset + length; i++) n = n * 256 + (first === 0xff ? 0xff - b[i]! : b[i]!);
    return first === 0xff ? -(n + 1) : n;
  }
  let i = offset;
  const end = offset + length;
  while (i < end && (b[i] === 0x20 || b[i] === 0x30)) i++;
  let n = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    // Ends at a space, a NUL or anything else not octal (as parseInt reads it).
    if (c < 0x30 || c > 0x37) break;
    n = n * 8 + (c - 0x30);
  }
  return n;
}

/** A NUL-terminated (or field-filling) UTF-8 string. */
export function decodeString(b: Buffer, offset: number, length: number): string {
  let end = b.indexOf(0, offset);
  if (end === -1 || end > offset + length) end = offset + length;
  return b.toString('utf8', offset, end);
}

/** The name as the ustar block has it: the prefix field joined on, for POSIX ustar headers. */
export function ustarName(b: Buffer, format = formatOf(b)): string {
  const name = decodeString(b, 0, 100);
  return format === 'ustar' && b[345] !== 0 ? `${decodeString(b, 345, 155)}/${name}` : name;
}

/** pax records, `<len> <key>=<value>\n`; decoding stops at the first malformed one. */
export function decodePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space === -1) break;
    const len = parseInt(data.toString('latin1', i, space), 10);
    if (!(len > 0) || i + len > data.length) break;
    const record = data.toString('utf8', space + 1, i + len - 1);
    const eq = record.indexOf('=');
    if (eq === -1) break;
    records[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return records;
}

export function formatOf(b: Buffer): string {
  const magic = b.toString('latin1', 257, 263);
  if (magic === 'ustar\0') return b[263] === 0x30 && b[264] === 0x30 ? 'ustar' : `ustar, version bytes ${b.toString('hex', 263, 265)}`;
  if (magic === 'ustar ' && b[263] === 0x20 && b[264] === 0) return 'gnu';
  for (let i = 257; i < 265; i++) if (b[i] !== 0) return `unknown magic bytes ${b.toString('hex', 257, 265)}`;
  return 'v7';
}

function typeOf(typeflag: string): TarReadType {
  switch (typeflag) {
    case '0':
    case '\0':
      return 'file';
    case '1':
      return 'link';
    case '2':
      return 'symlink';
    case '3':
      return 'character-device';
    case '4':
      return 'block-device';
    case '5':
      return 'directory';
    case '6':
      return 'fifo';
    case '7':
      return 'contiguous-file';
    default:
      return 'unknown';
  }
}
