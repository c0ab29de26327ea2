import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import pLimit from 'p-limit';
import type { ClosureGraph, LayerPlan } from '../layering/types.js';
import { planLayers, storeLayerBudget } from '../layering/index.js';
import type { RegistryClient } from '../registry-client/index.js';
import { loadBaseImage, mergeConfig, type BaseImage } from './base-image.js';
import { BlobStore } from './blobs/blob-store.js';
import { cacheRoot } from './cache-dir.js';
import { customisationEntries } from './customisation/entries.js';
import { mergeEntries } from './customisation/merge.js';
import { nixDbEntries } from './store/nix-db.js';
import { assembleImage } from './image/assemble.js';
import type { BuiltImage, ImageLayer } from './image/types.js';
import { storeLayerEntries } from './layer/tree-entries.js';
import type { LayerBlob, LayerWriteOptions } from './layer/types.js';
import { LayerCache, type BlobElsewhere, type CacheAnswer } from './cache/layer-cache.js';
import { entriesKey, keyedStorePaths, storeLayerKey } from './cache/layer-key.js';
import { writeLayer } from './layer/write-layer.js';
import { layerStream } from './layer/layer-stream.js';
import { workersWanted, BuildWorkerPool } from './workers/pool.js';
import { assertReferenceDeflate } from './layer/zlib-guard.js';
import type { ResolvedSpec } from './spec/schema.js';
import { DirectoryStoreSource } from './store/directory-source.js';
import { openStoreSource } from './store/open.js';
import { SpecError } from './errors.js';
import type { StoreSource } from './store/types.js';

/** What the build is doing, for progress output. */
export type BuildEvent =
  | { phase: 'closure'; paths: number; narSize: number }
  | { phase: 'plan'; layers: number }
  | { phase: 'layer-start'; index: number; total: number; reason: string; paths: number; narSize: number }
  | {
      phase: 'layer-done';
      index: number;
      total: number;
      reason: string;
      digest: string;
      size: number;
      cached?: boolean;
      /** Known from the cache but held nowhere: made again from the store while it is pushed. */
      remade?: boolean;
    };

export interface BuildOptions {
  /** Overrides the spec's `store`. */
  store?: StoreSource;
  /** Where layer blobs are written; default `<cache root>/blobs`. */
  blobs?: BlobStore;
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
  /** How many layers are written at once; default: the number of cores. */
  concurrency?: number;
  /** Layer cache (key → digest, diff_id, size); default `<cache root>/layers`; `false` writes every layer. */
  layerCache?: LayerCache | false;
  /** The previous image's store layers (stable layering keeps those still whole). */
  previous?: string[][];
  /**
   * Set when the only output is a push: whether the target registry already holds a blob. A
   * cached layer it holds is used without its blob being here (nothing is read or written).
   */
  blobElsewhere?: BlobElsewhere;
  /** How to reach a registry when `fromImage` is a reference (the CLI builds it from its flags). */
  registryClient?: () => Promise<RegistryClient>;
  /**
   * Scan a directory store's paths and write store layers in worker threads as well as on the
   * main thread (cores − 1 workers, started when a job needs one).
   * Default: yes when there is more than one core (for layers: and more than one store layer),
   * unless `IMGBUILD_WORKERS=0`. The bytes are the same either way.
   */
  workers?: boolean;
}

export interface BuildResult {
  spec: ResolvedSpec;
  /** The image `fromImage` named, when there is one. */
  base?: BaseImage;
  closure: ClosureGraph;
  plan: LayerPlan;
  image: BuiltImage;
  blobs: BlobStore;
}

export function defaultBlobStore(env: NodeJS.ProcessEnv = process.env): BlobStore {
  return new BlobStore(join(cacheRoot(env), 'blobs'));
}

/** The store a spec names, unless the caller gave one. */
export async function specStore(spec: ResolvedSpec, override?: StoreSource): Promise<StoreSource> {
  if (override) return override;
  const { kind, dir, storeDir, storeDirGiven, closureFile, verify } = spec.store;
  if (kind === 'directory' && !dir) {
    if (spec.contents.length === 0 && spec.copyToRoot.length === 0) return new DirectoryStoreSource(spec.file, storeDir, { cacheDir: false });
    throw new SpecError(spec.file, 'store', 'the spec names store paths but no store to take them from', 'set store.dir in the spec, or pass --store <dir>, --nix or --closure-file <file>');
  }
  return openStoreSource({
    kind,
    dir,
    // A real Nix store reports its own store dir unless one was asked for.
    storeDir: kind === 'nix' && !storeDirGiven ? undefined : storeDir,
    closureFile,
    verify,
    cwd: dirname(spec.file),
  });
}

/** Closure of everything the image holds: `contents` and the paths `copyToRoot` links into `/`. */
export async function specClosure(spec: ResolvedSpec, store: StoreSource): Promise<ClosureGraph> {
  const roots = [...new Set([...spec.contents, ...spec.copyToRoot])];
  return store.closure(roots);
}

export function specPlan(spec: ResolvedSpec, closure: ClosureGraph, baseLayers = 0, previous?: string[][]): LayerPlan {
  if (!spec.includeStorePaths) return { strategy: spec.layering.strategy, layers: [] };
  return planLayers(closure, {
    strategy: spec.layering.strategy,
    maxStoreLayers: storeLayerBudget(spec.maxLayers, baseLayers),
    explicitLayers: spec.layering.layers,
    pinned: spec.layering.pinned,
    previous,
  });
}

/**
 * The closure, with a directory store's paths scanned on the pool's workers as well as here
 * (the same results either way: each path's scan depends only on its files).
 */
async function closureWithWorkers(spec: ResolvedSpec, store: StoreSource, pool: BuildWorkerPool | undefined, signal: AbortSignal | undefined): Promise<ClosureGraph> {
  if (!pool || !(store instanceof DirectoryStoreSource)) return specClosure(spec, store);
  store.scanWith((job) => (pool.hasFreeWorker ? pool.run('scan-store-path', job, signal) : undefined));
  try {
    return await specClosure(spec, store);
  } finally {
    store.scanWith(undefined);
  }
}

/** spec → closure → plan → layers → config + manifest, all blobs in the blob store. */
export async function buildImage(spec: ResolvedSpec, options: BuildOptions = {}): Promise<BuildResult> {
  const emit = options.onEvent ?? (() => {});
  // Refuse before any work when this Node's zlib would give other gzip bytes than the reference.
  if (spec.compressor === 'gzip') assertReferenceDeflate();
  const store = await specStore(spec, options.store);
  const blobs = options.blobs ?? defaultBlobStore();

  const base = spec.fromImage
    ? await loadBaseImage(spec.fromImage, {
        blobs,
        platform: { os: spec.os, architecture: spec.architecture, variant: spec.variant },
        client: options.registryClient,
      })
    : undefined;
  // Worker threads for a directory store's path scans and for the store layers, started when a
  // job needs one. The main thread works too (it is otherwise idle), so one worker fewer than
  // cores: each worker's heap and buffers add to peak RSS (bench/README.md).
  const cores = availableParallelism();
  const pool = workersWanted(options.workers, 2) ? new BuildWorkerPool(Math.max(1, (options.concurrency ?? cores) - 1)) : undefined;
  let closure: ClosureGraph;
  let plan: LayerPlan;
  try {
    closure = await closureWithWorkers(spec, store, pool, options.signal);
    emit({ phase: 'closure', paths: closure.paths.length, narSize: closure.paths.reduce((s, p) => s + p.narSize, 0) });
    plan = specPlan(spec, closure, base?.layers.length ?? 0, options.previous);
    emit({ phase: 'plan', layers: plan.layers.length + 1 });
  } catch (err) {
    await pool?.close();
    throw err;
  }
  const layerPool = workersWanted(options.workers, plan.layers.length) ? pool : undefined;

  const writeOptions: LayerWriteOptions = {
    header: { mtime: spec.mtime, uid: spec.uid, gid: spec.gid, uname: spec.uname, gname: spec.gname },
    compressor: spec.compressor,
    signal: options.signal,
  };
  const fsPathOf = (p: string) => store.fsPath(p);
  const total = plan.layers.length + 1;
  const limit = pLimit(options.concurrency ?? availableParallelism());
  const cache = options.layerCache === false ? undefined : (options.layerCache ?? LayerCache.atDefaultLocation());
  // A cached layer is used without reading its files: the key stands for the bytes (layer-key.ts).
  // A push-only build does not write a store layer the cache knows but that is held nowhere: it is
  // made again from the store as the push sends it (`ImageLayer.remake`).
  const write = async (key: () => Promise<string>, produce: () => Promise<LayerBlob>, remake = false): Promise<CacheAnswer> => {
    if (!cache) return { blob: await produce(), cached: false };
    const push = options.blobElsewhere ? { elsewhere: options.blobElsewhere, remake } : undefined;
    return cache.getOrWrite(await key(), blobs, produce, push);
  };

  const writeStoreLayer = (paths: string[]): Promise<LayerBlob> => {
    const inProcess = () => writeLayer(storeLayerEntries(paths, fsPathOf, store.storeDir), writeOptions, blobs);
    if (!layerPool?.hasFreeWorker) return inProcess();
    let fsPaths: string[];
    try {
      fsPaths = paths.map(fsPathOf);
    } catch {
      // A path the source cannot place: the in-process writer reports it as it always has.
      return inProcess();
    }
    const { header, compressor } = writeOptions;
    return layerPool.writeStoreLayer({ paths, fsPaths, storeDir: store.storeDir, header, compressor, blobRoot: blobs.root }, options.signal);
  };

  // Queued biggest first, so that the last layers to start are short and no core idles at the end
  // (the plan puts its biggest layer, the least popular paths, last). Results stay in plan order.
  const storeLayers: Promise<ImageLayer>[] = [];
  const bySize = plan.layers.map((planned, index) => ({ planned, index })).sort((x, y) => y.planned.narSize - x.planned.narSize || x.index - y.index);
  for (const { planned, index } of bySize) {
    storeLayers[index] = limit(async (): Promise<ImageLayer> => {
      options.signal?.throwIfAborted();
      emit({ phase: 'layer-start', index, total, reason: planned.reason, paths: planned.paths.length, narSize: planned.narSize });
      const key = async () => storeLayerKey(await keyedStorePaths(store, planned.paths), store.storeDir, writeOptions);
      const { blob, cached, remake } = await write(key, () => writeStoreLayer(planned.paths), true);
      emit({ phase: 'layer-done', index, total, reason: planned.reason, digest: blob.digest, size: blob.size, cached, remade: remake });
      const layer = { storePaths: planned.paths, reason: planned.reason };
      if (remake) {
        const entries = () => storeLayerEntries(planned.paths, fsPathOf, store.storeDir);
        // Made while the push runs, which the build's signal does not stop (a second Ctrl-C does).
        const { signal: _, ...streamOptions } = writeOptions;
        return { ...blob, ...layer, remake: () => layerStream(entries, streamOptions, blob) };
      }
      return { ...blob, ...layer };
    });
  }
  const customisation = limit(async (): Promise<ImageLayer> => {
    options.signal?.throwIfAborted();
    const index = total - 1;
    let entries = await customisationEntries(spec, fsPathOf);
    if (spec.includeNixDB) {
      // dockerTools' includeNixDB: the closure registered in /nix/var/nix/db, in this layer.
      const db = await nixDbEntries(closure, fsPathOf, { registrationTime: spec.mtime });
      entries = mergeEntries(spec.file, entries, db);
    }
    emit({ phase: 'layer-start', index, total, reason: 'customisation', paths: 0, narSize: 0 });
    const { blob, cached } = await write(() => entriesKey(entries, writeOptions), () => writeLayer(entries, writeOptions, blobs));
    emit({ phase: 'layer-done', index, total, reason: 'customisation', digest: blob.digest, size: blob.size, cached });
    return { ...blob, storePaths: [], reason: 'customisation' };
  });
  // Settle every write before failing, so no writer is still streaming into the store when we return;
  // then end the workers (none is busy), so that the CLI exits by itself.
  const settled = await Promise.allSettled([...storeLayers, customisation]).finally(() => pool?.close());
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const layers = [...(base?.layers ?? []), ...settled.map((r) => (r as PromiseFulfilledResult<ImageLayer>).value)];

  const image = await assembleImage(
    {
      layers,
      name: spec.name,
      tag: spec.tag,
      config: {
        architecture: spec.architecture,
        os: spec.os,
        variant: spec.variant,
        created: spec.created,
        config: base ? mergeConfig(base.config.config, spec.config) : spec.config,
        baseHistory: base ? baseHistoryFor(base) : undefined,
      },
    },
    blobs,
  );
  return { spec, base, closure, plan, image, blobs };
}

/** The base's history, or one entry per base layer when it has none (so every layer has one). */
function baseHistoryFor(base: BaseImage) {
  const history = base.config.history ?? [];
  if (history.some((h) => !h.empty_layer)) return history;
  return base.layers.map(() => ({ created: base.config.created, created_by: `imgbuild: base layer from ${base.source}` }));
}
