import type { PermRule } from '../layer/perms.js';
import type { Compressor, LayerBlob, TarHeaderDefaults } from '../layer/types.js';
import type { StorePathScan, StorePathScanJob } from '../store/path-scan.js';
import type { NarJob } from '../store/binary-cache/source.js';

/** One store layer to write; everything in it crosses a thread boundary (structured clone). */
export interface StoreLayerJob {
  /** The layer's logical store paths. */
  paths: string[];
  /** Where each of `paths` is on this machine, same order (StoreSource objects cannot cross threads); or `fsDir`. */
  fsPaths?: string[];
  /**
   * The directory holding every path as `<fsDir>/<base name>` (a directory store), given instead
   * of `fsPaths`: one string, not one per path, to copy into the worker and keep while it writes
   * (a layer of 50,000 tiny paths held ~7 MiB of them on each thread).
   */
  fsDir?: string;
  storeDir: string;
  header: TarHeaderDefaults;
  compressor: Compressor;
  /** Root of the BlobStore the layer goes into; absent: the layer is measured, its bytes dropped. */
  blobRoot?: string;
  /** perms rules for this layer's paths (layer/perms.ts). */
  perms?: PermRule[];
  /**
   * What the scans learned of the paths' files (store/handover.ts), so that the worker neither
   * walks nor reads them again: shared buffers (not copied into the worker), and per path in
   * sorted order (storeLayerOutline) where its record is (HandoverArena.job; -1: walked).
   */
  handover?: { buffers: SharedArrayBuffer[]; at: Float64Array };
}

/**
 * One store layer to write from a binary cache's NARs: the worker fetches, checks and
 * decompresses them itself (the narinfos were read and their signatures checked on the main thread).
 */
export interface NarLayerJob {
  paths: string[];
  storeDir: string;
  header: TarHeaderDefaults;
  compressor: Compressor;
  blobRoot?: string;
  nars: NarJob;
  perms?: PermRule[];
}

/** What a worker can be asked to do: each kind's job and result (both structured-cloneable). */
export interface Jobs {
  'write-store-layer': { job: StoreLayerJob; result: LayerBlob };
  'write-nar-layer': { job: NarLayerJob; result: LayerBlob };
  /** A directory store's paths (a batch) read and scanned for references, a result each (with its scan record). */
  'scan-store-path': { job: StorePathScanJob; result: StorePathScan[] };
}

export type JobKind = keyof Jobs;
