import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { LayerContentError } from '../errors.js';
import { checkEntryPath, EntryOrderChecker, isCleanPathBytes } from './entry-order.js';
import { SYMLINK_MODE } from './modes.js';
import { encodeHeader, END_OF_ARCHIVE, MAX_ID, MAX_MTIME, padding, SimpleHeaderWriter, type TarHeaderFields } from './tar-header.js';
import type { LayerEntry, TarHeaderDefaults } from './types.js';

const ZEROS = Buffer.alloc(512);

/**
 * The bytes of a tar archive, produced synchronously into one buffer of `chunkSize` bytes that is
 * handed out whenever it is full (and at the end), then reused: a chunk is valid only until the
 * generator is resumed, so consumers hash, copy or write it before asking for the next one.
 *
 * Headers, padding and file contents all land in the same buffer, and files are read straight
 * into it with synchronous calls. That is the cheapest way through the CPU: no allocation per
 * file (no garbage to collect), one hash update and one write per chunk instead of several per
 * file, and no thread-pool round trip per read (bench/build-speed.ts). Memory is the one buffer.
 *
 * Entries must come in tree order (checked: an entry out of order or repeated is a
 * LayerEntryError). Every header takes its mtime and, unless the entry overrides them, its owner
 * from `defaults`; nothing comes from the host. A file on disk must have exactly the size its
 * entry says (the size written in its header), else LayerContentError.
 */
export class TarChunker {
  private buf: Buffer;
  private filled = 0;
  private readonly order = new EntryOrderChecker();
  /** Headers of common entries; undefined when the defaults are not valid (encodeHeader then says why). */
  private readonly simple: SimpleHeaderWriter | undefined;

  /** `buffer`: where to build the first chunk (of `chunkSize` bytes); a new one when absent. */
  constructor(
    private readonly defaults: TarHeaderDefaults,
    chunkSize: number,
    buffer?: Buffer,
  ) {
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 512) throw new RangeError(`tar chunk size must be an integer of at least 512, got ${chunkSize}`);
    if (buffer && buffer.length !== chunkSize) throw new RangeError(`a tar chunk buffer of ${chunkSize} bytes was expected, got ${buffer.length}`);
    this.buf = buffer ?? Buffer.allocUnsafe(chunkSize);
    this.simple = validDefaults(defaults) ? new SimpleHeaderWriter(defaults) : undefined;
  }

  /**
   * The buffer the next chunk is built in, in place of the one the last chunk was handed out in:
   * for a sink that keeps a whole chunk where it was built instead of copying it (blob-sinks.ts
   * `chunkBuffer`). Only between chunks (nothing filled yet), and of the chunk size.
   */
  replaceBuffer(next: Buffer): void {
    if (this.filled !== 0 || next.length !== this.buf.length) throw new RangeError(`a tar chunk buffer is replaced between chunks by one of ${this.buf.length} bytes (${this.filled} filled, ${next.length} given)`);
    this.buf = next;
  }

  /**
   * Adds `entry` at once and returns true when it completes no chunk (its header, content and
   * padding fit in the room left) and is a common one (a clean ASCII path, the defaults' owner,
   * a one-block header); else returns false having done nothing, and the caller uses `add`. The
   * bytes are the same either way; this way costs no generator, no allocation, and for a file
   * on disk three system calls (open, read, close). A store of many small files is mostly such
   * entries.
   */
  tryAdd(entry: LayerEntry): boolean {
    const simple = this.simple;
    if (simple === undefined) return false;
    const d = this.defaults;
    if ((entry.uid !== undefined && entry.uid !== d.uid) || (entry.gid !== undefined && entry.gid !== d.gid)) return false;
    if ((entry.uname !== undefined && entry.uname !== d.uname) || (entry.gname !== undefined && entry.gname !== d.gname)) return false;
    const room = this.buf.length - this.filled - 512;
    let size = 0;
    let mode: number;
    if (entry.kind === 'file') {
      const content = entry.content;
      if (content.from === 'disk') {
        size = content.size;
        // One byte more than the size must fit: the read that detects a file that grew.
        if (!(size < room)) return false;
      } else if (content.from === 'bytes') {
        size = content.data.byteLength;
      } else {
        return false;
      }
      mode = entry.mode;
    } else {
      mode = entry.kind === 'symlink' ? SYMLINK_MODE : entry.mode;
    }
    const padded = size + padding(size);
    if (!Number.isSafeInteger(size) || padded > room || !Number.isSafeInteger(mode) || mode < 0 || mode > 0o7777) return false;
    const path = entry.path;
    const staged = this.order.stage(path);
    if (staged === undefined || !isCleanPathBytes(staged.bytes, staged.length)) return false;
    const at = this.filled;
    if (!simple.write(this.buf, at, staged.bytes, staged.length, entry.kind, mode, size, entry.kind === 'symlink' ? entry.target : undefined)) return false;
    // Written, not yet counted: an entry out of order throws here and the bytes are never handed out.
    this.order.commitStaged(path);
    this.filled = at + 512;
    if (entry.kind === 'file') {
      const content = entry.content;
      if (content.from === 'disk') this.readSmallFile(content.fsPath, size);
      else if (content.from === 'bytes') {
        this.buf.set(content.data, this.filled);
        this.filled += size;
      }
      const pad = padded - size;
      if (pad > 0) {
        this.buf.fill(0, this.filled, this.filled + pad);
        this.filled += pad;
      }
    }
    return true;
  }

  /** The chunks completed by adding `entry` (often none: a small entry only fills the buffer). */
  *add(entry: LayerEntry): Generator<Buffer> {
    checkEntryPath(entry.path);
    this.order.check(entry.path, Buffer.from(entry.path, 'utf8'));
    const d = this.defaults;
    const fields: TarHeaderFields = {
      path: entry.path,
      type: entry.kind,
      mode: entry.kind === 'symlink' ? SYMLINK_MODE : entry.mode,
      uid: entry.uid ?? d.uid,
      gid: entry.gid ?? d.gid,
      uname: entry.uname ?? d.uname,
      gname: entry.gname ?? d.gname,
      mtime: d.mtime,
      size: 0,
    };
    if (entry.kind === 'symlink') fields.linkname = entry.target;
    if (entry.kind !== 'file') {
      yield* this.put(encodeHeader(fields));
      return;
    }
    const content = entry.content;
    if (content.from === 'stream') throw new TypeError('a streamed file goes through addStreamed (write-layer.ts feedTar)');
    fields.size = content.from === 'disk' ? content.size : content.data.byteLength;
    yield* this.put(encodeHeader(fields));
    if (content.from === 'bytes') yield* this.put(content.data);
    else yield* this.readFile(content.fsPath, content.size);
    const pad = padding(fields.size);
    if (pad > 0) yield* this.put(ZEROS.subarray(0, pad));
  }

  /**
   * A file whose bytes come from a stream: its header now; then the caller hands its bytes to
   * `streamed` as they arrive and calls `endStreamed` (which checks the count and pads).
   */
  *addStreamed(entry: LayerEntry & { kind: 'file' }, size: number): Generator<Buffer> {
    checkEntryPath(entry.path);
    this.order.check(entry.path, Buffer.from(entry.path, 'utf8'));
    const d = this.defaults;
    yield* this.put(
      encodeHeader({
        path: entry.path,
        type: 'file',
        mode: entry.mode,
        uid: entry.uid ?? d.uid,
        gid: entry.gid ?? d.gid,
        uname: entry.uname ?? d.uname,
        gname: entry.gname ?? d.gname,
        mtime: d.mtime,
        size,
      }),
    );
  }

  /** Bytes of the streamed file being added. */
  *streamed(bytes: Uint8Array): Generator<Buffer> {
    yield* this.put(bytes);
  }

  /** Pads the streamed file of `size` bytes to the next 512-byte block. */
  *endStreamed(size: number): Generator<Buffer> {
    const pad = padding(size);
    if (pad > 0) yield* this.put(ZEROS.subarray(0, pad));
  }

  /** The end-of-archive blocks and the last, partly filled chunk. */
  *end(): Generator<Buffer> {
    yield* this.put(END_OF_ARCHIVE);
    if (this.filled > 0) yield* this.emit();
  }

  private *emit(): Generator<Buffer> {
    const n = this.filled;
    this.filled = 0;
    yield this.buf.subarray(0, n);
  }

  private *put(data: Uint8Array): Generator<Buffer> {
    let off = 0;
    while (off < data.length) {
      if (this.filled === this.buf.length) yield* this.emit();
      const n = Math.min(data.length - off, this.buf.length - this.filled);
      this.buf.set(data.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
    }
  }

  /** Reads the whole of a file that fits in the room left after `filled` (with a byte to spare). */
  private readSmallFile(fsPath: string, size: number): void {
    const fd = openForRead(fsPath);
    try {
      let remaining = size;
      for (;;) {
        const want = remaining + 1;
        const got = readOrThrow(fd, fsPath, this.buf, this.filled, want);
        if (got > remaining) throw grew(fd, fsPath, size);
        if (got === 0) {
          if (remaining > 0 || size === 0) checkShrank(fd, fsPath, size, size - remaining);
          return;
        }
        this.filled += got;
        remaining -= got;
        if (remaining === 0 && got < want) return;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Reads `size` bytes of `fsPath` into the buffer, failing if the file is not exactly that long. */
  private *readFile(fsPath: string, size: number): Generator<Buffer> {
    const fd = openForRead(fsPath);
    try {
      let remaining = size;
      for (;;) {
        if (this.filled === this.buf.length) yield* this.emit();
        // One byte more than expected, when it fits, detects growth without an extra read at the end.
        const want = Math.min(this.buf.length - this.filled, remaining + 1);
        const got = readOrThrow(fd, fsPath, this.buf, this.filled, want);
        if (got > remaining) throw grew(fd, fsPath, size);
        if (got === 0) {
          if (remaining > 0 || size === 0) checkShrank(fd, fsPath, size, size - remaining);
          return;
        }
        this.filled += got;
        remaining -= got;
        // A short read of a regular file means end of file: done if it ended where expected.
        if (remaining === 0 && got < want) return;
      }
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Opens a file listed as regular. O_NONBLOCK: if the path was swapped for a fifo since it was
 * listed, open must not hang. Whether it is still a regular file is asked (fstat) only when what
 * it gives does not look like the file that was listed: a regular file gives exactly its size
 * and then end of file, and asking every time was a system call and a Stats object per file.
 */
function openForRead(fsPath: string): number {
  try {
    return openSync(fsPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new LayerContentError(`cannot open ${fsPath}: ${errText(err)}`, fsPath);
  }
}

function readOrThrow(fd: number, fsPath: string, buf: Buffer, offset: number, length: number): number {
  try {
    return readSync(fd, buf, offset, length, null);
  } catch (err) {
    notRegular(fd, fsPath);
    throw new LayerContentError(`cannot read ${fsPath}: ${errText(err)}`, fsPath);
  }
}

/** Throws when `fd` is no longer a regular file (a fifo or device swapped in). */
function notRegular(fd: number, fsPath: string): void {
  let regular: boolean;
  try {
    regular = fstatSync(fd).isFile();
  } catch {
    return; // the caller reports what went wrong
  }
  if (!regular) throw new LayerContentError(`${fsPath} is no longer a regular file`, fsPath);
}

function grew(fd: number, fsPath: string, size: number): Error {
  notRegular(fd, fsPath);
  return new LayerContentError(`${fsPath} grew while it was being read (expected ${size} bytes)`, fsPath, 'do not modify the inputs during a build');
}

/** At end of file after `got` of `size` bytes: fails unless a regular file gave exactly its size. */
function checkShrank(fd: number, fsPath: string, size: number, got: number): void {
  notRegular(fd, fsPath);
  if (got < size) {
    throw new LayerContentError(`${fsPath} shrank while it was being read (expected ${size} bytes, got ${got})`, fsPath, 'do not modify the inputs during a build');
  }
}

/** Whether the defaults fit a header (what encodeHeader's checks ask of them). */
function validDefaults(d: TarHeaderDefaults): boolean {
  const id = (v: number) => Number.isSafeInteger(v) && v >= 0 && v <= MAX_ID;
  const name = (v: string) => typeof v === 'string' && /^[\x01-\x7f]{0,31}$/.test(v);
  return id(d.uid) && id(d.gid) && Number.isSafeInteger(d.mtime) && d.mtime >= 0 && d.mtime <= MAX_MTIME && name(d.uname) && name(d.gname);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
