import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { settleAll } from '../settle-all.js';
import type { ClosureGraph } from '../../layering/types.js';
import { LayerCache } from '../cache/layer-cache.js';
import { cachedLayer, type LayerMaker, type LayerProgress } from '../cache/layer-source.js';
import { entriesKey, keyedStorePaths, storeLayerKey } from '../cache/layer-key.js';
import { customisationEntries } from '../customisation/entries.js';
import { mergeEntries } from '../customisation/merge.js';
import { layerStream } from '../layer/layer-stream.js';
import { storeLayerNarEntries } from '../layer/nar-entries.js';
import { storeLayerEntries, storeLayerOutline } from '../layer/tree-entries.js';
import { rulesFor, withPerms, withPermsAsync, type PermRule } from '../layer/perms.js';
import type { LayerBlob, LayerEntry, LayerWriteOptions } from '../layer/types.js';
import { BinaryCacheStoreSource } from '../store/binary-cache/source.js';
import { DirectoryStoreSource } from '../store/directory-source.js';
import { measureLayer, writeLayer } from '../layer/write-layer.js';
import { ALLOW_DRIFT_ENV, assertReferenceDeflate, deflateDrift } from '../layer/zlib-guard.js';
import { hasNativeZstd } from '../layer/zstd.js';
import type { ResolvedSpec } from '../spec/types.js';
import { nixDbEntries } from '../customisation/nix-db.js';
import type { StoreSource } from '../store/types.js';
import type { BuildWorkerPool } from '../workers/pool.js';
import type { StoreLayerJob } from '../workers/jobs.js';
import type { AssembledLayer } from './assemble.js';
import type { BuildContext } from './context.js';
import type { ImagePlan } from './plan.js';
import { checkPermRules, nixOwner, storeHeader } from './perms.js';

export interface LayersInput {
  spec: ResolvedSpec;
  store: StoreSource;
  closure: ClosureGraph;
  plan: ImagePlan;
  ctx: BuildContext;
  /** Worker threads for store layers, when the build has them. */
  pool: BuildWorkerPool | undefined;
}

/**
 * The plan's store layers and the customisation layer, each through the cache, in plan order.
 * Every layer settles before this returns or fails, so no writer is still streaming into the
 * cache afterwards.
 */
export async function makeLayers({ spec, store, closure, plan, ctx, pool }: LayersInput): Promise<AssembledLayer[]> {
  const emit = ctx.onEvent ?? (() => {});
  const cache = ctx.cacheDir ? new LayerCache(ctx.cacheDir) : undefined;
  // The deflate guard (zlib-guard.ts) runs before the first byte of a gzip layer is made rather
  // than at the start: a build whose layers all come from the cache deflates nothing and skips
  // its ~50 ms. The cache only ever holds reference bytes under a plain key, since a build
  // allowed to drift checks at once and keys its layers on the drift.
  const gzip = spec.compressor === 'gzip';
  const allowDrift = gzip && ctx.env?.[ALLOW_DRIFT_ENV] === '1';
  const zlibDrift = allowDrift ? deflateDrift() : undefined;
  const guard = (): void => {
    if (gzip) assertReferenceDeflate(ctx.env ?? {}, ctx.warn);
  };
  if (allowDrift) guard(); // its warning, at the start
  const writeOptions: LayerWriteOptions = {
    header: { mtime: spec.mtime, uid: spec.uid, gid: spec.gid, uname: spec.uname, gname: spec.gname },
    compressor: spec.compressor,
    signal: ctx.signal,
    ...(zlibDrift !== undefined ? { zlibDrift } : {}),
  };
  const total = plan.layers.length + 1;
  const made = async (index: number, reason: string, paths: string[], narSize: number, maker: () => Promise<LayerMaker>): Promise<AssembledLayer> => {
    ctx.signal?.throwIfAborted();
    const progress: LayerProgress = {
      ...(ctx.onEvent
        ? {
            start: (action) => emit({ phase: 'layer-start', index, total, reason, paths: paths.length, narSize, action }),
            bytes: (bytes) => emit({ phase: 'layer-progress', index, total, bytes, narSize }),
          }
        : {}),
      ...(ctx.warn ? { repaired: ctx.warn } : {}),
    };
    const { layer, origin, key, blob } = await cachedLayer(guarded(await maker(), guard), cache, progress, ctx.layerHints);
    if (key !== undefined) ctx.layerHints?.note(key, blob, paths);
    emit({ phase: 'layer-done', index, total, reason, digest: layer.digest, size: layer.size, origin });
    return { layer, reason, storePaths: paths };
  };

  // The customisation layer's entries first: they are cheap, and they say which perms rules
  // copyToRoot used, so that a rule matching nothing is refused before any layer is written.
  ctx.signal?.throwIfAborted();
  const fsPathOf = (p: string) => store.fsPath(p);
  const permsMatched = new Set<number>();
  // Checked against the store dir the store has (a Nix store reports its own): nothing may shadow it.
  let customEntries = await customisationEntries(spec, fsPathOf, (i) => permsMatched.add(i), store.storeDir);
  if (spec.includeNixDB) {
    // dockerTools' includeNixDB: the closure registered in /nix/var/nix/db, in this layer.
    const owner = nixOwner(spec);
    const db = await nixDbEntries(closure, fsPathOf, { registrationTime: spec.mtime, ...(ctx.env ? { env: ctx.env as NodeJS.ProcessEnv } : {}) });
    customEntries = mergeEntries(spec.file, customEntries, owner ? db.map((e) => ({ ...e, ...owner })) : db);
  }
  if (spec.perms.length > 0) checkPermRules(spec, closure, fsPathOf, permsMatched);
  const storeOptions: LayerWriteOptions = { ...writeOptions, header: storeHeader(spec, writeOptions.header) };

  const limit = pLimit(ctx.concurrency ?? layersAtOnce(spec.compressor));
  // Queued biggest first, so that the last layers to start are short and no core idles at the end
  // (the plan puts its biggest layer, the least popular paths, last). Results stay in plan order.
  const layers: Promise<AssembledLayer>[] = [];
  const bySize = plan.layers.map((planned, index) => ({ planned, index })).sort((x, y) => y.planned.narSize - x.planned.narSize || x.index - y.index);
  for (const { planned, index } of bySize) {
    layers[index] = limit(() => made(index, planned.reason, planned.paths, planned.narSize, async () => storeLayerMaker(planned.paths, store, storeOptions, pool, spec.perms)));
  }
  layers.push(limit(() => made(total - 1, 'customisation', [], 0, async () => entriesLayerMaker(customEntries, writeOptions))));
  return settleAll(layers);
}

/**
 * Layers written at once by default: one per core (a worker's and the main thread's), and for
 * zstd with node:zlib's encoder one more, on the main thread. Its frames compress on the thread
 * pool, so while a thread waits for a layer's last frames, hashes and commits it, the cores
 * idled at every layer's end (99 of them on the 1 GB bench); a second layer on the main thread
 * fills those gaps (bench/README.md, i19-zstd). The WebAssembly encoder compresses on the
 * writing thread itself, and gzip and none were not measured: one per core.
 */
export function layersAtOnce(compressor: LayerWriteOptions['compressor'], cores = availableParallelism(), nativeZstd = hasNativeZstd()): number {
  return compressor === 'zstd' && nativeZstd ? cores + 1 : cores;
}

/** The maker with `before` run ahead of anything that makes the layer's bytes (not its key). */
function guarded(maker: LayerMaker, before: () => void): LayerMaker {
  return {
    key: () => maker.key(),
    write: async (blobs, onProgress) => {
      before();
      return maker.write(blobs, onProgress);
    },
    measure: async (onProgress) => {
      before();
      return maker.measure(onProgress);
    },
    stream: (expected) => {
      try {
        before();
      } catch (err) {
        return Readable.from(failing(err));
      }
      return maker.stream(expected);
    },
  };
}

async function* failing(err: unknown): AsyncGenerator<Buffer> {
  throw err;
}

/** A layer made by an output after the build is not stopped by the build's signal (a second Ctrl-C is). */
function withoutSignal(options: LayerWriteOptions): LayerWriteOptions {
  const { signal: _, ...rest } = options;
  return rest;
}

/** The writer options with a progress callback, when there is one (it changes no byte). */
function withProgress(options: LayerWriteOptions, onProgress: ((tarBytes: number) => void) | undefined): LayerWriteOptions {
  return onProgress ? { ...options, onProgress } : options;
}

/** The ways to make a store layer: in a worker when one is free, else here. */
export function storeLayerMaker(paths: string[], store: StoreSource, options: LayerWriteOptions, pool?: BuildWorkerPool, allPerms: readonly PermRule[] = []): LayerMaker {
  if (store.narStream) return narLayerMaker(paths, store, store.narStream.bind(store), options, pool, rulesFor(allPerms, paths));
  const fsPathOf = (p: string) => store.fsPath(p);
  // Only the rules for this layer's paths shape its bytes (and its cache key).
  const perms = rulesFor(allPerms, paths);
  // What the directory store's scans learned of the paths' files, when they kept it: not walked again.
  const handoverOf = store instanceof DirectoryStoreSource ? (p: string) => store.handoverOf(p) : undefined;
  const entries = () => withPerms(storeLayerEntries(paths, fsPathOf, store.storeDir, handoverOf), perms);
  const inWorker = (blobRoot: string | undefined, onProgress: ((tarBytes: number) => void) | undefined) => {
    if (!pool?.hasFreeWorker) return undefined;
    // A directory store places every path as `<fsDir>/<base name>`: the directory crosses, not a
    // string per path (each path is still placed here, so that one the source refuses is reported
    // by the in-process writer, as before).
    let where: { fsDir: string } | { fsPaths: string[] };
    let handover: StoreLayerJob['handover'];
    try {
      if (store instanceof DirectoryStoreSource) {
        // Paths whose files the scans handed over whole are written here: from memory, the layer
        // is a copy and a hash, and in a worker it cost more CPU and memory (bench/README.md).
        if (store.handoverHoldsAll(paths)) return undefined;
        for (const p of paths) fsPathOf(p);
        where = { fsDir: store.fsDir };
        // By the paths' sorted order, which the worker makes again (a wrong one is only walked: each record names its path).
        handover = store.handoverJob(storeLayerOutline(paths, store.storeDir).sorted);
      } else where = { fsPaths: paths.map(fsPathOf) };
    } catch {
      return undefined; // a path the source cannot place: the in-process writer reports it
    }
    const { header, compressor } = options;
    return pool.writeStoreLayer({ paths, ...where, storeDir: store.storeDir, header, compressor, ...(blobRoot ? { blobRoot } : {}), ...(perms.length > 0 ? { perms } : {}), ...(handover ? { handover } : {}) }, options.signal, onProgress);
  };
  return {
    key: async () => storeLayerKey(await keyedStorePaths(store, paths), store.storeDir, options, perms),
    write: (blobs, onProgress) => inWorker(blobs.root, onProgress) ?? writeLayer(entries(), withProgress(options, onProgress), blobs),
    measure: (onProgress) => inWorker(undefined, onProgress) ?? measureLayer(entries(), withProgress(options, onProgress)),
    stream: (expected) => layerStream(entries, withoutSignal(options), expected),
  };
}

/**
 * The ways to make a store layer from NARs (a binary cache): on this thread, the NARs streamed
 * through the tar as they arrive (a worker would only relay the bytes).
 */
function narLayerMaker(paths: string[], store: StoreSource, openNar: (storePath: string) => AsyncIterable<Uint8Array>, options: LayerWriteOptions, pool: BuildWorkerPool | undefined, perms: PermRule[]): LayerMaker {
  const entries = () => withPermsAsync(storeLayerNarEntries(paths, openNar, store.storeDir), perms);
  // In a worker when one is free: decompressing, hashing and compressing a layer is a core's work.
  const inWorker = async (blobRoot: string | undefined, onProgress: ((tarBytes: number) => void) | undefined): Promise<LayerBlob | undefined> => {
    if (!pool?.hasFreeWorker || !(store instanceof BinaryCacheStoreSource)) return undefined;
    const nars = await store.narJob(paths);
    if (!pool.hasFreeWorker) return undefined;
    const { header, compressor } = options;
    return pool.run('write-nar-layer', { paths, storeDir: store.storeDir, header, compressor, nars, ...(blobRoot ? { blobRoot } : {}), ...(perms.length > 0 ? { perms } : {}) }, options.signal, onProgress);
  };
  return {
    key: async () => storeLayerKey(await keyedStorePaths(store, paths), store.storeDir, options, perms),
    write: async (blobs, onProgress) => (await inWorker(blobs.root, onProgress)) ?? writeLayer(entries(), withProgress(options, onProgress), blobs),
    measure: async (onProgress) => (await inWorker(undefined, onProgress)) ?? measureLayer(entries(), withProgress(options, onProgress)),
    stream: (expected) => layerStream(entries, withoutSignal(options), expected),
  };
}

/** The ways to make a layer of given entries (the customisation layer). */
export function entriesLayerMaker(entries: LayerEntry[], options: LayerWriteOptions): LayerMaker {
  return {
    key: () => entriesKey(entries, options),
    write: (blobs, onProgress) => writeLayer(entries, withProgress(options, onProgress), blobs),
    measure: (onProgress) => measureLayer(entries, withProgress(options, onProgress)),
    stream: (expected) => layerStream(() => entries, withoutSignal(options), expected),
  };
}
