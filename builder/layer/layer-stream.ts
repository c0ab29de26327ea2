import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { ImgbuildError } from '../errors.js';
import { createSink } from './blob-sinks.js';
import { checkDefaults, feedTar } from './write-layer.js';
import type { LayerEntry, LayerWriteOptions } from './types.js';

/** What a layer's blob must be: from the layer cache's record of an earlier write. */
export interface ExpectedBlob {
  digest: Digest;
  size: number;
}

/**
 * A layer's blob as a stream: the bytes `writeLayer` would write for `entries`, made as they are
 * read and never written to a file. For a push of a layer whose digest the layer cache knows but
 * whose blob is not on this machine (nor in the registry): the registry gets the bytes straight
 * from the store.
 *
 * The bytes are checked against `expected` before the last of them is given out: if the inputs
 * changed since the record was written, the stream fails (error code `layer-cache`) instead of ending,
 * so a registry never receives a whole blob under the wrong digest. Each call makes a new stream
 * from the start (`entries` is called again), as an upload retry needs.
 */
export function layerStream(
  entries: () => AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  options: LayerWriteOptions,
  expected: ExpectedBlob,
): Readable {
  return Readable.from(layerBytes(entries, options, expected), { objectMode: false });
}

async function* layerBytes(
  entries: () => AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  options: LayerWriteOptions,
  expected: ExpectedBlob,
): AsyncGenerator<Buffer> {
  checkDefaults(options);
  // Output waits here until the generator is resumed; the newest buffer is always held back, so
  // the last bytes go out only once the digest is known to match.
  let queue: Buffer[] = [];
  // A plain sink hands out the tar's reused chunk, a zstd sink its reused frame buffers (BlobOutput).
  const copyOut = options.compressor !== 'gzip';
  const sink = createSink(options.compressor, (bytes) => queue.push(copyOut ? Buffer.from(bytes) : bytes));
  let finished = false;
  try {
    for await (const _ of feedTar(entries(), options.header, sink, options.signal)) {
      if (queue.length > 1) {
        const out = queue;
        queue = out.splice(-1);
        for (const bytes of out) yield bytes;
      }
    }
    const measured = await sink.finish();
    finished = true;
    if (measured.digest !== expected.digest || measured.size !== expected.size) {
      throw new ImgbuildError(
        'layer-cache',
        `the layer's bytes are no longer the ones cached as ${expected.digest} (${expected.size} bytes): they give ${measured.digest} (${measured.size} bytes)`,
        'the store paths changed since the layer was cached; run `imgbuild cache prune --older-than 0s` (empties the cache) and build again',
      );
    }
    // Not `yield* queue`: Readable.from (Node 24) ends a destroyed stream with the generator's
    // throw(), which a delegated array iterator lacks ("does not provide a 'throw' method").
    for (const bytes of queue) yield bytes;
  } finally {
    if (!finished) sink.abandon();
  }
}
