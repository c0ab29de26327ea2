import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A content digest as OCI writes it: `sha256:<64 lowercase hex>`. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function sha256Digest(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hex part of a digest (what a blob is named after in an OCI layout). */
export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}

/**
 * A pass-through stream that hashes and counts what flows through it.
 * `digest()` and `size` are valid once the stream has finished.
 */
export class DigestingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  private result: Digest | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = `sha256:${this.hash.digest('hex')}`;
    cb();
  }

  digest(): Digest {
    if (!this.result) throw new Error('DigestingStream.digest() called before the stream finished');
    return this.result;
  }
}
