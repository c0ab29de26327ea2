import { createHash, hash as oneShotHash } from 'node:crypto';
import { lstatSync, type Stats } from 'node:fs';
import { fastLstatValues, type LstatValues } from './lstat-values.js';

/**
 * The cheap check of a scan record on a small store path: the lstat of the path and of every
 * entry below it, named in the record (`names`), instead of a walk that lists each directory
 * again (fingerprintTree: a `readdir` costs two to three lstats in Node, and a tiny store path
 * has two directories for its one file).
 *
 * Why the names need not be listed again: creating, removing or renaming an entry changes its
 * directory's mtime and ctime (POSIX), which are hashed; a file written, chmod-ed or
 * replaced changes its own mtime or ctime (a symlink cannot be changed in place, only replaced:
 * a new inode and a new ctime, and a new mtime on its directory). So a tree whose every lstat
 * is unchanged has the same names, types, modes, sizes and contents as far as the stat
 * fingerprint could ever tell (both trust timestamps that the file system's clock moves).
 *
 * Hashed, per node in NAR order (the root, then `names`): mode, size, mtimeMs, ctimeMs and inode
 * number as float64 (this machine's byte order: a record is this machine's cache; elsewhere it
 * would only miss). Numbers, not text: formatting two fractional times a node cost more than
 * hashing them. The inode tells a file replaced by another made in the same clock tick (equal
 * sizes and times: `mv` of a copy over it) from the one scanned; the device number is not
 * hashed, as git does not by default: it changes across mounts and reboots where the files do
 * not (btrfs subvolumes, overlayfs, NFS), and every record would then miss. A record is kept only
 * when its ctimes are safely older than its scan (racy.ts): a file rewritten within the tick of
 * its scan keeps every value.
 */

/** Store paths with more entries than this are checked by fingerprintTree (their names would make a large record; a readdir there serves many entries). */
export const STAT_LIST_MAX = 64;

/** Values hashed per node: mode, size, mtimeMs, ctimeMs, ino. */
export const PER_NODE = 5;

/** What a node's values are taken from: an lstat's Stats, or a split scan's values of it. */
export type StatFields = Pick<Stats, 'mode' | 'size' | 'mtimeMs' | 'ctimeMs' | 'ino'>;

/** The PER_NODE values of one node's lstat, from `at` on: the layout every stat-list value array has. */
export function putStatValues(values: Float64Array | number[], at: number, st: StatFields): void {
  values[at] = st.mode;
  values[at + 1] = st.size;
  values[at + 2] = st.mtimeMs;
  values[at + 3] = st.ctimeMs;
  values[at + 4] = st.ino;
}

/** The ctime of the values of `count` nodes from `at` on that is the latest (-Infinity for none): what racy.ts judges. */
export function latestCtime(values: ArrayLike<number>, at: number, count: number): number {
  let latest = -Infinity;
  for (let i = 0, v = at + 3; i < count; i++, v += PER_NODE) if (values[v]! > latest) latest = values[v]!;
  return latest;
}

/** sha256 hex of the values' bytes; Node's one-shot `crypto.hash` where it exists (20.12+): a Hash object per path cost as much as an lstat. */
export function digestValues(values: Float64Array): string {
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return typeof oneShotHash === 'function' ? oneShotHash('sha256', bytes, 'hex') : createHash('sha256').update(bytes).digest('hex');
}

/**
 * The stat-list fingerprint of `fsPath` with the entries `names` (relative, `/`-separated, ASCII),
 * or undefined when one of them cannot be lstat-ed (gone: the tree changed).
 */
export function statListFingerprint(fsPath: string, names: readonly string[]): string | undefined {
  const values = new Float64Array(PER_NODE * (names.length + 1));
  return statListValues(fsPath, names, values, 0) ? digestValues(values) : undefined;
}

/**
 * The values statListFingerprint hashes, put in `values` from `at` on (PER_NODE per node: the
 * root, then `names`); false when one cannot be lstat-ed (the tree changed).
 */
export function statListValues(fsPath: string, names: readonly string[], values: Float64Array, at: number): boolean {
  // Node 20: the values without a Stats object and its four Dates (lstat-values.ts).
  const put = fastLstatValues(fsPath, lstatSync) ?? lstatValues;
  if (!put(fsPath, values, at)) return false;
  for (let i = 0; i < names.length; i++) {
    try {
      if (!put(`${fsPath}/${names[i]}`, values, at + PER_NODE * (i + 1))) return false;
    } catch {
      return false; // ENOTDIR and the like: a directory became a file
    }
  }
  return true;
}

/** LstatValues by `lstatSync`. */
const lstatValues: LstatValues = (path, values, at) => {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return false;
  putStatValues(values, at, st);
  return true;
};

/**
 * Collects, as a scan's walk lstats each node (pre-order, entries sorted: NAR order), the text
 * and the names of a stat-list fingerprint; `names` becomes null past STAT_LIST_MAX entries or
 * at a name that is not printable ASCII (kept as a JSON string, it must come back the same bytes).
 */
export class StatListCollector {
  /** The values hashed (PER_NODE a node), while names are kept. */
  values: number[] = [];
  names: string[] | null = [];

  constructor(private readonly rootLength: number) {}

  /** `path`: the node's full path; `st`: its lstat. */
  add(path: Buffer, st: Stats): void {
    if (this.names === null) return;
    if (path.length > this.rootLength) {
      if (this.names.length >= STAT_LIST_MAX) return this.stop();
      for (let i = this.rootLength + 1; i < path.length; i++) {
        const b = path[i]!;
        if (b < 0x20 || b > 0x7e) return this.stop();
      }
      this.names.push(path.toString('latin1', this.rootLength + 1));
    }
    putStatValues(this.values, this.values.length, st);
  }

  private stop(): void {
    this.names = null;
    this.values = [];
  }

  /** The fingerprint, when names were kept. */
  digest(): string | undefined {
    return this.names === null ? undefined : digestValues(Float64Array.from(this.values));
  }
}
