import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type { ClosureGraph } from '../../layering/types.js';
import { forgetIndexedGraph } from '../../layering/graph.js';
import { SpecError } from '../errors.js';
import { zstdEncoder } from '../layer/zstd.js';
import type { Image } from '../model/image.js';
import type { ResolvedSpec } from '../spec/types.js';
import { DirectoryStoreSource } from '../store/directory-source.js';
import { EmptyStoreSource } from '../store/empty-source.js';
import { openStoreSource } from '../store/open.js';
import type { ClosureOptions, StoreSource } from '../store/types.js';
import { excludeFromClosure } from '../store/exclude.js';
import { throttle } from '../throttle.js';
import { BuildWorkerPool } from '../workers/pool.js';
import { assembleImage, type AssembledLayer } from './assemble.js';
import { baseHistory, baseLayer, mergeConfig } from './base.js';
import type { BuildContext } from './context.js';
import { checkPlan, planImage, type ImagePlan } from './plan.js';
import { makeLayers } from './layers.js';
import { specAndBase } from './architecture.js';
import { manifestAnnotations } from './annotations.js';
import { BUILD_CONTEXT_FIELDS, checkOptions, checkResolvedSpec } from '../arguments.js';

const withAnnotations = (a: Record<string, string> | undefined) => (a ? { annotations: a } : {});

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
  /** The store the closure came from (an SBOM hashes a path the source gave no NAR hash for). */
  store: StoreSource;
}

/** The store a spec names, unless the context gives one. */
export async function specStore(spec: ResolvedSpec, ctx: Pick<BuildContext, 'store' | 'cacheDir' | 'env' | 'signal' | 'warn' | 'storeFetch'> = {}): Promise<StoreSource> {
  if (ctx.store) return ctx.store;
  const { kind, dir, storeDir, storeDirGiven, closureFile, verify, url, publicKeys } = spec.store;
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
    closureCacheDir: ctx.cacheDir ? join(ctx.cacheDir, 'closures') : false,
    ...(ctx.env ? { env: ctx.env } : {}),
    ...(ctx.warn ? { warn: ctx.warn } : {}),
    ...(url !== undefined ? { url } : {}),
    ...(publicKeys !== undefined ? { publicKeys } : {}),
    ...(ctx.signal || ctx.storeFetch ? { fetch: { ...ctx.storeFetch, ...(ctx.signal ? { signal: ctx.signal } : {}) } } : {}),
  });
}

/** Closure of everything the image holds: `contents` and the paths `copyToRoot` links into `/`, less `exclude`. */
export async function specClosure(spec: ResolvedSpec, store: StoreSource, options?: ClosureOptions): Promise<ClosureGraph> {
  const roots = [...new Set([...spec.contents, ...spec.copyToRoot])];
  return excludeFromClosure(await store.closure(roots, options), spec);
}


/** Whether the note on the WebAssembly zstd encoder was given (once per process, not per platform). */
let wasmZstdNoted = false;

/**
 * spec → closure → plan → layers → image. The image's layers come through the cache (a
 * decorator, cache/layer-source.ts): each is written now, taken from the cache, or made as an
 * output reads it. Publishing the image (a layout, an archive, a push) is the caller's next step.
 */
export async function buildImage(given: ResolvedSpec, ctx: BuildContext = {}, options: BuildOptions = {}): Promise<Build> {
  checkResolvedSpec('buildImage', given);
  checkOptions('buildImage', ctx, BUILD_CONTEXT_FIELDS, 'context');
  checkOptions('buildImage', options, { previous: 'array', plan: 'object' });
  // (A Node whose zlib gives other gzip bytes than the reference is refused before the first
  // layer is written: layers.ts.)
  // The same for zstd: picks this thread's encoder (node:zlib, else WebAssembly), or refuses.
  if (given.compressor === 'zstd' && (await zstdEncoder()).name !== 'node:zlib' && !wasmZstdNoted) {
    wasmZstdNoted = true;
    ctx.warn?.(`note: this Node (${process.version}) has no zstd of its own: zstd layers are compressed with libzstd built to WebAssembly (the same bytes, several times slower; Node 22.15 or later is native)`);
  }
  const store = await specStore(given, ctx);
  // A directory store's closure record is written once the layers are, and the workers gone (its
  // moment of heap then adds to nothing else); a failed build writes it too (the closure held).
  const records = store instanceof DirectoryStoreSource ? store : undefined;
  records?.holdClosureRecords();
  // What the scans learn of each path's files is kept for the layer writer and the closure
  // record (store/handover.ts), up to HANDOVER_BYTES, with the source (an output that makes a
  // layer again uses it too).
  records?.keepHandovers(HANDOVER_BYTES);
  const pool = workerPool(ctx);
  let spec: ResolvedSpec;
  let base: Image | undefined;
  let closure: ClosureGraph;
  let plan: ImagePlan;
  try {
    closure = await closureWithWorkers(given, store, pool, ctx);
    // Workers no layer can use are ended now, before planning: their heaps were ~25 MiB of the
    // peak RSS of a cold build of 50,000 tiny paths, the worker idle from here on.
    // (Not asked again when the scans' end closed them: at 50,000 paths the question costs ~40 ms.)
    if (pool && !pool.isClosed && !storeLayersMayUseWorkers(store, closure.paths.map((p) => p.path))) await pool.close();
    ctx.onEvent?.({ phase: 'closure', paths: closure.paths.length, narSize: closure.paths.reduce((s, p) => s + p.narSize, 0) });
    if (ctx.warn) await warnAbsentMentions(store, closure, ctx.warn);
    // The architecture follows the content; the base image is then picked for it.
    ({ spec, base } = await specAndBase(given, store, closure, ctx));
    plan = options.plan ? checkPlan(options.plan.value, options.plan.file, closure, base, spec.maxLayers) : planImage(spec, closure, base, options.previous, ctx.cacheDir);
    // The closure's index, kept by its source for the planner (store/closure-graph.ts), is not
    // needed past the plan: ~4 MB at 50,000 paths, held to the build's end (its peak RSS) otherwise.
    forgetIndexedGraph(closure.paths);
    ctx.onEvent?.({ phase: 'plan', layers: plan.layers.length + 1 });
  } catch (err) {
    await pool?.close();
    records?.writeHeldClosureRecords();
    throw err;
  }
  // One store layer gains nothing from a thread and pays its start-up (unless workers were asked for).
  const layerPool = ctx.workers !== undefined || plan.layers.length > 1 ? pool : undefined;
  // Every layer settles before the workers end (none is busy then), so that a CLI exits by itself.
  const ours = await makeLayers({ spec, store, closure, plan, ctx, pool: layerPool })
    .finally(() => pool?.close())
    .finally(() => records?.writeHeldClosureRecords());
  const baseLayers = (base?.layers ?? []).map((l): AssembledLayer => ({ layer: baseLayer(l), reason: 'base', storePaths: [] }));
  const image = assembleImage({
    source: `build of ${spec.file}`,
    layers: [...baseLayers, ...ours],
    name: spec.name,
    tag: spec.tag,
    ...withAnnotations(manifestAnnotations(spec, base)),
    config: {
      architecture: spec.architecture,
      os: spec.os,
      variant: spec.variant,
      created: spec.created,
      config: base ? mergeConfig(base.config.config, spec.config) : spec.config,
      baseHistory: base ? baseHistory(base, spec.fromImage!) : undefined,
    },
  });
  return { spec, ...(base ? { base } : {}), closure, plan, image, store };
}

/**
 * Whether a store layer of the closure's paths may be written by a worker: not when the store is
 * a directory whose scans handed over every path's files whole (each layer is then written on
 * this thread from memory: layers.ts storeLayerMaker).
 */
export function storeLayersMayUseWorkers(store: StoreSource, paths: Iterable<string>): boolean {
  return !(store instanceof DirectoryStoreSource && store.handoverHoldsAll([...paths]));
}

/**
 * Bytes of hand-over records a build keeps at most (store/handover.ts): 50,000 tiny store paths
 * take ~12 MB, one path of 200,000 tiny files ~17 MB; past it, paths are walked and read again.
 */
const HANDOVER_BYTES = 32 * 1024 * 1024;

/** At most this many absent store paths are named one by one; the rest are counted. */
const ABSENT_NAMED = 10;

/**
 * Warn (not an error: a file may name a store path it never uses) of store paths the closure's
 * files name that the store lacks: a hand-made directory store missing a dependency, which the
 * image will lack too. The store's scan saw them (StoreSource.absentMentions); nothing is read here.
 */
export async function warnAbsentMentions(store: StoreSource, closure: ClosureGraph, warn: (message: string) => void): Promise<void> {
  if (!store.absentMentions) return;
  const lines: string[] = [];
  let count = 0;
  // The few paths that have any, when the source knows them for this closure (no await per path).
  const facts = store.closureFacts?.(closure);
  for (const p of closure.paths) {
    for (const absent of facts ? (facts.absent.get(p.path) ?? []) : await store.absentMentions(p.path)) {
      count++;
      if (lines.length < ABSENT_NAMED) lines.push(`warning: ${p.path} names ${absent}-…, which is not in ${store.description}: the image will not hold it`);
    }
  }
  if (count === 0) return;
  if (count > lines.length) lines.push(`warning: and ${count - lines.length} more store paths named by the closure's files that the store lacks`);
  lines.push('hint: add what is missing to the store (imgbuild store add, or copy it from a Nix store); a path named only in a comment or a build log can be ignored');
  for (const line of lines) warn(line);
}

/**
 * Worker threads for a directory store's scans and the store layers, started when a job needs
 * one. The main thread works too (it is otherwise idle), so one worker fewer than cores: each
 * worker's heap and buffers add to peak RSS (bench/README.md).
 */
function workerPool(ctx: BuildContext): BuildWorkerPool | undefined {
  const cores = availableParallelism();
  let count: number;
  if (ctx.workers === false) count = 0;
  else if (typeof ctx.workers === 'number') count = Math.max(0, Math.floor(ctx.workers));
  else if (ctx.workers === undefined && cores < 2) count = 0;
  else count = Math.max(1, (ctx.concurrency ?? cores) - 1);
  return count > 0 ? new BuildWorkerPool(count, ctx.startedWorker) : undefined;
}

/**
 * `specClosure` as a build takes it: a directory store's paths scanned on worker threads as well
 * as here (`ctx.workers`), the workers ended with it. For `imgbuild closure` and `plan`, which
 * scanned on one thread.
 */
export async function closureOnThreads(spec: ResolvedSpec, store: StoreSource, ctx: BuildContext = {}): Promise<ClosureGraph> {
  const pool = workerPool(ctx);
  try {
    return await closureWithWorkers(spec, store, pool, ctx);
  } finally {
    await pool?.close();
  }
}

/**
 * The closure, with a directory store's paths scanned on the pool's workers as well as here
 * (the same results either way: each path's scan depends only on its files).
 */
async function closureWithWorkers(spec: ResolvedSpec, store: StoreSource, pool: BuildWorkerPool | undefined, ctx: BuildContext): Promise<ClosureGraph> {
  const { signal, onEvent } = ctx;
  // Paths read so far, at most 10 reports a second, the last one always.
  const scanned = onEvent ? throttle((p: { done: number; found: number }) => onEvent({ phase: 'scan', ...p })) : undefined;
  const options: ClosureOptions = scanned ? { onProgress: scanned } : {};
  if (!pool || !(store instanceof DirectoryStoreSource)) return specClosure(spec, store, options).finally(() => scanned?.flush());
  // The workers end as soon as the scans do when no layer can use them (see buildImage).
  store.scanWith(
    (job, mayWait) => (mayWait ? pool.runQueued('scan-store-path', job, signal) : pool.hasFreeWorker ? pool.run('scan-store-path', job, signal) : undefined),
    (paths) => {
      if (!storeLayersMayUseWorkers(store, paths)) void pool.close();
    },
  );
  try {
    return await specClosure(spec, store, options);
  } finally {
    store.scanWith(undefined);
    scanned?.flush();
  }
}
