import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tempSibling } from '../fs/atomic-write.js';
import { hasSealShape, isSealedBytes, sealField } from './sealed-json.js';
import type { ClosureGraph, StorePathInfo } from '../../layering/types.js';
import { keptIndexedGraph } from '../../layering/graph.js';
import type { PathArchitectures } from './path-architectures.js';
import { digestValues, PER_NODE, statListValues } from './stat-list.js';
import { fingerprintTree } from './tree-fingerprint.js';
import { CHUNK_PATHS, statListsValues, type StatThread } from './stat-list-split.js';

/**
 * A directory store's whole closure of some roots, kept in one file (`<cacheRoot>/closures/`), so
 * that a build of an unchanged store answers its closure with one read and the stat checks, not a
 * record lookup, a JSON.parse and a graph walk per path (at 50,000 paths those were half of a
 * warm build).
 *
 * It holds what the closure found of every path (NAR size, references, content id, ELF
 * architectures, store paths its files name that the directory lacks) and, for each path, the
 * same check its scan record has: the entries' names, whose lstats are hashed (stat-list.ts), or
 * the tree's stat fingerprint (tree-fingerprint.ts). The lstat values of all the paths are
 * hashed as one (a hash and its hex per path cost as much as a third of the lstats); when the
 * record is made, each path's part is checked against its scan record's fingerprint first, so
 * the values hashed are those that vouched for its scan. It answers only when:
 *   - it was made for the same store directory, logical store dir and roots;
 *   - the directory lists exactly the same store entries (an entry added or removed can add or
 *     drop a reference, or a warning of a path the store lacks): the digest of the sorted names,
 *     or, without listing them, the directory's own stat (device, inode, mtime, ctime: adding,
 *     removing or renaming an entry moves its mtime and ctime) when it is what it was just
 *     before the listing. That stat is trusted only when the directory had not changed for
 *     2 s (RACY_NS) before the listing, by this machine's clock: a change within the same tick
 *     of a coarse clock could leave both times as they were (git's "racy" entries), so a
 *     directory changed just before a build is listed by every build until its closure record
 *     is made again;
 *   - every path's lstats (or tree fingerprint) are still those (an lstat of each entry, as a
 *     scan record is checked).
 * Anything else, or any doubt (unreadable, another version, a malformed field, paths out of
 * order): the closure is found path by path as without it (the scan records answer the
 * unchanged paths), and a new closure record is written for next time. Like the scan records,
 * it trusts the file system's timestamps and inode numbers; a path whose files changed within a
 * clock tick of its scan has no check (racy.ts), and then no closure record is written.
 */

/**
 * closure-5 (1: per-path fingerprints; 2: one hash of all lstats; 3: the directory's stat; 4: the
 * file ends with its checksum, sealed-json.ts: a file that does not match it is damaged and not
 * used, and one without it, of an older version, is never read; 5: the lstat values hashed and
 * the tree fingerprints hold inode numbers, and a path's check is one its scan could vouch for,
 * racy.ts).
 * Also names the scan record version whose facts it keeps (scan-cache.ts, ScanRecord.v): bump
 * it with that version, or whenever a scan finds something else for the same files.
 */
export const CLOSURE_RECORD_VERSION = 'closure-5/scan-7';

/** What the closure found of one path, and how to see that its files are unchanged. */
export interface ClosureRecordPath {
  info: StorePathInfo;
  contentId: string;
  architectures: PathArchitectures;
  /** `<storeDir>/<hash>` of store paths its files name that the directory lacks. */
  absent: string[];
  /** Entries below the path (stat-list.ts), or null: `fingerprint` is fingerprintTree's. */
  names: string[] | null;
  fingerprint: string;
  /**
   * With names: the lstat values its scan hashed into `fingerprint` (stat-list.ts; the bytes of
   * its float64s), when the scan handed them over (store/handover.ts): the record hashes them
   * instead of lstat-ing the entries again.
   */
  values?: Uint8Array;
}

/** The file: columns, one entry per path in the graph's (sorted) order; references as indices. */
interface RecordFile {
  v: typeof CLOSURE_RECORD_VERSION;
  fsDir: string;
  storeDir: string;
  roots: string[];
  /** sha256 hex of the directory's store entries, sorted, one per line (listingDigest). */
  listing: string;
  /** The directory's stamp (dirStamp) taken just before it was listed, or null when it was racy. */
  dir: string | null;
  /** The closure's digest (closureDigest of the graph as made), to spare its recomputation. */
  closureDigest: string;
  /** Base names, one per line. */
  paths: string;
  narSize: number[];
  /** How many references each path has, then all of them as indices into `paths`. */
  refCount: number[];
  refs: number[];
  contentId: string[];
  /** Only the paths that have some: index → value. */
  architectures: Record<string, PathArchitectures>;
  absent: Record<string, string[]>;
  /** Names joined by newlines ("" for none), or null: the path is checked by its tree's fingerprint. */
  names: (string | null)[];
  /** The tree fingerprints of the paths whose names are null: index → fingerprint. */
  trees: Record<string, string>;
  /** sha256 hex of the stat-list values (statListValues) of every path with names, in order. */
  stats: string;
}

/** What a closure record gives of a path, once its checks passed. */
export type RecordedPath = Omit<ClosureRecordPath, 'names' | 'fingerprint'>;

/** What a closure record gives, once its checks passed. */
export interface RecordedClosure {
  graph: ClosureGraph;
  closureDigest: string;
  paths: RecordedPath[];
}

/**
 * Bytes of a closure record file per node it checks, for deciding from the file's size alone
 * whether it will have a stat thread (its thread is then started before it is read): a record
 * of tiny paths holds ~50 bytes a node (a path's name, content id, references, the names of its
 * two or three nodes); one of paths with many entries holds fewer, and its thread starts once
 * the record is read, as it did before.
 */
export const RECORD_BYTES_PER_NODE = 32;

/** Values of this many nodes are hashed at once. */
const CHUNK_NODES = 4096;

/**
 * The one sha256 of the stat-list values of many paths: `add` lstats a path's entries into a
 * chunk and gives where its values are (to check them alone), or false when one is gone.
 */
class StatsDigest {
  private readonly hash = createHash('sha256');
  private values = new Float64Array(PER_NODE * CHUNK_NODES);
  private at = 0;

  add(fsPath: string, names: readonly string[]): Float64Array | false {
    const need = PER_NODE * (names.length + 1);
    if (this.at + need > this.values.length) {
      this.flush();
      if (need > this.values.length) this.values = new Float64Array(need);
    }
    if (!statListValues(fsPath, names, this.values, this.at)) return false;
    const mine = this.values.subarray(this.at, this.at + need);
    this.at += need;
    return mine;
  }

  /** Adds values already taken (the bytes of PER_NODE float64s a node): a path's from its scan, or a stat thread's share. */
  addValues(bytes: Uint8Array): void {
    const need = bytes.length / 8;
    if (this.at + need > this.values.length) {
      this.flush();
      // More than a chunk (a thread's share): hashed as they are, in the same order.
      if (need > this.values.length) {
        this.hash.update(bytes);
        return;
      }
    }
    new Uint8Array(this.values.buffer, this.at * 8, bytes.length).set(bytes);
    this.at += need;
  }

  private flush(): void {
    this.hash.update(new Uint8Array(this.values.buffer, 0, this.at * 8));
    this.at = 0;
  }

  digest(): string {
    this.flush();
    return this.hash.digest('hex');
  }
}

/** A directory's stat, taken before it is listed: what a closure record's `dir` can be. */
export interface DirStamp {
  stamp: string;
  /** Whether it changed less than RACY_NS ago: a change within a clock tick could leave it as it is. */
  racy: boolean;
}

/** A directory that changed less than this before it was listed is listed again by every build (see the top). */
const RACY_NS = 2000n * 1000000n;

/** The stat of the directory `dir` (followed, as `readdir` follows it), or undefined when it cannot be had. */
export function dirStamp(dir: string): DirStamp | undefined {
  let st;
  try {
    st = statSync(dir, { bigint: true });
  } catch {
    return undefined; // the listing says why
  }
  const latest = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
  return { stamp: `${st.dev}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}`, racy: BigInt(Date.now()) * 1000000n - latest < RACY_NS };
}

/** sha256 hex of a directory's store entries (base names), sorted: what the closure record's `listing` is. */
export function listingDigest(sortedNames: readonly string[]): string {
  const h = createHash('sha256');
  // In pieces: one string of every name would be a copy of the listing.
  let text = '';
  for (const name of sortedNames) {
    text += `${name}\n`;
    if (text.length >= 1 << 16) {
      h.update(text);
      text = '';
    }
  }
  return h.update(text).digest('hex');
}

export class ClosureRecords {
  /** `onDamaged`: told of a record file whose checksum does not match, with a line for stderr (the closure is then found path by path). */
  constructor(
    readonly dir: string,
    private readonly onDamaged?: (message: string) => void,
  ) {}

  private file(fsDir: string, storeDir: string, roots: readonly string[]): string {
    const key = createHash('sha256').update(JSON.stringify([CLOSURE_RECORD_VERSION, fsDir, storeDir, roots])).digest('hex').slice(0, 32);
    return join(this.dir, `${key}.json`);
  }

  /** The size in bytes of the closure record of `roots` (as `read` takes them), or 0 when there is none. */
  bytes(fsDir: string, storeDir: string, roots: readonly string[]): number {
    try {
      return statSync(this.file(fsDir, storeDir, roots)).size;
    } catch {
      return 0;
    }
  }

  /**
   * The closure record of `roots` in the directory, if there is one of this form; `roots`:
   * sorted, distinct (the record's key). Nothing is checked against the files yet.
   */
  read(fsDir: string, storeDir: string, roots: readonly string[]): ClosureRecord | undefined {
    const file = this.file(fsDir, storeDir, roots);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch {
      return undefined; // none yet, or not readable: found path by path
    }
    if (!isSealedBytes(bytes)) {
      this.onDamaged?.(`cache: ${file} is a damaged closure record (its checksum does not match); found the closure path by path and wrote it again`);
      return undefined;
    }
    let rec: RecordFile;
    try {
      rec = JSON.parse(bytes.toString('utf8')) as RecordFile;
    } catch {
      return undefined;
    }
    if (!wellFormed(rec) || rec.fsDir !== fsDir || rec.storeDir !== storeDir || !sameList(rec.roots, roots)) return undefined;
    return new ClosureRecord(rec);
  }

  /**
   * Records the closure `graph` (paths sorted, as closureGraph makes them) with what was found of
   * each path (`pathOf` is given its path and its index in the graph); a path without its check
   * (`pathOf` gives none), or whose files' lstats no longer
   * give its check's fingerprint (changed since its scan), means no record. Written to a temp
   * name and renamed; a failure leaves no record (the closure is found path by path next time).
   */
  save(
    fsDir: string,
    storeDir: string,
    roots: readonly string[],
    listed: { listing: string; dir: DirStamp | undefined },
    graph: ClosureGraph,
    closureDigest: string,
    pathOf: (storePath: string, i: number) => ClosureRecordPath | undefined,
    refs?: Int32Array,
  ): void {
    const n = graph.paths.length;
    // The references as indices, from the graph's kept index (refIndices) when there is one.
    const refIndices = refs ?? graphRefIndices(graph);
    if (!refIndices) return; // not a closure: nothing to record
    const prefixLength = storeDir === '/' ? 1 : storeDir.length + 1;
    const rec: RecordFile = {
      v: CLOSURE_RECORD_VERSION,
      fsDir,
      storeDir,
      roots: [...roots],
      listing: listed.listing,
      dir: listed.dir && !listed.dir.racy ? listed.dir.stamp : null,
      closureDigest,
      paths: graph.paths.map((p) => p.path.slice(prefixLength)).join('\n'),
      narSize: new Array<number>(n),
      refCount: new Array<number>(n),
      refs: [],
      contentId: new Array<string>(n),
      architectures: {},
      absent: {},
      names: new Array<string | null>(n),
      trees: {},
      stats: '',
    };
    const dirPrefix = fsDir === '/' ? '/' : `${fsDir}/`;
    const stats = new StatsDigest();
    for (let i = 0; i < n; i++) {
      const info = graph.paths[i]!;
      const p = pathOf(info.path, i);
      if (!p) return;
      rec.narSize[i] = info.narSize;
      rec.refCount[i] = info.references.length;
      rec.contentId[i] = p.contentId;
      if (hasKeys(p.architectures)) rec.architectures[i] = p.architectures;
      if (p.absent.length > 0) rec.absent[i] = [...p.absent];
      rec.names[i] = p.names === null ? null : p.names.join('\n');
      if (p.names === null) rec.trees[i] = p.fingerprint;
      else if (p.values && p.values.length === 8 * PER_NODE * (p.names.length + 1)) {
        // The values that vouched for the path's scan, as its scan took them: hashed as they are
        // (an entry changed since makes the next build's lstats differ, and the record miss,
        // as a record whose lstats are taken now would not be written).
        stats.addValues(p.values);
      } else {
        // The values hashed now must be those that vouched for the path's scan.
        let values: Float64Array | false;
        try {
          values = stats.add(`${dirPrefix}${info.path.slice(prefixLength)}`, p.names);
        } catch {
          return;
        }
        if (!values || digestValues(values) !== p.fingerprint) return;
      }
    }
    rec.stats = stats.digest();
    rec.refs = Array.from(refIndices);
    const file = this.file(fsDir, storeDir, roots);
    const temp = tempSibling(file);
    try {
      mkdirSync(this.dir, { recursive: true });
      const fd = openSync(temp, 'w');
      try {
        // In pieces: JSON.stringify of the whole (7.8 MB at 50,000 paths) and the bytes
        // writeFileSync made of it came on top of the build's heap at its end.
        // Ends with its checksum (sealed-json.ts): the sha256 of the text before it, hashed as written.
        const sum = createHash('sha256');
        let text = '';
        const flush = () => {
          sum.update(text);
          writeSync(fd, text);
          text = '';
        };
        // The last piece is the object's closing `}`: the checksum field closes it instead.
        let last: string | undefined;
        for (const piece of recordJsonPieces(rec)) {
          if (last !== undefined) text += last;
          last = piece;
          if (text.length >= 1 << 16) flush();
        }
        flush();
        writeSync(fd, sealField(sum.digest('hex')));
      } finally {
        closeSync(fd);
      }
      renameSync(temp, file);
    } catch {
      try {
        unlinkSync(temp);
      } catch {
        // never made
      }
    }
  }
}

/** Text JSON.stringify leaves as it is, but for newlines: printable ASCII except `"` and `\\`. */
const PLAIN_LINES = /^[\n\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Items of an array written at once (a piece) by recordJsonPieces. */
const PIECE_ITEMS = 4096;

/**
 * `JSON.stringify(rec)` in pieces, the same characters: a field at a time, its big arrays a
 * slice at a time, a long string of lines (`paths`) a line at a time.
 */
export function* recordJsonPieces(rec: object): Generator<string> {
  let first = true;
  for (const [key, value] of Object.entries(rec)) {
    if (value === undefined) continue; // as JSON.stringify leaves it out
    yield `${first ? '{' : ','}${JSON.stringify(key)}:`;
    first = false;
    if (typeof value === 'string' && value.length > PIECE_ITEMS) yield* linesJson(value);
    else if (Array.isArray(value) && value.length > PIECE_ITEMS) {
      for (let i = 0; i < value.length; i += PIECE_ITEMS) {
        const json = JSON.stringify(value.slice(i, i + PIECE_ITEMS));
        yield (i === 0 ? '[' : ',') + json.slice(1, -1);
      }
      yield ']';
    } else yield JSON.stringify(value);
  }
  yield first ? '{}' : '}';
}

/**
 * `JSON.stringify(text)` a line at a time: JSON escapes each character on its own, so the
 * escaped lines joined by an escaped newline are the escaped text (no surrogate pair spans a
 * newline).
 */
function* linesJson(text: string): Generator<string> {
  if (PLAIN_LINES.test(text)) {
    // Nothing to escape but the newlines (store path names): a piece at a time, no line apart.
    yield '"';
    for (let at = 0; at < text.length; at += 1 << 16) yield text.slice(at, at + (1 << 16)).replaceAll('\n', '\\n');
    yield '"';
    return;
  }
  yield '"';
  let piece = '';
  for (let at = 0; at <= text.length; ) {
    let nl = text.indexOf('\n', at);
    if (nl === -1) nl = text.length;
    piece += JSON.stringify(text.slice(at, nl)).slice(1, -1);
    if (nl < text.length) piece += '\\n';
    at = nl + 1;
    if (piece.length >= 1 << 16) {
      yield piece;
      piece = '';
    }
  }
  yield `${piece}"`;
}

/** A closure record read, not yet checked against the directory. */
export class ClosureRecord {
  constructor(private readonly rec: RecordFile) {}

  /** Whether the directory is as it was listed for the record: its stamp taken now is the one then, which was not racy. */
  sameDirectory(now: DirStamp | undefined): boolean {
    return now !== undefined && this.rec.dir !== null && now.stamp === this.rec.dir;
  }

  /** Whether the directory's store entries, listed now (listingDigest), are those the record was made for. */
  sameListing(listing: string | undefined): boolean {
    return listing === this.rec.listing;
  }

  /**
   * The closure as recorded, if every path's files pass their check (an lstat per entry); else
   * undefined. The directory's entries must have been found the same first (sameDirectory or
   * sameListing). `graphRoots`: the graph's roots, as asked. `threadFrom`: from this many
   * nodes (paths' roots and entries) on, a stat thread shares the lstats (stat-list-split.ts:
   * the same values, hashed in the same order); undefined: none. `thread`: a stat thread started
   * already (startStatThread), used whatever the count, and stopped.
   */
  async answer(fsDir: string, storeDir: string, graphRoots: string[], threadFrom?: number, thread?: StatThread): Promise<RecordedClosure | undefined> {
    const rec = this.rec;
    const bases = rec.paths === '' ? [] : rec.paths.split('\n');
    const n = bases.length;
    if (rec.narSize.length !== n || rec.refCount.length !== n || rec.contentId.length !== n || rec.names.length !== n) {
      thread?.stop();
      return undefined;
    }
    // Every path's check: nothing is taken from a record that does not hold. The paths with
    // names are lstat-ed by entry (with a stat thread past `threadFrom` nodes: stat-list-split.ts);
    // the others' trees are walked here first, while that thread starts.
    const dirPrefix = fsDir === '/' ? '/' : `${fsDir}/`;
    const namedPaths: string[] = [];
    const namedLists: string[] = [];
    const treeChecked: number[] = [];
    for (let i = 0; i < n; i++) {
      const names = rec.names[i]!;
      if (names === null) treeChecked.push(i);
      else {
        namedPaths.push(bases[i]!);
        namedLists.push(names);
      }
    }
    const trees = (): boolean => {
      for (const i of treeChecked) {
        try {
          if (fingerprintTree(`${dirPrefix}${bases[i]!}`) !== rec.trees[i]) return false;
        } catch {
          return false; // unreadable now: the scan says why
        }
      }
      return true;
    };
    // The graph is made while the stat thread starts too (Node 20 takes ~0.1 s to start one),
    // and used only once every check holds.
    let made: { infos: StorePathInfo[]; paths: RecordedPath[] } | undefined;
    const first = (): boolean => (made = this.graph(bases, storeDir)) !== undefined && trees();
    const values = await statListsValues({ prefix: dirPrefix, paths: namedPaths, names: namedLists, chunk: CHUNK_PATHS }, threadFrom, first, thread);
    if (values === false || made === undefined || digestValues(values) !== rec.stats) return undefined;
    return { graph: { storeDir, roots: graphRoots, paths: made.infos }, closureDigest: rec.closureDigest, paths: made.paths };
  }

  /**
   * The record's paths as a graph of this source is listed (closureGraph): paths sorted,
   * references sorted and distinct; undefined when the record is not so (it is taken for no
   * other: the plan's memo relies on the order).
   */
  private graph(bases: readonly string[], storeDir: string): { infos: StorePathInfo[]; paths: RecordedPath[] } | undefined {
    const rec = this.rec;
    const n = bases.length;
    for (let i = 1; i < n; i++) if (!(bases[i - 1]! < bases[i]!)) return undefined;
    const prefix = storeDir === '/' ? '/' : `${storeDir}/`;
    const storePaths = bases.map((b) => `${prefix}${b}`);
    const infos: StorePathInfo[] = new Array<StorePathInfo>(n);
    const paths: RecordedPath[] = new Array<RecordedPath>(n);
    let r = 0;
    for (let i = 0; i < n; i++) {
      const count = rec.refCount[i]!;
      if (!Number.isSafeInteger(count) || count < 0 || r + count > rec.refs.length) return undefined;
      const references: string[] = new Array<string>(count);
      for (let k = 0, last = -1; k < count; k++) {
        const j = rec.refs[r++]!;
        const ref = Number.isInteger(j) && j > last ? storePaths[j] : undefined;
        if (ref === undefined) return undefined;
        references[k] = ref;
        last = j;
      }
      const info: StorePathInfo = { path: storePaths[i]!, narSize: rec.narSize[i]!, references };
      infos[i] = info;
      paths[i] = { info, contentId: rec.contentId[i]!, architectures: rec.architectures[i] ?? NO_ARCHITECTURES, absent: rec.absent[i] ?? NONE };
    }
    if (r !== rec.refs.length) return undefined;
    return { infos, paths };
  }
}

/**
 * Every path's references as indices into the graph's paths, path after path (the record's
 * `refs`); undefined when one is not in the graph. From the graph's kept index when its source
 * kept one (closure-graph.ts): a row of it is the references in order when it dropped none (no
 * self-reference or repeat), so only the other rows are looked up by path.
 */
export function graphRefIndices(graph: ClosureGraph): Int32Array | undefined {
  const infos = graph.paths;
  const indexed = keptIndexedGraph(infos);
  let total = 0;
  for (const info of infos) total += info.references.length;
  const out = new Int32Array(total);
  let index = indexed?.indexOf;
  let e = 0;
  for (let i = 0; i < infos.length; i++) {
    const references = infos[i]!.references;
    const from = indexed ? indexed.refStart[i]! : 0;
    if (indexed && indexed.refStart[i + 1]! - from === references.length) {
      for (let k = 0; k < references.length; k++) out[e++] = indexed.refList[from + k]!;
      continue;
    }
    if (!index) {
      const made = new Map<string, number>();
      infos.forEach((p, v) => made.set(p.path, v));
      index = made;
    }
    for (const ref of references) {
      const j = index.get(ref);
      if (j === undefined) return undefined;
      out[e++] = j;
    }
  }
  return out;
}

/** Whether the object has an own enumerable key (Object.keys(o).length > 0 without the array). */
function hasKeys(o: object): boolean {
  for (const key in o) if (Object.prototype.hasOwnProperty.call(o, key)) return true;
  return false;
}

const NO_ARCHITECTURES: PathArchitectures = Object.freeze({}) as PathArchitectures;
const NONE: string[] = Object.freeze([]) as unknown as string[];

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const isStringList = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
const isNumberList = (x: unknown): x is number[] => Array.isArray(x) && x.every((s) => typeof s === 'number');
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function wellFormed(rec: RecordFile): boolean {
  return (
    isObject(rec) &&
    rec.v === CLOSURE_RECORD_VERSION &&
    typeof rec.fsDir === 'string' &&
    typeof rec.storeDir === 'string' &&
    isStringList(rec.roots) &&
    typeof rec.listing === 'string' &&
    (rec.dir === null || typeof rec.dir === 'string') &&
    typeof rec.closureDigest === 'string' &&
    typeof rec.paths === 'string' &&
    isNumberList(rec.narSize) &&
    isNumberList(rec.refCount) &&
    isNumberList(rec.refs) &&
    isStringList(rec.contentId) &&
    isObject(rec.architectures) &&
    Object.values(rec.architectures).every((a) => isObject(a) && Object.values(a).every((f) => typeof f === 'string')) &&
    isObject(rec.absent) &&
    Object.values(rec.absent).every(isStringList) &&
    Array.isArray(rec.names) &&
    rec.names.every((s) => s === null || typeof s === 'string') &&
    isObject(rec.trees) &&
    Object.values(rec.trees).every((f) => typeof f === 'string') &&
    typeof rec.stats === 'string'
  );
}

/**
 * What is wrong with a closure record file's bytes (`cache verify`), or undefined when a build can
 * trust it (sealed) or never reads it (another version).
 */
export function closureRecordProblem(bytes: Buffer): string | undefined {
  if (isSealedBytes(bytes)) return undefined;
  const text = bytes.toString('utf8');
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    return 'is not JSON (torn or damaged)';
  }
  if (hasSealShape(text) || (isObject(rec) && rec.v === CLOSURE_RECORD_VERSION)) return 'does not match its checksum (a field was damaged)';
  return undefined;
}
