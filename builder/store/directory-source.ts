import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ClosureGraph, StorePathInfo } from '../../layering/types.js';
import { StoreError } from '../errors.js';
import { closureGraph } from './closure-graph.js';
import { closureDigest, rememberClosureDigest } from './closure-digest.js';
import { ClosureRecords, dirStamp, graphRefIndices, listingDigest, RECORD_BYTES_PER_NODE, type DirStamp, type RecordedClosure } from './closure-record.js';
import { SPLIT_MIN_NODES, startStatThread } from './stat-list-split.js';
import { SCAN_SPLIT_MIN_NODES } from './split-scan.js';
import type { PathArchitectures } from './path-architectures.js';
import { cachedScan, HANDOVER_PATH_MAX, scanStorePath, type ScanTargets, type StorePathScan, type StorePathScanJob } from './path-scan.js';
import { SharedValue } from './shared-value.js';
import { HandoverArena } from './handover-arena.js';
import { handoverNames, handoverValues } from './handover.js';
import { digestValues } from './stat-list.js';
import { ScanCache, targetsDigest, type PathCheck } from './scan-cache.js';
import { isStorePathBaseName, normaliseStoreDir, parseStorePath } from './store-path.js';
import type { ClosureFacts, ClosureOptions, StoreSource } from './types.js';

/**
 * Runs a batch of paths' scans elsewhere (a worker thread), a result per path in order, or
 * returns undefined to have them run here; set by a build for the length of its closure
 * (DirectoryStoreSource.scanWith). `mayWait`: the batch is of many small paths (QUEUE_MIN), so
 * it may wait in a busy thread behind its batch (BuildWorkerPool.runQueued); a batch of bigger
 * ones could leave this thread idle at the closure's end while it waits there.
 */
export type ScanOffload = (job: StorePathScanJob, mayWait: boolean) => Promise<StorePathScan[]> | undefined;

/** Tells sources of the same directory apart (their listings may differ) in a SharedValue's key. */
let lastSourceId = 0;

export interface DirectoryStoreSourceOptions {
  /** Where scan results are memoised; absent or `false`: not memoised. */
  cacheDir?: string | false;
  /**
   * Where whole closures are kept (closure-record.ts), with `cacheDir`: a build of an unchanged
   * store answers its closure from one file and an lstat per entry. Absent or `false`: none.
   */
  closureCacheDir?: string | false;
  /**
   * Unused: paths are read one at a time on this thread (synchronous reads, see readNarTree) and
   * in batches on the threads of scanWith. Kept so that callers passing it still compile.
   */
  concurrency?: number;
  /**
   * While scanWith is set (the build may use threads), a closure record of this many nodes or
   * more (paths' roots and entries) has its lstats shared with a thread (stat-list-split.ts).
   * Default SPLIT_MIN_NODES.
   */
  statThreadFrom?: number;
  /**
   * While scanWith is set, a path found to have more nodes than this is scanned by two threads
   * (split-scan.ts: the same result). Default SCAN_SPLIT_MIN_NODES.
   */
  scanSplitFrom?: number;
  /** Told of a damaged scan or closure record (a line for stderr); the path is scanned again, the closure found path by path. */
  warn?: (message: string) => void;
}

/** What the closure and the layers ask of one path, kept for the life of the source. */
interface PathState {
  info: StorePathInfo;
  contentId: string;
  architectures: PathArchitectures;
  /** `<storeDir>/<hash>` of the store paths its files name that the directory lacks. */
  absent: string[];
  /** What vouches for its scan (its record's check), when there is a scan cache: a closure record keeps it. */
  check?: PathCheck;
  /** Where its hand-over record is (HandoverArena.place), or -1. */
  handover?: number;
}

const NO_ARCHITECTURES: PathArchitectures = Object.freeze({}) as PathArchitectures;
/** A path's check held by its hand-over record (its names and lstat values; closure-record.ts hashes the values). */
const IN_HANDOVER: PathCheck = Object.freeze({ names: [], fingerprint: '' }) as unknown as PathCheck;
const NONE: string[] = Object.freeze([]) as unknown as string[];

/**
 * Paths a worker is given at once: as many as take about BATCH_MS to scan (measured on this
 * thread as it scans), at most BATCH_MAX, at most half of those waiting. A message each way
 * costs the main thread about as much as scanning a tiny path (more on a busy machine, where
 * waking the worker is slow), so batches are large; the last one a worker takes is BATCH_MS of
 * work at most.
 */
const BATCH_MS = 20;
const BATCH_MAX = 256;
/**
 * A batch may wait in a busy thread (ScanOffload's mayWait) when it has at least this many paths,
 * all small so far: the time per path is a guess from the paths scanned before, and a batch of a
 * few paths of a store of big ones (one of them maybe huge) stays out of a queue.
 */
const QUEUE_MIN = 16;

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
  private readonly closureRecords: ClosureRecords | undefined;
  private readonly statThreadFrom: number;
  private readonly scanSplitFrom: number;
  private entries: Promise<Entries> | undefined;
  private targets: { digest: () => string; shared: SharedValue<ScanTargets> } | undefined;
  private offload: ScanOffload | undefined;
  /** Paths known (read, or answered by their scan record), and paths being found out. */
  private readonly known = new Map<string, PathState>();
  private readonly pending = new Map<string, Promise<PathState>>();
  /** Closures in progress: scan records are written in packs until the last ends. */
  private closures = 0;
  /** Milliseconds a path's scan took here, on average (decides the size of a worker's batch). */
  private msPerScan = 0.5;
  /** How many paths were read and scanned, and how many were answered by the scan cache. */
  readonly stats = { scanned: 0, cached: 0 };
  /** The scans' hand-over records (store/handover.ts), while keepHandovers holds them. */
  private handovers: HandoverArena | undefined;

  /**
   * From now on, keeps what each path's scan learned of its files (its listing, small files'
   * bytes, the lstat values of its check) up to `bytes` in all, for the layer writer
   * (handoverOf, handoverJob) and the closure record, until dropHandovers. A build keeps them
   * from its closure to its last layer: nothing is then walked or read twice.
   */
  keepHandovers(bytes: number): void {
    this.handovers ??= new HandoverArena(bytes, this.droppedHandovers);
  }

  /** Buffers of the arenas let go of (HandoverArena's `first`). */
  private droppedHandovers = 0;

  /**
   * Lets go of the hand-over records (a layer made later walks the files again); the checks they
   * held are kept as plain ones, so that a later closure can still be recorded.
   */
  dropHandovers(): void {
    const arena = this.handovers;
    if (!arena) return;
    for (const state of this.known.values()) {
      if (state.check !== IN_HANDOVER) continue;
      const record = state.handover !== undefined && state.handover >= 0 ? arena.record(state.handover) : undefined;
      if (record) state.check = { names: handoverNames(record), fingerprint: digestValues(new Float64Array(Uint8Array.from(handoverValues(record)).buffer)) };
      else delete state.check;
    }
    this.droppedHandovers = arena.end;
    this.handovers = undefined;
  }

  /** The hand-over record of a path scanned since keepHandovers, if it was kept. */
  handoverOf(storePath: string): Uint8Array | undefined {
    const at = this.known.get(storePath)?.handover;
    return at === undefined || at < 0 ? undefined : this.handovers?.record(at);
  }

  /**
   * Whether every path of `paths` has a hand-over record holding all its files' bytes: a layer
   * of them is made from memory alone (no walk, no read), and a build writes it on its own
   * thread rather than copy the records to a worker (bench/README.md, "Reading each path once").
   */
  handoverHoldsAll(paths: readonly string[]): boolean {
    const arena = this.handovers;
    if (!arena) return false;
    for (const p of paths) {
      const at = this.known.get(p)?.handover;
      if (at === undefined || at < 0 || !arena.allInline(at)) return false;
    }
    return true;
  }

  /** The hand-over records of `paths` (in that order) as they cross to a worker: the shared buffers and each one's place (-1: none); undefined when there are none. */
  handoverJob(paths: readonly string[]): { buffers: SharedArrayBuffer[]; at: Float64Array } | undefined {
    const arena = this.handovers;
    if (!arena) return undefined;
    return arena.job(paths.map((p) => this.known.get(p)?.handover ?? -1));
  }

  constructor(fsDir: string, storeDir = '/nix/store', options: DirectoryStoreSourceOptions = {}) {
    this.fsDir = resolve(fsDir);
    this.storeDir = normaliseStoreDir(storeDir);
    this.description = `directory ${fsDir} (as ${this.storeDir})`;
    this.cache = options.cacheDir ? new ScanCache(options.cacheDir, options.warn) : undefined;
    this.closureRecords = options.cacheDir && options.closureCacheDir ? new ClosureRecords(options.closureCacheDir, options.warn) : undefined;
    this.statThreadFrom = options.statThreadFrom ?? SPLIT_MIN_NODES;
    this.scanSplitFrom = options.scanSplitFrom ?? SCAN_SPLIT_MIN_NODES;
  }

  fsPath(storePath: string): string {
    return this.fsPathOfBase(parseStorePath(storePath, this.storeDir).baseName);
  }

  private fsPathOfBase(baseName: string): string {
    return this.fsDir === '/' ? `/${baseName}` : `${this.fsDir}/${baseName}`;
  }

  /** The store's entries, listed once. */
  private listEntries(): Promise<Entries> {
    this.entries ??= (async () => {
      let names: string[];
      // Before the listing: a change after it moves the stamp (a closure record made from this listing then misses).
      const dir = this.closureRecords ? dirStamp(this.fsDir) : undefined;
      try {
        names = await readdir(this.fsDir);
      } catch (e) {
        throw new StoreError(`cannot list the store directory ${this.fsDir}: ${(e as Error).message}`, [this.fsDir]);
      }
      const prefix = this.storeDir === '/' ? '/' : `${this.storeDir}/`;
      const byHash = new Map<string, string>();
      const shared = new Map<string, string[]>();
      const storeNames: string[] = [];
      // Other entries (`.links`, lock files, stray files) cannot be referenced, as in a real store.
      for (const name of names.sort()) {
        if (!isStorePathBaseName(name)) continue;
        storeNames.push(name);
        // One flat string per entry, its hash part a slice of it: a template literal (a rope over
        // the listing's name) and a slice of the name kept both alive, ~100 bytes more a path.
        const path = [prefix, name].join('');
        const h = path.slice(prefix.length, prefix.length + 32);
        const first = byHash.get(h);
        if (first === undefined) byHash.set(h, path);
        else shared.set(h, [...(shared.get(h) ?? [first]), path]);
      }
      // What a closure record was made for: the same entries, or it does not answer.
      return { byHash, shared, prefix, listing: this.closureRecords ? listingDigest(storeNames) : undefined, dir };
    })();
    return this.entries;
  }

  /**
   * Scans of paths (those their scan record does not answer) go through `offload` while it is
   * set; `undefined` stops it. `scansDone` hears each closure's paths once they are all scanned,
   * before its graph is made: a build ends threads it no longer needs there (their heaps and the
   * graph's making set the peak RSS of a closure of many tiny paths).
   */
  scanWith(offload: ScanOffload | undefined, scansDone?: (paths: Iterable<string>) => void): void {
    this.offload = offload;
    this.scansDone = offload ? scansDone : undefined;
  }

  private scansDone: ((paths: Iterable<string>) => void) | undefined;

  // Not async functions: after a closure every path is known, and these are asked for each path
  // of a build (layers, architectures, warnings): a resolved promise each, not two.

  /** One path's NAR size and references (memoised in memory and, by fingerprint, on disk). */
  pathInfo(storePath: string): Promise<StorePathInfo> {
    const known = this.known.get(storePath);
    return known ? Promise.resolve(known.info) : this.state(storePath).then((s) => s.info);
  }

  /** The path's content id, known from its scan (or its scan record); see StoreSource. */
  pathContentId(storePath: string): Promise<string> {
    const known = this.known.get(storePath);
    return known ? Promise.resolve(known.contentId) : this.state(storePath).then((s) => s.contentId);
  }

  /** `pathContentId` of each path, in order: those known (every path of a closure found) without a promise each. */
  async pathContentIds(storePaths: readonly string[]): Promise<string[]> {
    const out: string[] = new Array<string>(storePaths.length);
    for (let i = 0; i < storePaths.length; i++) {
      const p = storePaths[i]!;
      out[i] = this.known.get(p)?.contentId ?? (await this.state(p)).contentId;
    }
    return out;
  }

  /** The architectures of the path's ELF files, seen by its scan (or kept in its scan record); see StoreSource. */
  pathArchitectures(storePath: string): Promise<PathArchitectures> {
    const known = this.known.get(storePath);
    return known ? Promise.resolve(known.architectures) : this.state(storePath).then((s) => s.architectures);
  }

  /**
   * `<storeDir>/<hash>` of each store path the path's files name (`<storeDir>/<hash>-…`) that this
   * directory does not hold, sorted; see StoreSource.absentMentions.
   */
  absentMentions(storePath: string): Promise<string[]> {
    const known = this.known.get(storePath);
    return known ? Promise.resolve(known.absent) : this.state(storePath).then((s) => s.absent);
  }

  private state(storePath: string): Promise<PathState> {
    const known = this.known.get(storePath);
    if (known) return Promise.resolve(known);
    let p = this.pending.get(storePath);
    if (!p) {
      p = (async () => {
        const entries = await this.listEntries();
        const fsPath = this.checkedFsPath(storePath, entries);
        const state = this.take(storePath, this.fromRecord(fsPath, entries) ?? (await this.scanHere(fsPath, entries)), entries);
        // A path asked alone (not within a closure) has its record written now.
        if (this.closures === 0) this.cache?.flush();
        return state;
      })();
      this.pending.set(storePath, p);
      p.finally(() => this.pending.delete(storePath)).catch(() => undefined);
    }
    return p;
  }

  /** Where the path's files are, after checking that the store holds it. */
  private checkedFsPath(storePath: string, entries: Entries, notIn?: (sp: { baseName: string }) => StoreError): string {
    const sp = parseStorePath(storePath, this.storeDir);
    if (entries.byHash.get(sp.hashPart) !== storePath && !entries.shared.get(sp.hashPart)?.includes(storePath)) {
      throw notIn?.(sp) ?? new StoreError(`${storePath} is not in ${this.description}`, [storePath]);
    }
    return this.fsPathOfBase(sp.baseName);
  }

  private targetsOf(entries: Entries): { digest: () => string; shared: SharedValue<ScanTargets> } {
    // Every entry of the directory is a candidate reference, as every path of a Nix store is.
    this.targets ??= (() => {
      const hashParts = [...entries.byHash.keys()];
      let digest: string | undefined;
      // Named by the directory and this source: a worker keeps the hash parts of each it has seen.
      const shared = new SharedValue<ScanTargets>(`scan-targets:${this.fsDir}:${++lastSourceId}`, { hashParts });
      return { digest: () => (digest ??= targetsDigest(hashParts)), shared };
    })();
    return this.targets;
  }

  /** What the path's scan record says, if it still holds (synchronous: an lstat per entry or a metadata walk). */
  private fromRecord(fsPath: string, entries: Entries): StorePathScan | undefined {
    if (!this.cache) return undefined;
    return cachedScan(fsPath, entries.byHash, this.targetsOf(entries).digest, this.cache, this.storeDir);
  }

  /** Reads and scans the path on this thread. */
  private async scanHere(fsPath: string, entries: Entries): Promise<StorePathScan> {
    const t = performance.now();
    const room = this.handovers?.room() ?? 0;
    // A build that may use threads (scanWith set) splits a big path with one.
    const split = this.offload !== undefined ? this.scanSplitFrom : undefined;
    const scan = await scanStorePath(fsPath, entries.byHash, this.targetsOf(entries).digest, this.cache !== undefined, this.storeDir, Math.min(room, HANDOVER_PATH_MAX), split);
    this.msPerScan = 0.9 * this.msPerScan + 0.1 * (performance.now() - t);
    return scan;
  }

  /** Keeps what a scan (or a record) found of the path, saves its record; the path's state. */
  private take(storePath: string, scan: StorePathScan, entries: Entries): PathState {
    if (scan.fromCache) this.stats.cached++;
    else this.stats.scanned++;
    if (scan.record) this.cache?.saveLine(this.fsPathOfBase(storePath.slice(entries.prefix.length)), scan.record);
    // Store paths the files name that the directory lacks (a hand-made store missing a dependency).
    let absent = NONE;
    for (const h of scan.mentioned ?? NONE) {
      if (entries.byHash.has(h)) continue;
      if (absent === NONE) absent = [];
      absent.push(`${this.storeDir}/${h}`);
    }
    // map, not push: an array grown by push keeps room for 17 (~140 bytes a path for the closure's life).
    const references = scan.found.map((h) => {
      const names = entries.shared.get(h);
      if (names) {
        throw new StoreError(
          `${storePath} contains the hash ${h}, which more than one entry of ${this.fsDir} has: ${names.map((n) => n.slice(entries.prefix.length)).join(', ')}`,
          [storePath, ...names.map((n) => `${this.storeDir}/${n.slice(entries.prefix.length)}`)],
          'a store holds one path per hash; remove the stale entries',
        );
      }
      return entries.byHash.get(h)!;
    });
    // Hash parts are distinct and a store path starts with its hash part after the same prefix: sorted by hash is sorted by path.
    references.sort();
    const handover = scan.handover && this.handovers ? this.handovers.place(scan.handover) : -1;
    // A check whose names and lstat values the kept hand-over holds is not kept twice (its names
    // were ~300 bytes a path of heap for the closure's life).
    // (A record holds the check's values exactly when the check has names: path-scan.ts.)
    const check = handover >= 0 && scan.check?.names ? IN_HANDOVER : scan.check;
    const state: PathState = {
      info: { path: storePath, narSize: scan.narSize, references },
      contentId: scan.contentId,
      architectures: Object.keys(scan.architectures).length === 0 ? NO_ARCHITECTURES : scan.architectures,
      absent,
      ...(check ? { check } : {}),
      handover,
    };
    this.known.set(storePath, state);
    return state;
  }

  async closure(roots: string[], options: ClosureOptions = {}): Promise<ClosureGraph> {
    this.closures++;
    try {
      const recorded = await this.recordedClosure(roots, options);
      if (recorded) return recorded;
      const { graph, states } = await this.closureOf(roots, options);
      this.recordClosure(roots, graph, await this.listEntries(), states);
      return graph;
    } finally {
      this.closures -= 1;
      if (this.closures === 0) this.cache?.flush({ release: true });
    }
  }

  /** Closures this source returned → their paths with architectures or absent mentions (closureFacts). */
  private readonly facts = new WeakMap<ClosureGraph, ClosureFacts>();

  /** Notes which of a closure's paths have architectures or absent mentions; `states`: every path's (else nothing is noted). */
  private noteFacts(graph: ClosureGraph, states: Iterable<PathState | undefined>): void {
    const architectures = new Map<string, PathArchitectures>();
    const absent = new Map<string, string[]>();
    for (const state of states) {
      if (!state) return;
      if (state.architectures !== NO_ARCHITECTURES && Object.keys(state.architectures).length > 0) architectures.set(state.info.path, state.architectures);
      if (state.absent.length > 0) absent.set(state.info.path, state.absent);
    }
    this.facts.set(graph, { architectures, absent });
  }

  /** See StoreSource.closureFacts: for a closure this source returned. */
  closureFacts(closure: ClosureGraph): ClosureFacts | undefined {
    return this.facts.get(closure);
  }

  /** The key of a closure record: the roots, sorted and distinct. */
  private static recordRoots(roots: string[]): string[] {
    return [...new Set(roots)].sort();
  }

  /** The closure as its closure record has it, when the record still holds (closure-record.ts); else undefined. */
  private async recordedClosure(roots: string[], options: ClosureOptions): Promise<ClosureGraph | undefined> {
    if (!this.closureRecords) return undefined;
    for (const root of roots) parseStorePath(root, this.storeDir, 'content path');
    const recordRoots = DirectoryStoreSource.recordRoots(roots);
    // A build that may use threads (scanWith set) splits many lstats with one, started before the
    // record is read when the file is large enough to hold that many nodes (see
    // RECORD_BYTES_PER_NODE): it starts while the record is read and its graph made.
    const threadFrom = this.offload !== undefined ? this.statThreadFrom : undefined;
    const early = threadFrom !== undefined && this.closureRecords.bytes(this.fsDir, this.storeDir, recordRoots) >= threadFrom * RECORD_BYTES_PER_NODE ? startStatThread() : undefined;
    let found: RecordedClosure | undefined;
    try {
      const record = this.closureRecords.read(this.fsDir, this.storeDir, recordRoots);
      if (!record) return undefined;
      // The directory's entries: unchanged since the listing the record was made from (its stat),
      // else listed now (as a build without the record would) and compared.
      if (!record.sameDirectory(dirStamp(this.fsDir)) && !record.sameListing((await this.listEntries()).listing)) return undefined;
      found = await record.answer(this.fsDir, this.storeDir, [...new Set(roots)], threadFrom, early);
    } finally {
      early?.stop();
    }
    if (!found) return undefined;
    // Without their checks (the record hashes all paths' lstats as one): a later closure of
    // other roots on this source that takes them in writes no closure record.
    for (const p of found.paths) this.known.set(p.info.path, p);
    this.stats.cached += found.paths.length;
    options.onProgress?.({ done: found.paths.length, found: found.paths.length });
    rememberClosureDigest(found.graph, found.closureDigest as `sha256:${string}`, true);
    this.noteFacts(found.graph, found.paths);
    return found.graph;
  }

  /** Keeps the closure just found in a closure record, when every path of it has its check (a scan cache). */
  private recordClosure(roots: string[], graph: ClosureGraph, entries: Entries, states: (PathState | undefined)[]): void {
    this.noteFacts(graph, states);
    if (!this.closureRecords) return;
    const checked = (path: string, i: number) => {
      const state = states[i];
      if (state?.info.path !== path || !state.check) return undefined;
      const { info, contentId, architectures, absent } = state;
      if (state.check !== IN_HANDOVER) return { info, contentId, architectures, absent, names: state.check.names, fingerprint: state.check.fingerprint };
      // The names and the lstat values the scan hashed into the path's check, from its hand-over: no lstat again.
      const record = state.handover !== undefined && state.handover >= 0 ? this.handovers?.record(state.handover) : undefined;
      return record ? { info, contentId, architectures, absent, names: handoverNames(record), fingerprint: '', values: handoverValues(record) } : undefined;
    };
    if (!states.every((state) => state?.check !== undefined)) return;
    const digest = closureDigest(graph);
    // closureGraph sorts the paths; take() the references (distinct hash parts).
    rememberClosureDigest(graph, digest, true);
    const records = this.closureRecords;
    // Taken now, while the graph's index is kept (the build lets go of it once planned).
    const refs = graphRefIndices(graph);
    if (!refs) return;
    const save = () => records.save(this.fsDir, this.storeDir, DirectoryStoreSource.recordRoots(roots), { listing: entries.listing!, dir: entries.dir }, graph, digest, checked, refs);
    if (this.heldRecords) this.heldRecords.push(save);
    else save();
  }

  /** Closure records waiting for writeHeldClosureRecords, while held. */
  private heldRecords: (() => void)[] | undefined;

  /**
   * Keeps the closure records of the closures found from now on until writeHeldClosureRecords.
   * A build holds them until its layers are written and its workers gone: saving the record of a
   * cold closure of 50,000 paths (every path's check confirmed by its lstats, the record made
   * whole and written) took ~40 MiB of heap for a moment, which at the closure's end came on top
   * of the worker's memory and set the build's peak RSS.
   */
  holdClosureRecords(): void {
    this.heldRecords ??= [];
  }

  /** Writes the closure records held since holdClosureRecords, and holds no more. */
  writeHeldClosureRecords(): void {
    const held = this.heldRecords ?? [];
    this.heldRecords = undefined;
    for (const save of held) save();
  }

  /**
   * The closure, found path by path: a path its scan record answers is done at once (no promise,
   * no turn of the event loop); the others are read here one at a time and, while `offload` takes
   * them, in batches on other threads. No barrier between levels of the graph: a path is read as
   * soon as a path read before is found to reference it.
   */
  private async closureOf(roots: string[], options: ClosureOptions): Promise<{ graph: ClosureGraph; states: (PathState | undefined)[] }> {
    for (const root of roots) parseStorePath(root, this.storeDir, 'content path');
    const entries = await this.listEntries();
    for (const root of roots) {
      this.checkedFsPath(root, entries, (sp) => new StoreError(`${root} is not in ${this.description}`, [root], `expected it at ${join(this.fsDir, sp.baseName)}`));
    }
    const onProgress = options.onProgress;
    const seen = new Map<string, PathState>();
    const started = new Set<string>();
    /** Paths found and not yet looked at; then those that need a scan. */
    const found: string[] = [];
    // First in, first out (`next` is its head): the graph is walked breadth first, so that many
    // paths wait to be scanned at once and a worker gets them in large batches (depth first kept
    // a handful waiting: a message per few paths).
    const toScan: string[] = [];
    let next = 0;
    const done = (state: PathState): void => {
      seen.set(state.info.path, state);
      for (const ref of state.info.references) {
        if (!started.has(ref)) {
          started.add(ref);
          found.push(ref);
        }
      }
      onProgress?.({ done: seen.size, found: started.size });
    };
    for (const root of roots) {
      if (!started.has(root)) {
        started.add(root);
        found.push(root);
      }
    }
    const inflight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    const fail = (error: unknown): void => {
      failure ??= { error };
    };
    /** Everything a record answers, at once; the rest waits in `toScan`. */
    const sortFound = (): void => {
      while (found.length > 0 && !failure) {
        const path = found.pop()!;
        try {
          const known = this.known.get(path);
          if (known) {
            done(known);
            continue;
          }
          const pending = this.pending.get(path);
          if (pending) {
            const p = pending.then(done).catch(fail);
            inflight.add(p);
            void p.finally(() => inflight.delete(p));
            continue;
          }
          const fsPath = this.checkedFsPath(path, entries);
          const scan = this.fromRecord(fsPath, entries);
          if (scan) done(this.take(path, scan, entries));
          else toScan.push(path);
        } catch (error) {
          fail(error);
        }
      }
    };
    /**
     * Batches to other threads while they take them. Also called as a batch's answer comes in:
     * a worker that finished its batch while this thread read a big path was left idle until
     * that read ended (up to a third of the closure's time on the 1 GB bench store).
     */
    const offloadBatches = (): void => {
      while (this.offload && next < toScan.length && !failure) {
        const n = Math.max(1, Math.min(BATCH_MAX, Math.ceil((toScan.length - next) / 2), Math.round(BATCH_MS / Math.max(this.msPerScan, 0.01))));
        const batch = toScan.slice(toScan.length - n);
        const room = this.handovers?.room() ?? 0;
        const job: StorePathScanJob = {
          fsPaths: batch.map((p) => this.fsPathOfBase(p.slice(entries.prefix.length))),
          targets: this.targetsOf(entries).shared,
          keepRecord: this.cache !== undefined,
          storeDir: this.storeDir,
          ...(room > 0 ? { handoverBytes: room } : {}),
          splitFrom: this.scanSplitFrom,
        };
        const offloaded = this.offload(job, n >= QUEUE_MIN && n * this.msPerScan <= BATCH_MS);
        if (!offloaded) break;
        toScan.length -= n;
        const p = offloaded
          .then((scans) => {
            batch.forEach((path, i) => done(this.take(path, scans[i]!, entries)));
            // The paths they reference, and the next batch, at once (this thread may be mid-read).
            sortFound();
            offloadBatches();
          })
          .catch(fail);
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
    };
    let lastTurn = performance.now();
    while (!failure) {
      sortFound();
      if (failure) break;
      if (next === toScan.length) {
        toScan.length = next = 0;
        if (inflight.size === 0) break;
        await Promise.race(inflight);
        continue;
      }
      offloadBatches();
      // One here.
      if (next === toScan.length) continue;
      const path = toScan[next++]!;
      if (next >= 4096 && next * 2 >= toScan.length) toScan.splice(0, next), (next = 0);
      try {
        done(this.take(path, await this.scanHere(this.fsPathOfBase(path.slice(entries.prefix.length)), entries), entries));
      } catch (error) {
        fail(error);
      }
      // Scans here are synchronous calls end to end: the other threads' answers (and new batches
      // for them) wait for a turn of the event loop, given every few milliseconds.
      if (inflight.size > 0 && performance.now() - lastTurn > 2) {
        await new Promise((resolve) => setImmediate(resolve));
        lastTurn = performance.now();
      }
    }
    // Every batch settles before the closure does (a worker's records are saved, or the closure fails).
    while (inflight.size > 0) await Promise.race(inflight);
    if (failure) throw failure.error;
    this.scansDone?.(seen.keys());
    // In the listing's order, which is the paths' (sorted names after one prefix): the graph's
    // sort then only confirms it (n - 1 comparisons; sorting 50,000 paths as found cost ~0.1 s).
    const listed: StorePathInfo[] = [];
    const states: PathState[] = [];
    for (const path of entries.byHash.values()) {
      const state = seen.get(path);
      if (state) listed.push(state.info), states.push(state);
    }
    // (A path of a hash more than one entry has is not in byHash: then as found.)
    if (listed.length !== seen.size) {
      const graph = closureGraph(this.storeDir, roots, [...seen.values()].map((s) => s.info));
      return { graph, states: graph.paths.map((p) => seen.get(p.path)) };
    }
    const graph = closureGraph(this.storeDir, roots, listed);
    // The sort keeps sorted input as it is; the states are each path's in the graph's order.
    return { graph, states: graph.paths.every((p, i) => p === listed[i]) ? states : graph.paths.map((p) => seen.get(p.path)) };
  }
}

/** A directory's store entries: hash part → store path; hash parts more than one entry has → all of their store paths. */
interface Entries {
  byHash: Map<string, string>;
  shared: Map<string, string[]>;
  /** `<storeDir>/`. */
  prefix: string;
  /** With closure records: listingDigest of the store entries, and the directory's stamp from just before they were listed. */
  listing: string | undefined;
  dir: DirStamp | undefined;
}
