import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempSibling } from '../fs/atomic-write.js';
import type { ClosureGraph, StorePathInfo } from '../../layering/types.js';
import type { PathArchitectures } from './path-architectures.js';
import { statListFingerprint } from './stat-list.js';
import { fingerprintTree } from './tree-fingerprint.js';

/**
 * A directory store's whole closure of some roots, kept in one file (`<cacheRoot>/closures/`), so
 * that a build of an unchanged store answers its closure with one read and the stat checks, not a
 * record lookup, a JSON.parse and a graph walk per path (at 50,000 paths those were half of a
 * warm build).
 *
 * It holds what the closure found of every path (NAR size, references, content id, ELF
 * architectures, store paths its files name that the directory lacks) and, for each path, the
 * same check its scan record has: the entries' names and their stat-list fingerprint, or the
 * tree's stat fingerprint (stat-list.ts, tree-fingerprint.ts). It answers only when:
 *   - it was made for the same store directory, logical store dir and roots;
 *   - the directory lists exactly the same store entries (an entry added or removed can add or
 *     drop a reference, or a warning of a path the store lacks): the digest of the sorted names;
 *   - every path's check still matches (an lstat of each entry, as a scan record is checked).
 * Anything else, or any doubt (unreadable, another version, a malformed field): the closure is
 * found path by path as without it (the scan records answer the unchanged paths), and a new
 * closure record is written for next time. Nothing here is trusted over the files.
 */

/**
 * 1: first. Also names the scan record version its facts have the meaning of (scan-cache.ts,
 * ScanRecord.v): bump this when a scan finds something else for the same files.
 */
export const CLOSURE_RECORD_VERSION = 'closure-1/scan-5';

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
}

/** The file: columns, one entry per path in the graph's (sorted) order; references as indices. */
interface RecordFile {
  v: typeof CLOSURE_RECORD_VERSION;
  fsDir: string;
  storeDir: string;
  roots: string[];
  /** sha256 hex of the directory's store entries, sorted, one per line (listingDigest). */
  listing: string;
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
  /** Names joined by newlines ("" for none), or null. */
  names: (string | null)[];
  fingerprint: string[];
}

/** What a closure record gives, once its checks passed. */
export interface RecordedClosure {
  graph: ClosureGraph;
  closureDigest: string;
  paths: ClosureRecordPath[];
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
  constructor(readonly dir: string) {}

  private file(fsDir: string, storeDir: string, roots: readonly string[]): string {
    const key = createHash('sha256').update(JSON.stringify([CLOSURE_RECORD_VERSION, fsDir, storeDir, roots])).digest('hex').slice(0, 32);
    return join(this.dir, `${key}.json`);
  }

  /**
   * The closure of `roots` as recorded, if the record was made for this directory, store dir,
   * roots and listing, and every path's files pass their check (an lstat per entry); else
   * undefined. `roots`: sorted, distinct (the record's key); `graphRoots`: the graph's roots, as asked.
   */
  lookup(fsDir: string, storeDir: string, roots: readonly string[], listing: string, graphRoots: string[]): RecordedClosure | undefined {
    let rec: RecordFile;
    try {
      rec = JSON.parse(readFileSync(this.file(fsDir, storeDir, roots), 'utf8')) as RecordFile;
    } catch {
      return undefined; // none yet, or not readable: found path by path
    }
    if (!wellFormed(rec) || rec.fsDir !== fsDir || rec.storeDir !== storeDir || rec.listing !== listing || !sameList(rec.roots, roots)) return undefined;
    const bases = rec.paths === '' ? [] : rec.paths.split('\n');
    const n = bases.length;
    if (rec.narSize.length !== n || rec.refCount.length !== n || rec.contentId.length !== n || rec.names.length !== n || rec.fingerprint.length !== n) return undefined;
    // Every path's check first: nothing is made of a record that does not hold.
    const dirPrefix = fsDir === '/' ? '/' : `${fsDir}/`;
    for (let i = 0; i < n; i++) {
      const fsPath = `${dirPrefix}${bases[i]!}`;
      const names = rec.names[i]!;
      let now: string | undefined;
      try {
        now = names === null ? fingerprintTree(fsPath) : statListFingerprint(fsPath, names === '' ? [] : names.split('\n'));
      } catch {
        return undefined; // unreadable now: the scan says why
      }
      if (now !== rec.fingerprint[i]) return undefined;
    }
    const prefix = storeDir === '/' ? '/' : `${storeDir}/`;
    const storePaths = bases.map((b) => `${prefix}${b}`);
    const infos: StorePathInfo[] = new Array<StorePathInfo>(n);
    const paths: ClosureRecordPath[] = new Array<ClosureRecordPath>(n);
    let r = 0;
    for (let i = 0; i < n; i++) {
      const count = rec.refCount[i]!;
      if (!Number.isSafeInteger(count) || count < 0 || r + count > rec.refs.length) return undefined;
      const references: string[] = new Array<string>(count);
      for (let k = 0; k < count; k++) {
        const j = rec.refs[r++]!;
        const ref = Number.isInteger(j) ? storePaths[j] : undefined;
        if (ref === undefined) return undefined;
        references[k] = ref;
      }
      const info: StorePathInfo = { path: storePaths[i]!, narSize: rec.narSize[i]!, references };
      infos[i] = info;
      const names = rec.names[i]!;
      paths[i] = {
        info,
        contentId: rec.contentId[i]!,
        architectures: rec.architectures[i] ?? NO_ARCHITECTURES,
        absent: rec.absent[i] ?? NONE,
        names: names === null ? null : names === '' ? [] : names.split('\n'),
        fingerprint: rec.fingerprint[i]!,
      };
    }
    if (r !== rec.refs.length) return undefined;
    return { graph: { storeDir, roots: graphRoots, paths: infos }, closureDigest: rec.closureDigest, paths };
  }

  /**
   * Records the closure `graph` (paths sorted, as closureGraph makes them) with what was found of
   * each path; a path without its check (`paths.get` gives none) means no record. Written to a
   * temp name and renamed; a failure leaves no record (the closure is found path by path next time).
   */
  save(fsDir: string, storeDir: string, roots: readonly string[], listing: string, graph: ClosureGraph, closureDigest: string, pathOf: (storePath: string) => ClosureRecordPath | undefined): void {
    const n = graph.paths.length;
    const index = new Map<string, number>();
    graph.paths.forEach((p, i) => index.set(p.path, i));
    const prefixLength = storeDir === '/' ? 1 : storeDir.length + 1;
    const rec: RecordFile = {
      v: CLOSURE_RECORD_VERSION,
      fsDir,
      storeDir,
      roots: [...roots],
      listing,
      closureDigest,
      paths: graph.paths.map((p) => p.path.slice(prefixLength)).join('\n'),
      narSize: new Array<number>(n),
      refCount: new Array<number>(n),
      refs: [],
      contentId: new Array<string>(n),
      architectures: {},
      absent: {},
      names: new Array<string | null>(n),
      fingerprint: new Array<string>(n),
    };
    for (let i = 0; i < n; i++) {
      const info = graph.paths[i]!;
      const p = pathOf(info.path);
      if (!p) return;
      rec.narSize[i] = info.narSize;
      rec.refCount[i] = info.references.length;
      for (const ref of info.references) {
        const j = index.get(ref);
        if (j === undefined) return; // not a closure: nothing to record
        rec.refs.push(j);
      }
      rec.contentId[i] = p.contentId;
      if (Object.keys(p.architectures).length > 0) rec.architectures[i] = p.architectures;
      if (p.absent.length > 0) rec.absent[i] = [...p.absent];
      rec.names[i] = p.names === null ? null : p.names.join('\n');
      rec.fingerprint[i] = p.fingerprint;
    }
    const file = this.file(fsDir, storeDir, roots);
    const temp = tempSibling(file);
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(temp, JSON.stringify(rec));
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
    isStringList(rec.fingerprint)
  );
}
