import { createHash } from 'node:crypto';
import type { Digest } from '../../oci/digest.js';
import type { BlobOutput, BlobSink, SinkResult } from './blob-sinks.js';
import { FrameZstd, ZSTD_FRAME_SIZE } from './zstd.js';

/**
 * A zstd layer (see zstd.ts for the bytes): the tar is hashed here (diff_id), cut into 4 MiB
 * frames compressed on their own (on the thread pool with node:zlib, on this thread with the
 * WebAssembly encoder), and each frame hashed (digest) and written in order.
 */
export class ZstdSink implements BlobSink {
  private readonly tarHash = createHash('sha256');
  private readonly blobHash = createHash('sha256');
  private tarSize = 0;
  private blobSize = 0;
  private readonly frames = new FrameZstd((out) => this.out(out));

  constructor(private readonly output: BlobOutput) {}

  readonly chunkSize = ZSTD_FRAME_SIZE;

  write(chunk: Buffer): Promise<void> {
    this.tarHash.update(chunk);
    this.tarSize += chunk.length;
    return this.frames.write(chunk);
  }

  chunkBuffer(): Buffer {
    return this.frames.pieceBuffer();
  }

  async finish(): Promise<SinkResult> {
    await this.frames.end();
    const digest: Digest = `sha256:${this.blobHash.digest('hex')}`;
    return { digest, diffId: `sha256:${this.tarHash.digest('hex')}`, size: this.blobSize, uncompressedSize: this.tarSize };
  }

  abandon(): void {
    this.frames.abandon();
  }

  private out(bytes: Buffer): void {
    this.blobHash.update(bytes);
    this.output(bytes);
    this.blobSize += bytes.length;
  }
}
