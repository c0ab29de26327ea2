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

/** `bytes`, whole, checked against `expected`: the BlobMismatchError verifiedStream would fail with when they were its one chunk. */
export function verifiedBytes(bytes: Buffer, expected: { digest: Digest; size: number }, source: string, hint?: string): Buffer {
  if (bytes.length > expected.size) throw new BlobMismatchError(source, expected, { size: bytes.length }, hint);
  const mismatch = wholeMismatch(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes.length, expected, source, hint);
  if (mismatch) throw mismatch;
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
export function verifiedStream(input: Readable, expected: { digest: Digest; size: number }, source: string, hint?: string): Readable {
  const hash = createHash('sha256');
  let size = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      size += chunk.length;
      if (size > expected.size) return cb(new BlobMismatchError(source, expected, { size }, hint));
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      cb(wholeMismatch(`sha256:${hash.digest('hex')}`, size, expected, source, hint));
    },
  });
  input.on('error', (err) => check.destroy(err));
  check.on('close', () => {
    if (!input.destroyed) input.destroy();
  });
  return input.pipe(check);
}
