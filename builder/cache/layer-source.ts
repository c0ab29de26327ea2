import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobStore } from '../blobs/blob-store.js';
import type { LayerBlob } from '../layer/types.js';
import type { Layer } from '../model/layer.js';
import type { LayerCache } from './layer-cache.js';
import type { LayerHints } from './layer-hints.js';
import { CacheDamageError, checkFile, fileIdentity, unchangedFile, verifiedFileBytes, type FileIdentity } from './checked-blob.js';
import { isNoSpace } from '../fs/atomic-write.js';
import { fsProblem } from '../fs/errno.js';
import { resolve, sep } from 'node:path';
import { ImgbuildError } from '../errors.js';

/**
 * A failure writing a layer into the cache, said as such (the writer removed its temp file): a
 * full disk, or a file system error on a path in the cache (a read-only or failing disk). Any
 * other error as it is: one reading the store is the store's.
 */
export function cacheWriteError(err: unknown, cache: LayerCache): unknown {
  if (isNoSpace(err)) {
    return new ImgbuildError('file', `no space left on the device writing a layer into the cache ${cache.root} (its partial blob was removed)`, `free space, or bound the cache: imgbuild cache prune --max-size 5G (or point IMGBUILD_CACHE_DIR at a larger disk)`, { cause: err });
  }
  if (err instanceof ImgbuildError) return err;
  const found = fsProblem(err);
  const root = resolve(cache.root);
  const at = found?.error.path === undefined ? undefined : resolve(found.error.path);
  if (!found || at === undefined || !(at === root || at.startsWith(`${root}${sep}`))) return err;
  return new ImgbuildError('file', `cannot write a layer into the cache ${cache.root}: ${found.problem.what}: ${found.error.path}`, found.problem.hint('IMGBUILD_CACHE_DIR'), { cause: err });
}

/**
 * How a build makes one of its layers: the three ways it can get the bytes. A cache (or none)
 * decides which it uses.
 */
export interface LayerMaker {
  /** The layer's cache key (layer-key.ts): stands for its bytes; reads no file content. */
  key(): Promise<string>;
  /** Write the blob into `blobs` (temp file, renamed to its digest); `onProgress` hears the tar bytes made so far (LayerWriteOptions.onProgress). */
  write(blobs: BlobStore, onProgress?: (tarBytes: number) => void): Promise<LayerBlob>;
  /** Make the bytes and measure them, keeping nothing. */
  measure(onProgress?: (tarBytes: number) => void): Promise<LayerBlob>;
  /** The bytes as a stream, made as they are read, failing before the last byte unless they are `expected`. */
  stream(expected: LayerBlob): Readable;
}

/** How a layer of the build was had: written now, found in the cache, or to be made when it is read. */
export type LayerOrigin = 'written' | 'cached' | 'deferred';

/**
 * What is done to have a layer, known once its cache key is looked up: `writing` it into the
 * cache (no record), `measuring` it (no cache: the bytes are made and dropped), `cached` (record
 * and blob: nothing made), `record` (a record without its blob: nothing made now).
 */
export type LayerAction = 'writing' | 'measuring' | 'cached' | 'record';

/** Progress of one layer through the cache: what is done, then the tar bytes made so far (when it is made). */
export interface LayerProgress {
  start?: (action: LayerAction) => void;
  bytes?: (tarBytes: number) => void;
  /** A cached blob was found damaged and made again from the store (a line for stderr). */
  repaired?: (message: string) => void;
}

export interface MadeLayer {
  layer: Layer;
  origin: LayerOrigin;
  /** The layer's cache key, when it was computed (always with a cache or hints). */
  key?: string;
  /** What the layer's blob is (the facts a record keeps). */
  blob: LayerBlob;
}

/**
 * A layer through the cache (the decorator): a record whose blob is here gives a layer read from
 * that file (nothing made); a record without its blob gives a layer whose bytes are made from
 * its inputs only if something reads them (a push to a registry that already holds the blob
 * never does), checked against the record; no record: the blob is written into the cache and
 * recorded. Without a cache the bytes are measured now and made again when read, so nothing
 * is written outside the outputs.
 */
export async function cachedLayer(maker: LayerMaker, cache: LayerCache | undefined, progress: LayerProgress = {}, hints?: LayerHints): Promise<MadeLayer> {
  if (!cache && !hints) {
    progress.start?.('measuring');
    const blob = await maker.measure(progress.bytes);
    return { layer: lazyLayer(blob, maker), origin: 'deferred', blob };
  }
  const key = await maker.key();
  const record = cache?.get(key);
  if (cache && record) {
    // A file of the wrong size is a damaged blob, not a missing one: checked and repaired when read.
    const file = cache.blobFileAnySize(record);
    progress.start?.(file ? 'cached' : 'record');
    return file ? { layer: checkedCacheLayer(record, file, cache, maker, progress.repaired), origin: 'cached', key, blob: record } : { layer: lazyLayer(record, maker), origin: 'deferred', key, blob: record };
  }
  // A record kept elsewhere, whose blob the target already holds: nothing to make.
  const hinted = await hints?.held(key);
  if (hinted) {
    progress.start?.('record');
    return { layer: lazyLayer(hinted, maker), origin: 'deferred', key, blob: hinted };
  }
  if (!cache) {
    progress.start?.('measuring');
    const blob = await maker.measure(progress.bytes);
    return { layer: lazyLayer(blob, maker), origin: 'deferred', key, blob };
  }
  progress.start?.('writing');
  const blob = await maker.write(cache.blobs, progress.bytes).catch((err: unknown) => {
    throw cacheWriteError(err, cache);
  });
  await cache.put(key, blob);
  // Its bytes were hashed as they were written: the file committed is the one verified (a later
  // change to it is seen as a change of identity, and it is hashed again).
  const file = cache.blobs.path(blob.digest);
  return { layer: checkedCacheLayer(blob, file, cache, maker, progress.repaired, fileIdentity(file)), origin: 'written', key, blob };
}

/**
 * A layer whose blob is a file of the cache, never given out unchecked: a read hashes the file
 * before any byte goes out (once per process while the file stays the same inode and size: a
 * touch by another build is no change), and when it is damaged (a flipped byte, a torn or truncated write) writes the blob
 * again from the store into the cache (the rename replaces the damaged file) and gives out the
 * repaired bytes. The bytes are read from the descriptor of the file that was hashed and hashed
 * again as they go; a file changed in place since fails the read before its last byte. When the blob cannot be made again (its inputs
 * changed), the read fails with `error[cache]` naming the file. Outputs that hard-link `file`
 * hash it first (transports/oci-layout.ts) and read through `open()` when it does not match.
 *
 * A blob removed after the lookup found it (`cache prune` running beside the build) is missing,
 * not an error: it is made again from the store into the cache, as a damaged one is (silently:
 * nothing was wrong with it), and read from there.
 */
export function checkedCacheLayer(blob: LayerBlob, file: string, cache: LayerCache, maker: LayerMaker | undefined, repaired?: (message: string) => void, written?: FileIdentity): Layer {
  let verified: Promise<FileIdentity> | undefined = written ? Promise.resolve(written) : undefined;
  /** The identity the file had when its bytes were last hashed (as written, or checked). */
  let hashedAs: FileIdentity | undefined = written;
  const verify = async (): Promise<FileIdentity> => {
    const first = await checkFile(file, blob).catch((err: unknown) => {
      if (isNotFound(err)) return { ok: false as const, why: REMOVED, gone: true };
      throw err;
    });
    if (first.ok) return (hashedAs = first.identity);
    if (!maker) throw new CacheDamageError(file, first.why);
    const made = await maker.write(cache.blobs).catch((err: unknown) => {
      throw cacheWriteError(err, cache);
    });
    if (made.digest !== blob.digest || made.size !== blob.size) {
      throw new CacheDamageError(file, `${first.why}, and the layer's inputs now make ${made.digest} (${made.size} bytes): the record no longer matches the store`);
    }
    const again = await checkFile(file, blob).catch((err: unknown) => {
      if (isNotFound(err)) return { ok: false as const, why: REMOVED };
      throw err;
    });
    if (!again.ok) throw new CacheDamageError(file, again.why);
    if (!('gone' in first)) repaired?.(`cache: ${file} ${first.why}; made it again from the store`);
    return (hashedAs = again.identity);
  };
  const identity = (): Promise<FileIdentity> => {
    verified ??= verify().catch((err: unknown) => {
      verified = undefined; // a later read tries again (after `cache verify --repair`, say)
      throw err;
    });
    return verified;
  };
  return {
    ...facts(blob),
    file,
    fileVerified: () => {
      const now = hashedAs && fileIdentity(file);
      return now !== undefined && unchangedFile(now, hashedAs!);
    },
    open: () =>
      Readable.from(
        (async function* () {
          // The file hashed, unless it was replaced since (another inode or size): then hashed again.
          if (yield* verifiedFileBytes(file, blob, await identity())) return;
          verified = undefined;
          if (!(yield* verifiedFileBytes(file, blob, await identity()))) throw new CacheDamageError(file, 'changed while it was read');
        })(),
        { objectMode: false },
      ),
  };
}


/** Why a blob is not there any more: removed after the build's lookup found it. */
const REMOVED = 'was removed while the build used it (is `imgbuild cache prune` running?)';

const isNotFound = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

function facts(blob: LayerBlob) {
  return { digest: blob.digest, diffId: blob.diffId, size: blob.size, mediaType: blob.mediaType };
}

/** A layer whose blob is a file. */
export function fileLayer(blob: LayerBlob, file: string): Layer {
  return { ...facts(blob), file, open: () => createReadStream(file) };
}

function lazyLayer(blob: LayerBlob, maker: LayerMaker): Layer {
  return { ...facts(blob), open: () => maker.stream(blob) };
}
