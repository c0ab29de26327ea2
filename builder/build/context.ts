import type { Worker } from 'node:worker_threads';
import type { CacheFetchOptions } from '../store/binary-cache/fetch.js';
import type { RegistryClient } from '../../registry-client/index.js';
import type { LayerHints } from '../cache/layer-hints.js';
import type { LayerAction } from '../cache/layer-source.js';
import type { StoreSource } from '../store/types.js';

/** What the build is doing, for progress output; in a multi-platform build, for which platform (`linux/arm64`). */
export type BuildEvent = BuildPhase & { platform?: string };

export type BuildPhase =
  /**
   * While a store's paths are read for the closure (a directory store's scan, `--verify-store`):
   * `done` paths read so far of the `found` known so far (a directory store finds paths as it
   * reads their references). At most 10 a second, and once when the last is read.
   */
  | { phase: 'scan'; done: number; found: number }
  | { phase: 'closure'; paths: number; narSize: number }
  | { phase: 'plan'; layers: number }
  /**
   * Once the layer's cache key is looked up. `action`: `writing` it into the cache, `measuring`
   * it (no cache), `cached` (its blob is in the cache: nothing is made), `record` (a cached
   * record without its blob: made only if an output reads it).
   */
  | { phase: 'layer-start'; index: number; total: number; reason: string; paths: number; narSize: number; action: LayerAction }
  /**
   * While a layer is written or measured: the bytes of its tar made so far (before compression;
   * the paths' NAR size is close to the tar's). At most 10 a second per layer, and once at the end.
   */
  | { phase: 'layer-progress'; index: number; total: number; bytes: number; narSize: number }
  | {
      phase: 'layer-done';
      index: number;
      total: number;
      reason: string;
      digest: string;
      size: number;
      /**
       * `written` now; `cached`: its blob was in the cache; `deferred`: its bytes are made when an
       * output reads them (a cached record without its blob, or a build without a cache).
       */
      origin: 'written' | 'cached' | 'deferred';
    };

/**
 * Everything a build takes from its surroundings, said explicitly: the library reads no
 * environment variable, no home directory and no command line of its own. The CLI fills it
 * from its flags and environment.
 */
export interface BuildContext {
  /**
   * imgbuild's cache root (layer records, layer blobs, store scan records), e.g. what the CLI
   * takes from $IMGBUILD_CACHE_DIR or ~/.cache/imgbuild. Absent: no cache, and nothing is written
   * outside the outputs (a layer's bytes are then made once to measure them and again when an
   * output reads them).
   */
  cacheDir?: string;
  /** The environment a spec is resolved in (SOURCE_DATE_EPOCH) and Nix commands run in. Default: empty. */
  env?: Readonly<Record<string, string | undefined>>;
  /** "Now", for `created: "now"`. Default: the system clock. */
  clock?: () => Date;
  /**
   * Worker threads for a directory store's scans and the store layers: a count, `true` (cores − 1)
   * or `false` (all on the calling thread). Default `true` on more than one core. Bytes are the same either way.
   */
  workers?: boolean | number;
  /**
   * A build worker the caller started ahead of the build (the CLI starts one as it loads, so that
   * its start-up overlaps the CLI's own: commands/early-worker.ts), running the pool's worker
   * script with its options (workers/options.ts); the build's pool takes it as its first worker
   * instead of starting one. Asked when the pool starts a worker; gives each at most once.
   */
  startedWorker?: () => Worker | undefined;
  /** How many layers are written at once; default: the number of cores (one more for zstd: build/layers.ts layersAtOnce). */
  concurrency?: number;
  onEvent?: (event: BuildEvent) => void;
  /** Warnings (a zlib drift allowed by IMGBUILD_ALLOW_ZLIB_DRIFT=1 in `env`); default: dropped. */
  warn?: (message: string) => void;
  signal?: AbortSignal;
  /** How to reach a registry (a `fromImage` reference): a client, or a function making one on first use. */
  registry?: RegistryClient | (() => Promise<RegistryClient>);
  /** Overrides the store the spec names. */
  store?: StoreSource;
  /** How a binary-cache store source fetches (timeouts); default: its own (30 s). */
  storeFetch?: Omit<CacheFetchOptions, 'signal'>;
  /**
   * Layer records kept elsewhere (a registry: `--cache-ref`), consulted after the local cache;
   * told of every layer the build has, to keep them for the next build.
   */
  layerHints?: LayerHints;
}
