import { createHash, hash as oneShotHash } from 'node:crypto';
import { lstatSync, type Stats } from 'node:fs';

/**
 * The cheap check of a scan record on a small store path: the lstat of the path and of every
 * entry below it, named in the record (`names`), instead of a walk that lists each directory
 * again (fingerprintTree: a `readdir` costs two to three lstats in Node, and a tiny store path
 * has two directories for its one file).
 *
 * Why the names need not be listed again: creating, removing or renaming an entry changes its
 * directory's mtime and ctime (POSIX), which are in the text hashed; a file written, chmod-ed or
 * replaced changes its own mtime or ctime (a symlink cannot be changed in place, only replaced:
 * a new inode and a new ctime, and a new mtime on its directory). So a tree whose every lstat
 * is unchanged has the same names, types, modes, sizes and contents as far as the stat
 * fingerprint could ever tell (both trust timestamps that the file system's clock moves).
 *
 * Text hashed, per node in NAR order (the root, then `names`): `<mode>:<size>:<mtimeMs>:<ctimeMs>;`.
 */

/** Store paths with more entries than this are checked by fingerprintTree (their names would make a large record; a readdir there serves many entries). */
export const STAT_LIST_MAX = 64;

export function statText(st: Stats): string {
  return `${st.mode}:${st.size}:${st.mtimeMs}:${st.ctimeMs};`;
}

/** sha256 hex of latin1 text; Node's one-shot `crypto.hash` where it exists (20.12+): a Hash object per path cost as much as an lstat. */
export function digestText(text: string): string {
  return typeof oneShotHash === 'function' ? oneShotHash('sha256', text, 'hex') : createHash('sha256').update(text, 'latin1').digest('hex');
}

/**
 * The stat-list fingerprint of `fsPath` with the entries `names` (relative, `/`-separated, ASCII),
 * or undefined when one of them cannot be lstat-ed (gone: the tree changed).
 */
export function statListFingerprint(fsPath: string, names: readonly string[]): string | undefined {
  const root = lstatSync(fsPath, { throwIfNoEntry: false });
  if (!root) return undefined;
  let text = statText(root);
  for (const name of names) {
    let st: Stats | undefined;
    try {
      st = lstatSync(`${fsPath}/${name}`, { throwIfNoEntry: false });
    } catch {
      return undefined; // ENOTDIR and the like: a directory became a file
    }
    if (!st) return undefined;
    text += statText(st);
  }
  return digestText(text);
}

/**
 * Collects, as a scan's walk lstats each node (pre-order, entries sorted: NAR order), the text
 * and the names of a stat-list fingerprint; `names` becomes null past STAT_LIST_MAX entries or
 * at a name that is not printable ASCII (kept as a JSON string, it must come back the same bytes).
 */
export class StatListCollector {
  private text = '';
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
    this.text += statText(st);
  }

  private stop(): void {
    this.names = null;
    this.text = '';
  }

  /** The fingerprint, when names were kept. */
  digest(): string | undefined {
    return this.names === null ? undefined : digestText(this.text);
  }
}
