import { Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress } from 'fzstd';

/** zstd's frame magic (RFC 8878), little-endian at the start of a zstd stream. */
export const ZSTD_MAGIC = 0xfd2fb528;

/** Whether `head` starts with zstd's magic. */
export function isZstd(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd;
}

/**
 * A zstd decompressing stream for reading layers (any zstd: ours, skopeo's, a registry's):
 * node:zlib's where Node has it (22.15+, 23.8+), else fzstd (pure JavaScript, streaming, window
 * bounded: it keeps at most the frame's window, never the whole layer). Concatenated frames are
 * one stream to both.
 */
export function createZstdDecompressStream(): Transform {
  const native = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  return native ? native() : createFzstdDecompressStream();
}

/** fzstd as a stream: what createZstdDecompressStream gives on a Node without zstd. */
export function createFzstdDecompressStream(): Transform {
  return new FzstdDecompress();
}

/** Bytes handed to fzstd at once. */
const STEP = 16 * 1024;

class FzstdDecompress extends Transform {
  // A copy of each block: fzstd may hand out a view of memory it reuses.
  private readonly decoder = new Decompress((data) => {
    if (data.length > 0) this.push(Buffer.from(data));
  });

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      // fzstd emits every block it can complete from what it is given, so small steps bound what
      // one call makes (as store/binary-cache does); it may keep a view of its input: a copy.
      for (let off = 0; off < chunk.length; off += STEP) this.decoder.push(new Uint8Array(chunk.subarray(off, off + STEP)));
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.decoder.push(new Uint8Array(0), true);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
}
