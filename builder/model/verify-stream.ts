import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { ImgbuildError } from '../errors.js';

/** A blob whose bytes are not the ones its descriptor names. */
export class BlobMismatchError extends ImgbuildError {
  override name = 'BlobMismatchError';
  constructor(source: string, expected: { digest: Digest; size: number }, got: { digest?: Digest; size: number }, hint?: string) {
    const what = got.digest ? `${got.digest} (${got.size} bytes)` : `more than ${expected.size} bytes`;
    super('blob-mismatch', `${source}: blob ${expected.digest} (${expected.size} bytes) reads as ${what}`, hint);
  }
}

/** A layer whose bytes are not in the compression its media type names (a plain tar labelled tar+gzip). */
export class CompressionMismatchError extends ImgbuildError {
  override name = 'CompressionMismatchError';
  constructor(source: string, expected: { digest: Digest; mediaType: string }, wanted: Compression, got: Compression) {
    super('image-read', `${source}: layer ${expected.digest} is labelled ${expected.mediaType} (${describe(wanted)}) but its bytes are ${describe(got)}`, 'the image is mislabelled where it was written: write it again with a tool that labels layers by their compression');
  }
}

type Compression = 'gzip' | 'zstd' | 'none';
const describe = (c: Compression) => (c === 'none' ? 'an uncompressed tar' : `${c}-compressed`);

/** The compression a layer media type names; undefined for anything that is not a tar layer type. */
export function mediaTypeCompression(mediaType: string | undefined): Compression | undefined {
  if (!mediaType) return undefined;
  if (mediaType.endsWith('.tar+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('.tar+zstd') || mediaType.endsWith('.tar.zstd')) return 'zstd';
  if (/^application\/vnd\.(oci\.image\.layer(\.nondistributable)?\.v1|docker\.image\.rootfs\.(foreign\.)?diff)\.tar$/.test(mediaType)) return 'none';
  return undefined;
}

/** The compression a blob's first bytes show (gzip's and zstd's magic numbers; anything else: none). */
function headCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** The error for a blob whose first bytes are not in its media type's compression, or undefined. */
export function compressionMismatch(head: Uint8Array, expected: { digest: Digest; mediaType?: string }, source: string): CompressionMismatchError | undefined {
  const wanted = mediaTypeCompression(expected.mediaType);
  if (wanted === undefined || head.length === 0) return undefined;
  const got = headCompression(head);
  return got === wanted ? undefined : new CompressionMismatchError(source, expected as { digest: Digest; mediaType: string }, wanted, got);
}

/** `bytes`, whole, checked against `expected`: the BlobMismatchError verifiedStream would fail with when they were its one chunk. */
export function verifiedBytes(bytes: Buffer, expected: { digest: Digest; size: number; mediaType?: string }, source: string, hint?: string): Buffer {
  if (bytes.length > expected.size) throw new BlobMismatchError(source, expected, { size: bytes.length }, hint);
  const mismatch = wholeMismatch(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes.length, expected, source, hint);
  if (mismatch) throw mismatch;
  const mislabelled = compressionMismatch(bytes.subarray(0, 4), expected, source);
  if (mislabelled) throw mislabelled;
  return bytes;
}

/** The error for a whole blob of `digest` and `size` that is not `expected`, or undefined when it is. */
function wholeMismatch(digest: Digest, size: number, expected: { digest: Digest; size: number }, source: string, hint?: string): BlobMismatchError | undefined {
  return digest !== expected.digest || size !== expected.size ? new BlobMismatchError(source, expected, { digest, size }, hint) : undefined;
}

/**
 * The bytes of `input`, checked against `expected` as they pass: more bytes than the size fails
 * at once (a reader is never fed an unbounded stream), and a wrong digest or a short read fails
 * the stream instead of ending it, so whatever consumes it (a file renamed only on success, an
 * upload) never takes the blob as whole.
 */
export function verifiedStream(input: Readable, expected: { digest: Digest; size: number; mediaType?: string }, source: string, hint?: string): Readable {
  const hash = createHash('sha256');
  let size = 0;
  // A layer's first bytes must be in its media type's compression: looked at once 4 bytes are in,
  // and said at the end, after the digest (a damaged blob is said as damaged, not as mislabelled;
  // the stream fails instead of ending either way).
  let head: Buffer | undefined = mediaTypeCompression(expected.mediaType) === undefined ? undefined : Buffer.alloc(0);
  let mislabelled: CompressionMismatchError | undefined;
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      size += chunk.length;
      if (size > expected.size) return cb(new BlobMismatchError(source, expected, { size }, hint));
      hash.update(chunk);
      if (head !== undefined) {
        head = Buffer.concat([head, chunk.subarray(0, 4)]);
        if (head.length >= 4) {
          mislabelled = compressionMismatch(head, expected, source);
          head = undefined;
        }
      }
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      cb(wholeMismatch(`sha256:${hash.digest('hex')}`, size, expected, source, hint) ?? mislabelled ?? (head !== undefined ? compressionMismatch(head, expected, source) : undefined));
    },
  });
  input.on('error', (err) => check.destroy(err));
  check.on('close', () => {
    if (!input.destroyed) input.destroy();
  });
  return input.pipe(check);
}
