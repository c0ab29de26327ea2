import { closeSync } from 'node:fs';
import { throttle } from '../throttle.js';
import type { BlobStore } from '../blobs/blob-store.js';
import { createSink, layerMediaType, type BlobSink } from './blob-sinks.js';
import { LayerEntryError } from './errors.js';
import { DEFLATE_BLOCK_SIZE } from './gzip.js';
import { PositionalWriter } from './positional-writer.js';
import { TarChunker } from './tar-chunker.js';
import { MAX_ID, MAX_MTIME } from './tar-header.js';
import type { LayerBlob, LayerEntry, LayerWriteOptions } from './types.js';

/**
 * Bytes of tar per chunk handed from the tar to the sink: one deflate block, so that the hash
 * and the deflate copy work on a buffer that is still in the CPU's cache.
 */
const TAR_CHUNK = DEFLATE_BLOCK_SIZE;

/**
 * Write one layer into the blob store in a single pass: the tar of `entries` is hashed
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

  const temp = await store.createTempFile();
  let open = true;
  let sink: BlobSink | undefined;
  // The blob's bytes go to the file on the thread pool while this thread makes the next ones.
  const file = new PositionalWriter(temp.fd);
  try {
    // Inside the try: a gzip sink writes its header at once, and that write can fail (ENOSPC).
    sink = createSink(compressor, (bytes) => file.add(bytes));
    // The tar also waits while every buffer of the file is being written.
    for await (const _ of feedTar(entries, header, sink, signal, options.onProgress, () => file.room()));
    const measured = await sink.finish();
    await file.end();
    open = false;
    closeSync(temp.fd);
    const blob: LayerBlob = { ...measured, mediaType: layerMediaType(compressor) };
    // Committed even when a file of this digest exists: these bytes were just hashed, while that
    // file may be torn or damaged (a rename over it repairs it; a reader holding it keeps its copy).
    await store.commit(temp.path, blob.digest);
    return blob;
  } catch (err) {
    sink?.abandon();
    // Its writes in flight end before the file is closed and removed.
    await file.abandon();
    if (open) closeSync(temp.fd);
    await store.discard(temp.path);
    throw err;
  }
}

/**
 * The digests and sizes `writeLayer` would give for `entries`, with the bytes made and dropped:
 * for a build without a cache, whose outputs make the bytes again as they read them.
 */
export async function measureLayer(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, options: LayerWriteOptions): Promise<LayerBlob> {
  checkDefaults(options);
  options.signal?.throwIfAborted();
  const sink = createSink(options.compressor, () => {});
  try {
    for await (const _ of feedTar(entries, options.header, sink, options.signal, options.onProgress));
    const measured = await sink.finish();
    return { ...measured, mediaType: layerMediaType(options.compressor) };
  } catch (err) {
    sink.abandon();
    throw err;
  }
}

/**
 * Hands the tar of `entries` to `sink`, one chunk at a time, and yields once the sink has taken
 * each chunk: a caller streaming the sink's output passes it on there. `onProgress` hears the
 * tar bytes handed over so far (throttled, see LayerWriteOptions.onProgress).
 */
export async function* feedTar(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  header: LayerWriteOptions['header'],
  sink: BlobSink,
  signal: AbortSignal | undefined,
  onProgress?: (tarBytes: number) => void,
  /** Where the sink's output goes, when it can fall behind: a promise while it has no room for more. */
  room?: () => Promise<void> | undefined,
): AsyncGenerator<void> {
  // A compressing sink's chunks are its compressor's units (deflate blocks, zstd frames), built
  // in its own buffers (chunkBuffer) and compressed where they are: no copy of the tar.
  const chunkSize = sink.chunkBuffer ? (sink.chunkSize ?? TAR_CHUNK) : TAR_CHUNK;
  const tar = new TarChunker(header, chunkSize, sink.chunkBuffer?.());
  const progress = onProgress ? throttle(onProgress) : undefined;
  let fed = 0;
  // Per chunk, not per entry: most entries complete no chunk, and a store holds tens of thousands.
  const put = async (chunk: Buffer): Promise<void> => {
    fed += chunk.length;
    const wait = sink.write(chunk);
    // A whole chunk is the sink's now (compressing, or held as the next one's dictionary).
    if (sink.chunkBuffer && chunk.length === chunkSize) tar.replaceBuffer(sink.chunkBuffer());
    if (wait) await wait;
    const full = room?.();
    if (full) await full;
    signal?.throwIfAborted();
    progress?.(fed);
  };
  // A synchronous source (a tree on disk) is read with a plain loop: `for await` over it would
  // cost a promise and a turn of the microtask queue per entry, and a store has hundreds of
  // thousands of entries; only a completed chunk waits for the sink.
  const sync = Symbol.iterator in entries ? (entries as Iterable<LayerEntry>) : undefined;
  const each = async function* (entry: LayerEntry): AsyncGenerator<void> {
    if (entry.kind === 'file' && entry.content.from === 'stream') {
      // A file inside a NAR: its bytes pass through the tar's buffer as they arrive.
      const { size, read } = entry.content;
      for (const chunk of tar.addStreamed(entry, size)) {
        await put(chunk);
        yield;
      }
      let got = 0;
      for await (const piece of read()) {
        got += piece.byteLength;
        if (got > size) break;
        for (const chunk of tar.streamed(piece)) {
          await put(chunk);
          yield;
        }
      }
      if (got !== size) throw new LayerEntryError(`layer entry ${JSON.stringify(entry.path)}: its stream gave ${got > size ? 'more than' : got} bytes, not the ${size} its header says`, entry.path);
      for (const chunk of tar.endStreamed(size)) {
        await put(chunk);
        yield;
      }
      return;
    }
    for (const chunk of tar.add(entry)) {
      await put(chunk);
      yield;
    }
  };
  if (sync) {
    for (const entry of sync) {
      signal?.throwIfAborted();
      if (tar.tryAdd(entry)) continue;
      yield* each(entry);
    }
  } else {
    for await (const entry of entries as AsyncIterable<LayerEntry>) {
      signal?.throwIfAborted();
      if (tar.tryAdd(entry)) continue;
      yield* each(entry);
    }
  }
  for (const chunk of tar.end()) {
    await put(chunk);
    yield;
  }
  progress?.flush();
}

/** Refuses writer options a tar header cannot hold, before anything is written. */
export function checkDefaults(options: LayerWriteOptions): void {
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
  if (options.compressor !== 'gzip' && options.compressor !== 'none' && options.compressor !== 'zstd') fail(`unknown compressor ${JSON.stringify(options.compressor)}`);
}
