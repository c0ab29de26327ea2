import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pLimit from 'p-limit';
import type { ClosureGraph, StorePathInfo } from '../../layering/types.js';
import { StoreError } from '../errors.js';
import { cycleError, findCycle, finishGraph } from './closure-graph.js';
import type { PathArchitectures } from './path-architectures.js';
import { cachedScan, scanStorePath, type ScanTargets, type StorePathScan, type StorePathScanJob } from './path-scan.js';
import { SharedValue } from './shared-value.js';
import { ScanCache, targetsDigest } from './scan-cache.js';
import { isStorePathBaseName, normaliseStoreDir, parseStorePath } from './store-path.js';
import type { ClosureOptions, StoreSource } from './types.js';

/**
 * Runs a path's scan elsewhere (a worker thread), or returns undefined to have it run here; set
 * by a build for the length of its closure (DirectoryStoreSource.scanWith).
 */
export type ScanOffload = (job: StorePathScanJob) => Promise<StorePathScan> | undefined;

/** Tells sources of the same directory apart (their listings may differ) in a SharedValue's key. */
let lastSourceId = 0;

export interface DirectoryStoreSourceOptions {
  /** Where scan results are memoised; absent or `false`: not memoised. */
  cacheDir?: string | false;
  /**
   * Store paths in flight at once (default 4). Reads are synchronous (see readNarTree), so on one
   * thread this mostly bounds memory; with scanWith, paths also go to worker threads.
   */
  concurrency?: number;
}

/**
 * A plain directory laid out like a store (`<fsDir>/<hash32>-<name>`), e.g. a store copied into a
 * CI workspace. References are found as Nix finds them: a path references every other entry of
 * the directory (and itself) whose hash part occurs in its NAR serialisation.
 */
export class DirectoryStoreSource implements StoreSource {
  readonly storeDir: string;
  readonly fsDir: string;
  readonly description: string;
  private readonly cache: ScanCache | undefined;
  private readonly concurrency: number;
  private entries: Promise<Map<string, string[]>> | undefined;
  private targets: { hashParts: string[]; digest: () => string; shared: SharedValue<ScanTargets> } | undefined;
  private offload: ScanOffload | undefined;
  private readonly infos = new Map<string, Promise<StorePathInfo>>();
  private readonly contentIds = new Map<string, string>();
  private readonly architectures = new Map<string, PathArchitectures>();
  private readonly absent = new Map<string, string[]>();
  /** Closures in progress: scan records are written in packs until the last ends. */
  private closures = 0;
  /** How many paths were read and scanned, and how many were answered by the scan cache. */
  readonly stats = { scanned: 0, cached: 0 };

  constructor(fsDir: string, storeDir = '/nix/store', options: DirectoryStoreSourceOptions = {}) {
    this.fsDir = resolve(fsDir);
    this.storeDir = normaliseStoreDir(storeDir);
    this.description = `directory ${fsDir} (as ${this.storeDir})`;
    this.cache = options.cacheDir ? new ScanCache(options.cacheDir) : undefined;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
  }

  fsPath(storePath: string): string {
    return join(this.fsDir, parseStorePath(storePath, this.storeDir).baseName);
  }

  /** Hash part → the entry names with that hash part (more than one only in a hand-made store). */
  private listEntries(): Promise<Map<string, string[]>> {
    this.entries ??= (async () => {
      let names: string[];
      try {
        names = await readdir(this.fsDir);
      } catch (e) {
        throw new StoreError(`cannot list the store directory ${this.fsDir}: ${(e as Error).message}`, [this.fsDir]);
      }
      const byHash = new Map<string, string[]>();
      // Other entries (`.links`, lock files, stray files) cannot be referenced, as in a real store.
      for (const name of names.sort()) {
        if (!isStorePathBaseName(name)) continue;
        const h = name.slice(0, 32);
        byHash.set(h, [...(byHash.get(h) ?? []), name]);
      }
      return byHash;
    })();
    return this.entries;
  }

  /** Scans of paths (those their scan record does not answer) go through `offload` while it is set; `undefined` stops it. */
  scanWith(offload: ScanOffload | undefined): void {
    this.offload = offload;
  }

  /** One path's NAR size and references (memoised in memory and, by fingerprint, on disk). */
  pathInfo(storePath: string): Promise<StorePathInfo> {
    let p = this.infos.get(storePath);
    if (!p) {
      p = this.computeInfo(storePath);
      this.infos.set(storePath, p);
    }
    return p;
  }

  /** The path's content id, known from its scan (or its scan record); see StoreSource. */
  async pathContentId(storePath: string): Promise<string> {
    await this.pathInfo(storePath);
    return this.contentIds.get(storePath)!;
  }

  /** The architectures of the path's ELF files, seen by its scan (or kept in its scan record); see StoreSource. */
  async pathArchitectures(storePath: string): Promise<PathArchitectures> {
    await this.pathInfo(storePath);
    return this.architectures.get(storePath)!;
  }

  /**
   * `<storeDir>/<hash>` of each store path the path's files name (`<storeDir>/<hash>-…`) that this
   * directory does not hold, sorted; see StoreSource.absentMentions.
   */
  async absentMentions(storePath: string): Promise<string[]> {
    await this.pathInfo(storePath);
    return this.absent.get(storePath)!;
  }

  private async computeInfo(storePath: string): Promise<StorePathInfo> {
    const sp = parseStorePath(storePath, this.storeDir);
    const entries = await this.listEntries();
    if (!entries.get(sp.hashPart)?.includes(sp.baseName)) {
      throw new StoreError(`${storePath} is not in ${this.description}`, [storePath]);
    }
    const fsPath = join(this.fsDir, sp.baseName);
    // Every entry of the directory is a candidate reference, as every path of a Nix store is.
    this.targets ??= (() => {
      const hashParts = [...entries.keys()];
      let digest: string | undefined;
      // Named by the directory and this source: a worker keeps the hash parts of each it has seen.
      const shared = new SharedValue<ScanTargets>(`scan-targets:${this.fsDir}:${++lastSourceId}`, { hashParts });
      return { hashParts, digest: () => (digest ??= targetsDigest(hashParts)), shared };
    })();
    // A scan record is checked here (a metadata walk, too small to pay a thread round trip); a
    // path that must be read is scanned on a free worker when there is one.
    let scan = await cachedScan(fsPath, entries, this.targets.digest, this.cache, this.storeDir);
    if (!scan) {
      const job: StorePathScanJob = { fsPath, targets: this.targets.shared, keepRecord: this.cache !== undefined, storeDir: this.storeDir };
      const offloaded = this.offload?.(job);
      if (offloaded) scan = await offloaded;
      else {
        scan = await scanStorePath(fsPath, entries, this.targets.digest, this.cache !== undefined, this.storeDir);
        // A scan here is synchronous calls end to end: without a turn of the event loop, the
        // workers' answers (and new jobs for them) would wait until every path queued here is done.
        if (this.offload) await new Promise((resolve) => setImmediate(resolve));
      }
    }
    if (scan.fromCache) this.stats.cached++;
    else this.stats.scanned++;
    if (scan.record) {
      this.cache?.save(scan.record);
      // Within a closure the records go out in packs (flushed at its end); a path asked alone, now.
      if (this.closures === 0) this.cache?.flush();
    }
    this.contentIds.set(storePath, scan.contentId);
    this.architectures.set(storePath, scan.architectures);
    // Store paths the files name that the directory lacks (a hand-made store missing a dependency).
    this.absent.set(storePath, (scan.mentioned ?? []).filter((h) => !entries.has(h)).map((h) => `${this.storeDir}/${h}`));
    const found = scan.found;
    const size = scan.narSize;
    const references = found.map((h) => {
      const names = entries.get(h)!;
      if (names.length > 1) {
        throw new StoreError(
          `${storePath} contains the hash ${h}, which more than one entry of ${this.fsDir} has: ${names.join(', ')}`,
          [storePath, ...names.map((n) => `${this.storeDir}/${n}`)],
          'a store holds one path per hash; remove the stale entries',
        );
      }
      return `${this.storeDir}/${names[0]!}`;
    });
    return { path: storePath, narSize: size, references: references.sort() };
  }

  async closure(roots: string[], options: ClosureOptions = {}): Promise<ClosureGraph> {
    this.closures++;
    try {
      return await this.closureOf(roots, options);
    } finally {
      this.closures -= 1;
      if (this.closures === 0) this.cache?.flush();
    }
  }

  private async closureOf(roots: string[], options: ClosureOptions): Promise<ClosureGraph> {
    for (const root of roots) parseStorePath(root, this.storeDir, 'content path');
    const entries = await this.listEntries();
    for (const root of roots) {
      const sp = parseStorePath(root, this.storeDir);
      if (!entries.get(sp.hashPart)?.includes(sp.baseName)) {
        throw new StoreError(`${root} is not in ${this.description}`, [root], `expected it at ${join(this.fsDir, sp.baseName)}`);
      }
    }
    const limit = pLimit(this.concurrency);
    const seen = new Map<string, StorePathInfo>();
    const onProgress = options.onProgress;
    const started = new Set<string>();
    // A path is scanned as soon as a scanned path is found to reference it (no barrier between
    // levels of the graph, which would leave threads idle behind the slowest path of a level).
    const running: Promise<void>[] = [];
    let failure: { error: unknown } | undefined;
    const visit = (path: string): void => {
      if (started.has(path) || failure) return;
      started.add(path);
      running.push(
        limit(async () => {
          if (failure) return; // the closure has failed: paths still queued are not read
          const info = await this.pathInfo(path);
          seen.set(info.path, info);
          for (const ref of info.references) visit(ref);
          onProgress?.({ done: seen.size, found: started.size });
        }).catch((error: unknown) => {
          failure ??= { error };
        }),
      );
    };
    for (const root of roots) visit(root);
    // `running` grows while it is awaited; every promise in it settles without rejecting.
    for (let i = 0; i < running.length; i++) await running[i];
    if (failure) throw failure.error;
    const cycle = findCycle(seen);
    if (cycle) throw cycleError(cycle);
    return finishGraph(this.storeDir, roots, seen.values());
  }
}
