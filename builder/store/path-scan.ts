import { createHash, hash as oneShotHash, type Hash } from 'node:crypto';
import { contentId, contentIdOf } from './content-id.js';
import { ELF_HEAD_BYTES, ELF_MAGIC, ELF_MIN_SIZE } from './elf.js';
import { readFileSync } from 'node:fs';
import { StoreError } from '../errors.js';
import { draftHandover, type HandoverDraft } from './handover.js';
import { dumpNar, narSize, readNarTree, type FileHeadSink, type NarNode, type NarSink, type NodeVisitor } from './nar.js';
import { SplitExtras } from './split-extras.js';
import { splitReadTree, type SplitTree } from './split-scan.js';
import { ArchitectureCollector, relativeBelow, type PathArchitectures } from './path-architectures.js';
import { RefScanner } from './ref-scanner.js';
import { scanRecordLine, targetsDigest, type PathCheck, type ScanCache, type ScanRecord } from './scan-cache.js';
import { sharedValueOf, type Shareable } from './shared-value.js';
import { latestCtime, PER_NODE, STAT_LIST_MAX, StatListCollector } from './stat-list.js';
import { racyCtime } from './racy.js';
import { treeFingerprint } from './tree-fingerprint.js';

/** What one store path of a directory store holds, as far as the closure needs it. */
export interface StorePathScan {
  narSize: number;
  /** content-id.ts: the NAR's sha256 and special mode bits; the layer cache's key for the path. */
  contentId: string;
  /** path-architectures.ts: the architectures of the path's ELF files, one file each. */
  architectures: PathArchitectures;
  /** Hash parts of the targets found in the path's NAR serialisation, sorted. */
  found: string[];
  /**
   * Hash parts the path's files write as store paths (`<storeDir>/<hash>-`), targets or not,
   * sorted (ref-scanner.ts); null when there were too many to keep.
   */
  mentioned: string[] | null;
  /** Whether a scan record answered (no file content was read). */
  fromCache: boolean;
  /** The record to save of a scan asked to keep one, as JSON (saved by the thread owning the cache: ScanCache.saveLine). */
  record?: string;
  /** With a record (made or found): the check that vouches for it (a closure record keeps it). */
  check?: PathCheck;
  /**
   * What the scan learned of the path's files for the layer writer and the closure record
   * (store/handover.ts), when it was asked for one and the path's fit: a scan on another thread
   * gives views of one SharedArrayBuffer per batch.
   */
  handover?: Uint8Array;
}

/** The hash parts a directory store's scans look for: every entry of the store directory. */
export interface ScanTargets {
  hashParts: string[];
}

/**
 * Store paths to scan, as they cross to a worker thread: a batch (a job per tiny path cost the
 * main thread more in messages than scanning it there), the hash parts to look for (a
 * SharedValue: sent to each worker once, not with every job) and whether to make scan records.
 */
export interface StorePathScanJob {
  fsPaths: string[];
  targets: Shareable<ScanTargets>;
  /** Whether the result carries the scan record to save. */
  keepRecord: boolean;
  /** The logical store dir, whose paths the scan notes when the files name them. */
  storeDir: string;
  /** Bytes of hand-over records (store/handover.ts) the batch may make in all; absent or 0: none. */
  handoverBytes?: number;
  /** A path of more nodes than this is read by two threads (split-scan.ts); absent: on one. */
  splitFrom?: number;
}

/**
 * What an earlier scan of `fsPath` found, if its record's fingerprint still matches the files
 * (an lstat per entry, or a walk of the tree's metadata; no file is read), else undefined.
 * Synchronous: a closure answers a path from its record without a turn of the event loop.
 */
export function cachedScan(
  fsPath: string,
  targets: { has(hashPart: string): boolean },
  digestOfTargets: () => string,
  cache: ScanCache | undefined,
  storeDir: string,
): StorePathScan | undefined {
  const cached = cache?.lookup(fsPath, targets, digestOfTargets, storeDir);
  if (!cached) return undefined;
  return { narSize: cached.narSize, contentId: cached.contentId, architectures: cached.architectures, found: cached.found.sort(), mentioned: cached.mentioned, fromCache: true, check: cached.check };
}

/**
 * sha256 of a NAR given in chunks. A NAR that comes as one small chunk (a small path, most of a
 * store) is hashed in one call at the end, without a Hash object: that chunk is kept (a copy: the
 * dump reuses its buffer) until a second one comes or the digest is asked for.
 */
class NarDigest {
  private hash: Hash | undefined;
  private first: Buffer | undefined;

  update(chunk: Buffer): void {
    if (this.hash === undefined) {
      if (this.first === undefined && chunk.length <= SMALL_NAR && typeof oneShotHash === 'function') {
        this.first = Buffer.from(chunk);
        return;
      }
      this.hash = createHash('sha256');
      if (this.first) this.hash.update(this.first);
      this.first = undefined;
    }
    this.hash.update(chunk);
  }

  hex(): string {
    if (this.hash) return this.hash.digest('hex');
    const data = this.first ?? Buffer.alloc(0);
    return typeof oneShotHash === 'function' ? oneShotHash('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
  }
}

/** NARs up to this size are hashed in one call (NarDigest). */
const SMALL_NAR = 64 * 1024;

/** Thrown by a walk that passed the nodes of a split (scanStorePath): caught there. */
const BIG = Symbol('big');

/** What reads a path's NAR: the reference scanner, the NAR hash, the ELF heads. */
interface NarReaders {
  scanner: RefScanner;
  nar: NarDigest;
  /** Bytes of NAR so far (the NAR's size once it is all read). */
  size: { bytes: number };
  elf: ArchitectureCollector;
  sink: NarSink;
  heads: FileHeadSink;
}

function narReaders(root: Buffer, targets: { has(hashPart: string): boolean }, storeDir: string): NarReaders {
  // Store paths the files name are noted as the scan goes (a look at the first window of each
  // base32 run, nothing more): the build warns of those the store lacks.
  const scanner = new RefScanner(targets, undefined, { storeDir });
  const nar = new NarDigest();
  // ELF headers are looked at as the dump reads each file, so a scan costs no extra read for them.
  const elf = new ArchitectureCollector();
  const heads = { bytes: ELF_HEAD_BYTES, minSize: ELF_MIN_SIZE, magic: ELF_MAGIC, take: (path: Buffer, head: Buffer) => elf.add(head, () => relativeBelow(root, path)) };
  const size = { bytes: 0 };
  const sink = (chunk: Buffer) => {
    scanner.push(chunk);
    nar.update(chunk);
    size.bytes += chunk.length;
  };
  return { scanner, nar, size, elf, sink, heads };
}

/**
 * The path's tree, with `visit` called per node in NAR order, and its NAR read by `readers`:
 * past `splitFrom` nodes the walk stops and splitReadTree reads the path on two threads, giving
 * the NAR as it goes (`split` in the answer); when it cannot (it gives up at anything unexpected),
 * the path is walked again here and read by new readers, whose NAR is still to dump.
 */
async function pathTree(
  root: Buffer,
  visitor: () => NodeVisitor | undefined,
  readers: () => NarReaders,
  splitFrom: number | undefined,
  extras: () => SplitExtras,
  keepTree: boolean,
): Promise<{ tree: NarNode | undefined; readers: NarReaders; split?: SplitTree }> {
  if (splitFrom !== undefined) {
    const visit = visitor();
    let nodes = 0;
    try {
      const tree = await readNarTree(root, (path, st) => {
        if (++nodes > splitFrom) throw BIG;
        visit?.(path, st);
      });
      return { tree, readers: readers() };
    } catch (e) {
      if (e !== BIG) throw e;
    }
    const splitReaders = readers();
    const split = await splitReadTree(root, { sink: splitReaders.sink, heads: splitReaders.heads, extras: extras() }, visitor(), { keepTree });
    if (split) return { tree: split.tree, readers: splitReaders, split };
  }
  return { tree: await readNarTree(root, visitor()), readers: readers() };
}

/**
 * Finds which of `targets` the path at `fsPath` references, the way Nix does (their hash parts
 * in its NAR serialisation), its NAR size, its content id and the architectures of its ELF files,
 * by reading the whole path once; with `keepRecord`, the result carries the scan record to save.
 * With `splitFrom`, a path of more nodes than that is read by this thread and another
 * (split-scan.ts): the same result.
 */
export async function scanStorePath(
  fsPath: string,
  targets: { has(hashPart: string): boolean },
  digestOfTargets: () => string,
  keepRecord: boolean,
  storeDir: string,
  handoverMax = 0,
  splitFrom?: number,
): Promise<StorePathScan> {
  const root = Buffer.from(fsPath);
  // Before the first lstat: a record whose ctimes are not safely older than this is not kept (racy.ts).
  const startMs = keepRecord ? Date.now() : 0;
  // The stat fingerprint of the very tree scanned, which vouches for the record next time: the
  // lstats the walk makes anyway (a small path), else the tree's stat fingerprint. A walk given
  // up for a split starts a new one.
  let stats: StatListCollector | undefined;
  const visitor = (): NodeVisitor | undefined => {
    if (!keepRecord) return undefined;
    const collector = (stats = new StatListCollector(root.length));
    // Past STAT_LIST_MAX entries the collector keeps nothing: a split walk then stops calling it.
    return (path, st) => {
      collector.add(path, st);
      return collector.names !== null;
    };
  };
  // A split makes the record's fingerprint and the hand-over record as its tree comes in
  // (split-extras.ts), not by walks of the whole tree once it is read.
  const splitExtras = () => new SplitExtras({ fingerprint: keepRecord, handover: handoverMax > 0 ? { baseName: baseNameOf(fsPath), maxBytes: handoverMax } : undefined });
  // The tree of objects is kept from a split only when the stat list may keep its names (a tree
  // of at most STAT_LIST_MAX entries: tests split such trees), whose values the record then holds.
  const keepTree = keepRecord && splitFrom !== undefined && splitFrom <= STAT_LIST_MAX;
  const { tree, readers, split } = await pathTree(root, visitor, () => narReaders(root, targets, storeDir), splitFrom, splitExtras, keepTree);
  const { scanner, nar, elf } = readers;
  const extras = split?.extras;
  const values = stats?.names ? stats.values : null;
  // The hand-over's small files are filled in as the dump reads them (no second read); after a
  // split, from what its threads read, in the record its extras made (one without stat values).
  const fromExtras = extras !== undefined && values === null;
  let handover: HandoverDraft | undefined;
  if (handoverMax > 0) handover = fromExtras ? extras.handover() : draftHandover(baseNameOf(fsPath), values, need(tree), handoverMax);
  if (!split) await dumpNar(root, need(tree), readers.sink, readers.heads, handover);
  else if (handover && !fromExtras) fillHandover(handover, split, root, need(tree));
  const found = [...scanner.found].sort();
  const mentioned = scanner.mentioned ? [...scanner.mentioned].sort() : null;
  // A split's NAR went through the sink as it was made: its size is counted, not walked again.
  const size = split ? readers.size.bytes : narSize(need(tree));
  const id = extras ? contentIdOf(nar.hex(), extras.specials) : contentId(nar.hex(), need(tree));
  let record: ScanRecord | undefined;
  // The fingerprint, and the latest ctime among the values it holds: a record it cannot vouch for
  // (a change within a clock tick of the scan would keep every value: racy.ts) is not made.
  let fingerprint: string | undefined;
  if (stats) {
    const seen = { latestCtimeMs: -Infinity };
    if (values) {
      fingerprint = stats.digest()!;
      seen.latestCtimeMs = latestCtime(values, 0, values.length / PER_NODE);
    } else {
      fingerprint = extras?.fingerprint();
      if (fingerprint !== undefined) seen.latestCtimeMs = extras!.latestCtimeMs();
      else fingerprint = treeFingerprint(need(tree), seen);
    }
    if (racyCtime(seen.latestCtimeMs, startMs)) fingerprint = undefined;
  }
  if (stats && fingerprint !== undefined) {
    const names = stats.names;
    const windows = scanner.windows ? [...scanner.windows].sort().join('') : null;
    const mentions = mentioned?.join('') ?? null;
    // Built in this order: the cache finds a record's fsPath at the start of its line.
    record = {
      v: 7,
      fsPath,
      names,
      fingerprint,
      narSize: size,
      contentId: id,
      architectures: elf.found,
      windows,
      // With the windows kept, the record answers for any targets; else for these only.
      ...(windows ? {} : { targetsDigest: digestOfTargets(), found }),
      storeDir,
      mentioned: mentions !== null && mentions === windows ? true : mentions,
    };
  }
  return {
    narSize: size,
    contentId: id,
    architectures: elf.found,
    found,
    mentioned,
    fromCache: false,
    ...(record ? { record: scanRecordLine(record), check: { names: record.names, fingerprint: record.fingerprint } } : {}),
    ...(handover ? { handover: handover.bytes } : {}),
  };
}

/**
 * A split scan's hand-over record filled with its files' bytes: those its threads read (the bytes
 * its NAR had). A record inlines only files of ≤ 16 KiB adding up to ≤ 32 MiB, which the threads'
 * areas (32 MiB each) always hold; a file they did not is read here, checked against its size.
 */
export function fillHandover(handover: HandoverDraft, split: SplitTree, root: Buffer, tree: NarNode): void {
  const missing = new Set<number>();
  handover.slots.forEach((slot, fileNo) => {
    if (slot < 0) return;
    const bytes = split.fileBytes(fileNo);
    if (bytes) handover.bytes.set(bytes, slot);
    else missing.add(fileNo);
  });
  if (missing.size === 0) return;
  let fileNo = 0;
  const file = (node: NarNode & { type: 'regular' }, path: Buffer): void => {
    const n = fileNo++;
    if (!missing.has(n)) return;
    const bytes = readFileSync(path);
    if (bytes.length !== node.size) throw new StoreError(`${path.toString()} changed while it was read (expected ${node.size} bytes, read ${bytes.length}); store paths must not change`, [path.toString()]);
    handover.bytes.set(bytes, handover.slots[n]!);
  };
  // The files in NAR order, with a stack of its own (a path may be ~2,000 directories deep).
  if (tree.type === 'regular') return file(tree, root);
  if (tree.type !== 'directory') return;
  const stack: Array<{ entries: Array<[Buffer, NarNode]>; i: number; path: Buffer }> = [{ entries: tree.entries, i: 0, path: root }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i === top.entries.length) {
      stack.pop();
      continue;
    }
    const [name, child] = top.entries[top.i++]!;
    if (child.type === 'directory') stack.push({ entries: child.entries, i: 0, path: Buffer.concat([top.path, SLASH, name]) });
    else if (child.type === 'regular') file(child, Buffer.concat([top.path, SLASH, name]));
  }
}

const SLASH = Buffer.from('/');

/** The tree, which a scan has unless a split was asked not to make it (then its extras answer). */
function need(tree: NarNode | undefined): NarNode {
  if (!tree) throw new Error('path-scan: a split scan without its tree was asked for it');
  return tree;
}

function baseNameOf(fsPath: string): string {
  return fsPath.slice(fsPath.lastIndexOf('/') + 1);
}

/** A path's hand-over record is made when it is at most this big (a path of 200,000 tiny files: ~17 MB). */
export const HANDOVER_PATH_MAX = 32 * 1024 * 1024;

/** The set and digest of a job's targets, made once per targets object (once per worker). */
const lookups = new WeakMap<ScanTargets, { set: Set<string>; digest: () => string }>();

/** `scanStorePath` of each path of a job that came from another thread, in order; the first failure rejects. */
export async function runStorePathScanJob(job: StorePathScanJob): Promise<StorePathScan[]> {
  const targets = sharedValueOf(job.targets);
  let lookup = lookups.get(targets);
  if (!lookup) {
    let digest: string | undefined;
    lookup = { set: new Set(targets.hashParts), digest: () => (digest ??= targetsDigest(targets.hashParts)) };
    lookups.set(targets, lookup);
  }
  const out: StorePathScan[] = [];
  let budget = job.handoverBytes ?? 0;
  let total = 0;
  for (const fsPath of job.fsPaths) {
    const scan = await scanStorePath(fsPath, lookup.set, lookup.digest, job.keepRecord, job.storeDir, Math.min(budget, HANDOVER_PATH_MAX), job.splitFrom);
    if (scan.handover) {
      budget -= scan.handover.length;
      if (!(scan.handover.buffer instanceof SharedArrayBuffer)) total += scan.handover.length;
    }
    out.push(scan);
  }
  if (total === 0) return out;
  // One shared buffer for the batch's records: the main thread keeps them, and a layer worker
  // reads them, without a copy (nor an ArrayBuffer per path).
  const shared = new Uint8Array(new SharedArrayBuffer(total));
  let at = 0;
  for (const scan of out) {
    if (!scan.handover || scan.handover.buffer instanceof SharedArrayBuffer) continue;
    shared.set(scan.handover, at);
    scan.handover = shared.subarray(at, at + scan.handover.length);
    at += scan.handover.length;
  }
  return out;
}
