import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { BlobStore } from '../blobs/blob-store.js';
import type { LayerBlob } from '../layer/types.js';
import type { Layer } from '../model/layer.js';
import type { LayerCache } from './layer-cache.js';
import type { LayerHints } from './layer-hints.js';

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
    const file = cache.blobFile(record);
    progress.start?.(file ? 'cached' : 'record');
    return file ? { layer: fileLayer(record, file), origin: 'cached', key, blob: record } : { layer: lazyLayer(record, maker), origin: 'deferred', key, blob: record };
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
  const blob = await maker.write(cache.blobs, progress.bytes);
  await cache.put(key, blob);
  return { layer: fileLayer(blob, cache.blobs.path(blob.digest)), origin: 'written', key, blob };
}

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
