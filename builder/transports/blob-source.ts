import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { ImgbuildError } from '../errors.js';

/** A blob as an output or a push reads it: its digest, maybe the local file holding it, and its checked stream. */
export interface ReadableBlob {
  digest: Digest;
  file?: string;
  open(): Readable;
  /** Its checked bytes at once when they are small and at hand (Layer.read); undefined: stream them. */
  read?(): Buffer | undefined;
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
        throw namingFile(err, file);
      } finally {
        inner.destroy();
      }
    })(),
    { objectMode: false },
  );
}

/**
 * The blob's checked bytes at once (`read()`), when it has them: what openBlob's stream would
 * give, or throw, in one piece (a mismatch of a local file names that file the same way);
 * undefined when they must be streamed with openBlob.
 */
export function readBlob(blob: ReadableBlob): Buffer | undefined {
  if (!blob.read) return undefined;
  try {
    return blob.read();
  } catch (err) {
    throw blob.file === undefined ? err : namingFile(err, blob.file);
  }
}

/** A blob-mismatch of a local file, said of that file; any other error as it is. */
function namingFile(err: unknown, file: string): unknown {
  if ((err as { code?: unknown }).code !== 'blob-mismatch') return err;
  return new ImgbuildError('blob-mismatch', `${file} is damaged: ${(err as Error).message}`, 'the image it belongs to is damaged on disk: write or pull it again from its source', { cause: err });
}

/** `stream`, destroyed with the signal's reason when `signal` aborts before it closes (a registry blob's request is aborted with it). */
export function closedOnAbort(stream: Readable, signal: AbortSignal | undefined): Readable {
  if (!signal) return stream;
  if (signal.aborted) {
    stream.destroy(signal.reason as Error);
    return stream;
  }
  const onAbort = () => stream.destroy(signal.reason as Error);
  signal.addEventListener('abort', onAbort, { once: true });
  stream.once('close', () => signal.removeEventListener('abort', onAbort));
  return stream;
}
