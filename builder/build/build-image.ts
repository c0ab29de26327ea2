import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import pLimit from 'p-limit';
import type { ClosureGraph } from '../../layering/types.js';
import { cachedLayer, type LayerMaker, type MadeLayer } from '../cache/layer-source.js';
import { LayerCache } from '../cache/layer-cache.js';
import { entriesKey, keyedStorePaths, storeLayerKey } from '../cache/layer-key.js';
import { customisationEntries } from '../customisation/entries.js';
import { mergeEntries } from '../customisation/merge.js';
import { SpecError } from '../errors.js';
import { layerStream } from '../layer/layer-stream.js';
import { storeLayerEntries } from '../layer/tree-entries.js';
import type { LayerEntry, LayerWriteOptions } from '../layer/types.js';
import { measureLayer, writeLayer } from '../layer/write-layer.js';
import { assertReferenceDeflate } from '../layer/zlib-guard.js';
import type { Image } from '../model/image.js';
import type { ResolvedSpec } from '../spec/types.js';
import { DirectoryStoreSource } from '../store/directory-source.js';
import { EmptyStoreSource } from '../store/empty-source.js';
import { nixDbEntries } from '../store/nix-db.js';
import { openStoreSource } from '../store/open.js';
import type { StoreSource } from '../store/types.js';
import { openImage } from '../transports/open.js';
import { BuildWorkerPool } from '../workers/pool.js';
import { assembleImage, type AssembledLayer } from './assemble.js';
import { baseHistory, baseLayer, mergeConfig } from './base.js';
import type { BuildContext } from './context.js';
import { checkPlan, planImage, type ImagePlan } from './plan.js';

export interface BuildOptions {
  /** The previous image's store layers (stable layering keeps those still whole). */
  previous?: string[][];
  /** Follow this plan (`plan --json` output) instead of planning; refused when made for other contents. */
  plan?: { value: unknown; file: string };
}

export interface Build {
  spec: ResolvedSpec;
  /** The image `fromImage` named, when there is one. */
  base?: Image;
  closure: ClosureGraph;
  plan: ImagePlan;
  /** The image: every output and push takes it. Its store layers are read from the cache or made as they are read. */
  image: Image;
}

/** The store a spec names, unless the context gives one. */
export async function specStore(spec: ResolvedSpec, ctx: Pick<BuildContext, 'store' | 'cacheDir' | 'env'> = {}): Promise<StoreSource> {
  if (ctx.store) return ctx.store;
  const { kind, dir, storeDir, storeDirGiven, closureFile, verify } = spec.store;
  const scanCache = ctx.cacheDir ? join(ctx.cacheDir, 'scan') : false;
  if (kind === 'directory' && !dir) {
    if (spec.contents.length === 0 && spec.copyToRoot.length === 0) return new EmptyStoreSource(storeDir);
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
    cacheDir: scanCache,
    ...(ctx.env ? { env: ctx.env } : {}),
  });
}

/** Closure of everything the image holds: `contents` and the paths `copyToRoot` links into `/`. */
export async function specClosure(spec: ResolvedSpec, store: StoreSource): Promise<ClosureGraph> {
  const roots = [...new Set([...spec.contents, ...spec.copyToRoot])];
  return store.closure(roots);
}

/** The image `fromImage` names (any image argument: a layout, an archive, a registry image), for the spec's platform. */
export async function specBase(spec: ResolvedSpec, ctx: Pick<BuildContext, 'registry'>): Promise<Image | undefined> {
  if (!spec.fromImage) return undefined;
  return openImage(spec.fromImage, {
    cwd: dirname(spec.file),
    what: 'fromImage',
    platform: { os: spec.os, architecture: spec.architecture, ...(spec.variant ? { variant: spec.variant } : {}) },
    ...(ctx.registry ? { registry: ctx.registry } : {}),
  });
}

/** How many worker threads a build may start. */
function workerCount(ctx: BuildContext): number {
  const cores = availableParallelism();
  if (ctx.workers === false) return 0;
  if (typeof ctx.workers === 'number') return Math.max(0, Math.floor(ctx.workers));
  if (ctx.workers === undefined && cores < 2) return 0;
  // The main thread works too (it is otherwise idle), so one worker fewer than cores: each
  // worker's heap and buffers add to peak RSS (bench/README.md).
  return Math.max(1, (ctx.concurrency ?? cores) - 1);
}

/**
 * spec → closure → plan → layers → image. The image's layers come through the cache (a
 * decorator, layer-source.ts): each is written now, taken from the cache, or made as an output
 * reads it. Publishing it (a layout, an archive, a push) is the caller's next step.
 */
export async function buildImage(spec: ResolvedSpec, ctx: BuildContext = {}, options: BuildOptions = {}): Promise<Build> {
  const emit = ctx.onEvent ?? (() => {});
  // Refuse before any work when this Node's zlib would give other gzip bytes than the reference.
  if (spec.compressor === 'gzip') assertReferenceDeflate(ctx.env ?? {}, ctx.warn);
  const store = await specStore(spec, ctx);
  const base = await specBase(spec, ctx);
  const cache = ctx.cacheDir ? new LayerCache(ctx.cacheDir) : undefined;

  const workers = workerCount(ctx);
  const pool = workers > 0 ? new BuildWorkerPool(workers) : undefined;
  let closure: ClosureGraph;
  let plan: ImagePlan;
  try {
    closure = await closureWithWorkers(spec, store, pool, ctx.signal);
    emit({ phase: 'closure', paths: closure.paths.length, narSize: closure.paths.reduce((s, p) => s + p.narSize, 0) });
    plan = options.plan ? checkPlan(options.plan.value, options.plan.file, closure, base, spec.maxLayers) : planImage(spec, closure, base, options.previous);
    emit({ phase: 'plan', layers: plan.layers.length + 1 });
  } catch (err) {
    await pool?.close();
    throw err;
  }
  // One store layer gains nothing from a thread and pays its start-up (unless workers were asked for).
  const layerPool = ctx.workers !== undefined || plan.layers.length > 1 ? pool : undefined;

  const writeOptions: LayerWriteOptions = {
    header: { mtime: spec.mtime, uid: spec.uid, gid: spec.gid, uname: spec.uname, gname: spec.gname },
    compressor: spec.compressor,
    signal: ctx.signal,
  };
  // A layer made while an output reads it (after the build) is not stopped by the build's signal.
  const { signal: _, ...streamOptions } = writeOptions;
  const fsPathOf = (p: string) => store.fsPath(p);
  const total = plan.layers.length + 1;
  const limit = pLimit(ctx.concurrency ?? availableParallelism());

  const storeMaker = (paths: string[]): LayerMaker => {
    const entries = () => storeLayerEntries(paths, fsPathOf, store.storeDir);
    const inWorker = (blobRoot: string | undefined) => {
      if (!layerPool?.hasFreeWorker) return undefined;
      let fsPaths: string[];
      try {
        fsPaths = paths.map(fsPathOf);
      } catch {
        return undefined; // a path the source cannot place: the in-process writer reports it
      }
      const { header, compressor } = writeOptions;
      return layerPool.writeStoreLayer({ paths, fsPaths, storeDir: store.storeDir, header, compressor, ...(blobRoot ? { blobRoot } : {}) }, ctx.signal);
    };
    return {
      key: async () => storeLayerKey(await keyedStorePaths(store, paths), store.storeDir, writeOptions),
      write: (blobs) => inWorker(blobs.root) ?? writeLayer(entries(), writeOptions, blobs),
      measure: () => inWorker(undefined) ?? measureLayer(entries(), writeOptions),
      stream: (expected) => layerStream(entries, streamOptions, expected),
    };
  };
  const entriesMaker = (entries: LayerEntry[]): LayerMaker => ({
    key: () => entriesKey(entries, writeOptions),
    write: (blobs) => writeLayer(entries, writeOptions, blobs),
    measure: () => measureLayer(entries, writeOptions),
    stream: (expected) => layerStream(() => entries, streamOptions, expected),
  });
  const made = async (index: number, reason: string, paths: string[], narSize: number, maker: () => Promise<LayerMaker>): Promise<AssembledLayer> => {
    ctx.signal?.throwIfAborted();
    emit({ phase: 'layer-start', index, total, reason, paths: paths.length, narSize });
    const { layer, origin }: MadeLayer = await cachedLayer(await maker(), cache);
    emit({ phase: 'layer-done', index, total, reason, digest: layer.digest, size: layer.size, origin });
    return { layer, reason, storePaths: paths };
  };

  // Queued biggest first, so that the last layers to start are short and no core idles at the end
  // (the plan puts its biggest layer, the least popular paths, last). Results stay in plan order.
  const storeLayers: Promise<AssembledLayer>[] = [];
  const bySize = plan.layers.map((planned, index) => ({ planned, index })).sort((x, y) => y.planned.narSize - x.planned.narSize || x.index - y.index);
  for (const { planned, index } of bySize) {
    storeLayers[index] = limit(() => made(index, planned.reason, planned.paths, planned.narSize, async () => storeMaker(planned.paths)));
  }
  const customisation = limit(() =>
    made(total - 1, 'customisation', [], 0, async () => {
      let entries = await customisationEntries(spec, fsPathOf);
      if (spec.includeNixDB) {
        // dockerTools' includeNixDB: the closure registered in /nix/var/nix/db, in this layer.
        entries = mergeEntries(spec.file, entries, await nixDbEntries(closure, fsPathOf, { registrationTime: spec.mtime, env: ctx.env ?? {} }));
      }
      return entriesMaker(entries);
    }),
  );
  // Settle every write before failing, so no writer is still streaming into the cache when we
  // return; then end the workers (none is busy), so that a CLI exits by itself.
  const settled = await Promise.allSettled([...storeLayers, customisation]).finally(() => pool?.close());
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const ours = settled.map((r) => (r as PromiseFulfilledResult<AssembledLayer>).value);
  const baseLayers = (base?.layers ?? []).map((l): AssembledLayer => ({ layer: baseLayer(l), reason: 'base', storePaths: [] }));

  const image = assembleImage({
    source: `build of ${spec.file}`,
    layers: [...baseLayers, ...ours],
    name: spec.name,
    tag: spec.tag,
    config: {
      architecture: spec.architecture,
      os: spec.os,
      variant: spec.variant,
      created: spec.created,
      config: base ? mergeConfig(base.config.config, spec.config) : spec.config,
      baseHistory: base ? baseHistory(base, spec.fromImage!) : undefined,
    },
  });
  return { spec, ...(base ? { base } : {}), closure, plan, image };
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
