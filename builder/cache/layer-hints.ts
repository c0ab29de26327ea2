import type { LayerBlob } from '../layer/types.js';

/**
 * Layer records kept away from this machine (in a registry: transports/registry-records.ts),
 * consulted after the local cache. A hint is never trusted for bytes: `held` gives a record only
 * when the place the image goes already holds that blob (so no byte of it is made or sent); a
 * layer that must be made is made from the store and recorded anew.
 */
export interface LayerHints {
  /** The record for `key` when its blob is already where the image is pushed, else undefined. */
  held(key: string): Promise<LayerBlob | undefined>;
  /** What a layer of this build is (whichever way it was had), to be kept for the next build. */
  note(key: string, blob: LayerBlob, storePaths: readonly string[]): void;
}
