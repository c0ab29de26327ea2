import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import type { Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { BlockDeflater, DEFLATE_BLOCK_SIZE, GZIP_HEADER } from './gzip.js';
import type { Compressor } from './types.js';
import { ZstdSink } from './zstd-sink.js';

/** What a sink measured once the tar has ended: the blob's digest and size, the tar's. */
export interface SinkResult {
  digest: Digest;
  diffId: Digest;
  size: number;
  uncompressedSize: number;
}

/**
 * Where a layer's tar chunks go: hashed, maybe compressed, and handed to the sink's output (a
 * file, or a stream for a push). `write` must be awaited before the chunk is reused; `finish`
 * once, after the last chunk.
 */
export interface BlobSink {
  write(chunk: Buffer): Promise<void> | undefined;
  /**
   * For a sink that compresses a whole chunk where it was built (no copy into its compressor's
   * buffer): the tar bytes per chunk (its compressor's unit: a deflate block, a zstd frame), and
   * `chunkBuffer`, the buffer (of `chunkSize` bytes) the caller should build its next chunk in:
   * asked first, and again after each whole chunk is written (the sink then holds the last one
   * until its compression is done). A chunk given to `write` that starts that buffer is taken
   * where it is; any other is copied. The bytes are the same either way.
   */
  readonly chunkSize?: number;
  chunkBuffer?(): Buffer;
  finish(): Promise<SinkResult>;
  /** After a failure: stop work still in flight (the caller removes the file). */
  abandon(): void;
}

/**
 * Writes between turns of the event loop: a worker's abort message, or the main thread's other
 * duties (starting layers, hearing from workers), wait at most this long behind a plain layer.
 */
const PLAIN_BYTES_PER_TURN = 8 * 1024 * 1024;

/**
 * The blob's bytes, in order, as the sink makes them. Called synchronously; a buffer is the
 * caller's to keep only until it returns (a plain layer's bytes are the tar's reused chunk).
 */
export type BlobOutput = (bytes: Buffer) => void;

/**
 * An uncompressed layer: the blob is the tar, so one hash gives both digest and diff_id. The
 * hash and the output run on the calling thread, synchronously: a write into the page cache is a
 * copy, cheaper here than a thread-pool round trip per chunk.
 */
export class PlainSink implements BlobSink {
  private readonly hash = createHash('sha256');
  private size = 0;
  private sinceTurn = 0;

  constructor(private readonly output: BlobOutput) {}

  write(chunk: Buffer): Promise<void> | undefined {
    this.hash.update(chunk);
    this.output(chunk);
    this.size += chunk.length;
    this.sinceTurn += chunk.length;
    if (this.sinceTurn < PLAIN_BYTES_PER_TURN) return undefined;
    this.sinceTurn = 0;
    return nextTurn();
  }

  async finish(): Promise<SinkResult> {
    const digest: Digest = `sha256:${this.hash.digest('hex')}`;
    return { digest, diffId: digest, size: this.size, uncompressedSize: this.size };
  }

  abandon(): void {}
}

/**
 * A gzip layer (see gzip.ts for the bytes): the tar is hashed (diff_id) and CRC'd here, deflated
 * in blocks on the thread pool, and each deflated block hashed (digest) and written in order.
 */
export class GzipSink implements BlobSink {
  private readonly tarHash = createHash('sha256');
  private readonly blobHash = createHash('sha256');
  private crc = 0;
  private tarSize = 0;
  private blobSize = 0;
  private readonly deflater = new BlockDeflater((out) => this.out(out));

  constructor(private readonly output: BlobOutput) {
    this.out(GZIP_HEADER);
  }

  readonly chunkSize = DEFLATE_BLOCK_SIZE;

  write(chunk: Buffer): Promise<void> {
    this.tarHash.update(chunk);
    this.crc = crc32(chunk, this.crc);
    this.tarSize += chunk.length;
    return this.deflater.write(chunk);
  }

  chunkBuffer(): Buffer {
    return this.deflater.blockBuffer();
  }

  async finish(): Promise<SinkResult> {
    await this.deflater.end();
    // Trailer: CRC-32 and size mod 2^32 of the uncompressed data, little-endian.
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.tarSize % 2 ** 32, 4);
    this.out(trailer);
    return {
      digest: `sha256:${this.blobHash.digest('hex')}`,
      diffId: `sha256:${this.tarHash.digest('hex')}`,
      size: this.blobSize,
      uncompressedSize: this.tarSize,
    };
  }

  abandon(): void {
    this.deflater.abandon();
  }

  private out(bytes: Buffer): void {
    this.blobHash.update(bytes);
    this.output(bytes);
    this.blobSize += bytes.length;
  }
}

/** The sink for a layer of `compressor`, its blob's bytes going to `output`. */
export function createSink(compressor: Compressor, output: BlobOutput): BlobSink {
  if (compressor === 'zstd') return new ZstdSink(output);
  return compressor === 'gzip' ? new GzipSink(output) : new PlainSink(output);
}

/** The OCI media type of a layer blob made with `compressor`. */
export function layerMediaType(compressor: Compressor): string {
  return compressor === 'gzip' ? MediaType.ociLayerGzip : compressor === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
}
