import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { LayerContentError } from '../errors.js';
import { checkEntryPath, EntryOrderChecker } from './entry-order.js';
import { SYMLINK_MODE } from './modes.js';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeaderFields } from './tar-header.js';
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
  private readonly buf: Buffer;
  private filled = 0;
  private readonly order = new EntryOrderChecker();

  constructor(
    private readonly defaults: TarHeaderDefaults,
    chunkSize: number,
  ) {
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 512) throw new RangeError(`tar chunk size must be an integer of at least 512, got ${chunkSize}`);
    this.buf = Buffer.allocUnsafe(chunkSize);
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

  /** Reads `size` bytes of `fsPath` into the buffer, failing if the file is not exactly that long. */
  private *readFile(fsPath: string, size: number): Generator<Buffer> {
    let fd: number;
    try {
      // O_NONBLOCK: if the path was swapped for a fifo since it was listed, open must not hang.
      fd = openSync(fsPath, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw new LayerContentError(`cannot open ${fsPath}: ${errText(err)}`, fsPath);
    }
    try {
      if (!fstatSync(fd).isFile()) throw new LayerContentError(`${fsPath} is no longer a regular file`, fsPath);
      let remaining = size;
      for (;;) {
        if (this.filled === this.buf.length) yield* this.emit();
        // One byte more than expected, when it fits, detects growth without an extra read at the end.
        const want = Math.min(this.buf.length - this.filled, remaining + 1);
        let got: number;
        try {
          got = readSync(fd, this.buf, this.filled, want, null);
        } catch (err) {
          throw new LayerContentError(`cannot read ${fsPath}: ${errText(err)}`, fsPath);
        }
        if (got > remaining) {
          throw new LayerContentError(`${fsPath} grew while it was being read (expected ${size} bytes)`, fsPath, 'do not modify the inputs during a build');
        }
        if (got === 0) {
          if (remaining > 0) {
            throw new LayerContentError(
              `${fsPath} shrank while it was being read (expected ${size} bytes, got ${size - remaining})`,
              fsPath,
              'do not modify the inputs during a build',
            );
          }
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

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
