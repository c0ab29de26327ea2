import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { constants, createDeflateRaw, crc32, type DeflateRaw } from 'node:zlib';
import type { Digest } from '../../oci/digest.js';

/**
 * Deterministic gzip (RFC 1952) around Node's bundled zlib's raw deflate. We write the 10-byte
 * header and the 8-byte trailer ourselves so that nothing in them depends on the host:
 *
 *   1f 8b 08 00 | 00 00 00 00 | 00 | ff
 *   magic  CM=deflate, FLG=0 (no name, no comment, no extra) | MTIME=0 | XFL=0 | OS=255 (unknown,
 *   as Go's compress/gzip writes it, so the byte is the same on every platform)
 *
 * The deflate parameters are pinned (level 6 — gzip's default — window 2^15, memLevel 8, default
 * strategy). The compressed bytes still depend on the zlib build Node bundles; the golden vector
 * test pins them so that a Node upgrade that changes them is noticed.
 */
export const GZIP_LEVEL = 6;
export const GZIP_HEADER: Buffer = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);

export function createPinnedDeflate(): DeflateRaw {
  return createDeflateRaw({
    level: GZIP_LEVEL,
    windowBits: 15,
    memLevel: 8,
    strategy: constants.Z_DEFAULT_STRATEGY,
  });
}

/**
 * Counts, sha256-hashes and (optionally) CRC-32s what passes through. Used on the tar (diff_id,
 * gzip trailer) and on the blob (digest, size). Results are valid once the stream has flushed.
 */
export class Measure extends Transform {
  size = 0;
  crc = 0;
  private readonly hash: Hash = createHash('sha256');
  private result: Digest | undefined;

  constructor(private readonly withCrc: boolean) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    if (this.withCrc) this.crc = crc32(chunk, this.crc);
    this.size += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = `sha256:${this.hash.digest('hex')}`;
    cb();
  }

  digest(): Digest {
    if (!this.result) throw new Error('Measure.digest() read before the stream finished');
    return this.result;
  }
}

/**
 * Wraps a raw deflate stream into a gzip member: header first, trailer (CRC-32 and size mod 2^32
 * of the uncompressed data, little-endian) last. `source` measured the uncompressed bytes; it has
 * finished before deflate can flush, so its figures are final when the trailer is written.
 */
export class GzipFramer extends Transform {
  constructor(private readonly source: Measure) {
    super();
    this.push(GZIP_HEADER);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.source.crc >>> 0, 0);
    trailer.writeUInt32LE(this.source.size % 2 ** 32, 4);
    cb(null, trailer);
  }
}
