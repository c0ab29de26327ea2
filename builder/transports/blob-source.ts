import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { ImgbuildError } from '../errors.js';

/** A blob as an output or a push reads it: its digest, maybe the local file holding it, and its checked stream. */
export interface ReadableBlob {
  digest: Digest;
  file?: string;
  open(): Readable;
}

/**
 * The blob's checked bytes (`open()`); when they do not match and the blob is a local file (a
 * layout's `blobs/sha256/<hex>`, the base image's), the error names that file, so the user knows
 * which file on disk is damaged. A layer-cache file says so itself (`error[cache]`).
 */
export function openBlob(blob: ReadableBlob): Readable {
  const inner = blob.open();
  if (blob.file === undefined) return inner;
  const file = blob.file;
  return Readable.from(
    (async function* () {
      try {
        for await (const chunk of inner) yield chunk as Buffer;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'blob-mismatch') throw err;
        throw new ImgbuildError('blob-mismatch', `${file} is damaged: ${(err as Error).message}`, 'the image it belongs to is damaged on disk: write or pull it again from its source', { cause: err });
      } finally {
        inner.destroy();
      }
    })(),
    { objectMode: false },
  );
}
