import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { ImgbuildError } from '../errors.js';
import { verifiedStream } from '../model/verify-stream.js';

/** What a cache file must hold: its digest and size. */
export interface ExpectedBytes {
  digest: Digest;
  size: number;
}

export const CACHE_FIX_HINT = 'run `imgbuild cache verify --repair` (removes damaged blobs and records; the next build makes them again), or empty the cache with `imgbuild cache prune --older-than 0s`';

/** A file of the layer cache whose bytes are not the ones its name or record says (bit rot, a torn write, a hand edit). */
export class CacheDamageError extends ImgbuildError {
  override name = 'CacheDamageError';
  constructor(readonly file: string, message: string, hint = CACHE_FIX_HINT) {
    super('cache', `the layer cache is damaged: ${file} ${message}`, hint);
  }
}

/**
 * The sha256 digest and size of a file, read once. Stops reading after `limit` bytes (a damaged
 * file longer than it should be is not read to its end).
 */
export async function hashFile(path: string, limit = Number.MAX_SAFE_INTEGER): Promise<{ digest: Digest; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    size += (chunk as Buffer).length;
    if (size > limit) return { digest: `sha256:${'0'.repeat(64)}`, size };
    hash.update(chunk as Buffer);
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Why `got` is not `expected`, for a message: "reads as sha256:… (12 bytes)". */
export function describeMismatch(expected: ExpectedBytes, got: { digest: Digest; size: number }): string {
  if (got.size > expected.size) return `holds more than the ${expected.size} bytes of ${expected.digest}`;
  if (got.size < expected.size) return `is truncated: ${got.size} of the ${expected.size} bytes of ${expected.digest}`;
  return `does not hash to ${expected.digest}: its ${got.size} bytes give ${got.digest}`;
}

/** Whether the file holds exactly `expected`; when not, why (describeMismatch). */
export async function checkFile(path: string, expected: ExpectedBytes): Promise<string | undefined> {
  const got = await hashFile(path, expected.size);
  return got.size === expected.size && got.digest === expected.digest ? undefined : describeMismatch(expected, got);
}

/**
 * The bytes of a cache file, checked as they stream (a file damaged after it was checked fails
 * before its last byte, as `error[cache]` naming the file).
 */
export function checkedFileStream(path: string, expected: ExpectedBytes): Readable {
  const inner = verifiedStream(createReadStream(path), expected, path);
  return Readable.from(
    (async function* () {
      try {
        for await (const chunk of inner) yield chunk as Buffer;
      } catch (err) {
        if ((err as { code?: string }).code === 'blob-mismatch') throw new CacheDamageError(path, `changed while it was read: ${(err as Error).message.replace(`${path}: `, '')}`);
        throw err;
      } finally {
        inner.destroy();
      }
    })(),
    { objectMode: false },
  );
}
