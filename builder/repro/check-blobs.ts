import type { Image, Index } from '../model/image.js';
import { closedOnAbort, openBlob } from '../transports/blob-source.js';

/**
 * How the blobs of an image were checked before it was called the same as another: a local
 * image (layout, archive) has every layer read through its verified stream (a flipped byte in a
 * blob fails, naming it); a registry image's blobs are taken on the registry's digests, not read.
 */
export interface BlobCheck {
  source: string;
  /** `hashed`: every layer blob read and hashed; `registry`: the registry's digests trusted. */
  how: 'hashed' | 'registry';
  layers: number;
}

/**
 * Reads every layer blob of a local image (or of each image of an index) to its end through
 * `Layer.open()`, which fails on bytes that do not match the descriptor (verifiedStream). A
 * registry image (one with a `location`) is not read. Each blob is read once.
 */
export async function checkBlobs(artifact: Image | Index, seen = new Set<string>(), signal?: AbortSignal): Promise<BlobCheck> {
  if (artifact.kind === 'index') {
    let how: BlobCheck['how'] = 'hashed';
    let layers = 0;
    for (const entry of artifact.manifests) {
      const r = await checkBlobs(await entry.open(), seen, signal);
      if (r.how === 'registry') how = 'registry';
      layers += r.layers;
    }
    return { source: artifact.source, how, layers };
  }
  if (artifact.location) return { source: artifact.source, how: 'registry', layers: artifact.layers.length };
  for (const layer of artifact.layers) {
    if (seen.has(layer.digest)) continue;
    seen.add(layer.digest);
    // openBlob: a mismatch of a local file names that file.
    signal?.throwIfAborted();
    const stream = closedOnAbort(openBlob(layer), signal);
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    for await (const _ of stream) { /* verifiedStream checks as the bytes pass */ }
  }
  return { source: artifact.source, how: 'hashed', layers: artifact.layers.length };
}

/** One line for a report: how an image's blobs were checked. */
export function describeBlobCheck(c: BlobCheck): string {
  return c.how === 'hashed'
    ? `${c.source}: every layer blob read and hashed (${c.layers} layer(s))`
    : `${c.source}: a registry image: its layer digests are the registry's, its blobs were not read`;
}
