import { once } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MediaType } from '../../oci/media-types.js';
import type { BlobStore } from '../blobs/blob-store.js';
import { LayerEntryError } from './errors.js';
import { createPinnedDeflate, GzipFramer, Measure } from './gzip.js';
import { tarChunks } from './tar-encoder.js';
import { MAX_ID, MAX_MTIME } from './tar-header.js';
import type { LayerBlob, LayerEntry, LayerWriteOptions } from './types.js';

/** Bytes of tar buffered ahead of the compressor: bounds memory whatever the layer size. */
const TAR_HIGH_WATER_MARK = 1024 * 1024;

/**
 * Write one layer into the blob store in a single streaming pass: the tar of `entries` is hashed
 * (diff_id), compressed, hashed again (digest) and written to a temp file in the store, which is
 * renamed to its digest at the end. On any error or abort the temp file is removed and nothing
 * is committed. Memory does not depend on the size of files or of the layer.
 */
export async function writeLayer(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  options: LayerWriteOptions,
  store: BlobStore,
): Promise<LayerBlob> {
  const { header, compressor, signal } = options;
  checkDefaults(options);
  signal?.throwIfAborted();

  const temp = await store.createTemp();
  const file = temp.stream;
  try {
    // Wait for the temp file to exist, so that a failure below cannot race its creation.
    await once(file, 'open');
    const tar = Readable.from(tarChunks(entries, header, signal), { objectMode: false, highWaterMark: TAR_HIGH_WATER_MARK });
    const tarMeasure = new Measure(compressor === 'gzip');
    let blobMeasure: Measure;
    if (compressor === 'gzip') {
      blobMeasure = new Measure(false);
      await pipeline(tar, tarMeasure, createPinnedDeflate(), new GzipFramer(tarMeasure), blobMeasure, file, withSignal(signal));
    } else {
      blobMeasure = tarMeasure;
      await pipeline(tar, tarMeasure, file, withSignal(signal));
    }
    const blob: LayerBlob = {
      digest: blobMeasure.digest(),
      diffId: tarMeasure.digest(),
      size: blobMeasure.size,
      uncompressedSize: tarMeasure.size,
      mediaType: compressor === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayer,
    };
    // An existing blob with this digest has these bytes already: keep it, drop ours.
    if (await store.has(blob.digest)) await store.discard(temp.path);
    else await store.commit(temp.path, blob.digest);
    return blob;
  } catch (err) {
    await closed(file);
    await store.discard(temp.path);
    throw err;
  }
}

function withSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

async function closed(stream: Writable & { closed?: boolean }): Promise<void> {
  if (stream.closed) return;
  if (!stream.destroyed) stream.destroy();
  await once(stream, 'close').catch(() => undefined);
}

function checkDefaults(options: LayerWriteOptions): void {
  const h = options.header;
  const fail = (msg: string): never => {
    throw new LayerEntryError(`layer header defaults: ${msg}`);
  };
  if (!Number.isSafeInteger(h.mtime) || h.mtime < 0 || h.mtime > MAX_MTIME) fail(`mtime ${h.mtime} is not an integer in 0..${MAX_MTIME}`);
  for (const [k, v] of [['uid', h.uid], ['gid', h.gid]] as const) {
    if (!Number.isSafeInteger(v) || v < 0 || v > MAX_ID) fail(`${k} ${v} is not an integer in 0..${MAX_ID}`);
  }
  for (const [k, v] of [['uname', h.uname], ['gname', h.gname]] as const) {
    if (!/^[\x01-\x7f]{0,31}$/.test(v)) fail(`${k} ${JSON.stringify(v)} must be at most 31 ASCII characters`);
  }
  if (options.compressor !== 'gzip' && options.compressor !== 'none') fail(`unknown compressor ${JSON.stringify(options.compressor)}`);
}
