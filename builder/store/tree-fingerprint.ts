import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync, type Dirent, type Stats } from 'node:fs';
import { StoreError } from '../errors.js';
import type { NarNode } from './nar.js';

/**
 * The stat fingerprint of a store path's tree: a sha256 over names, types, sizes, executable
 * bits, mtimes, ctimes, inode numbers and symlink targets, read without opening a file. Store paths never
 * change, so a different fingerprint means the directory is not a real store and the path must
 * be scanned, and its layer written, again.
 *
 * Two functions give the same digest for the same tree (the scan cache and the layer cache keep
 * digests from either): `treeFingerprint` of a tree already read for a scan, and
 * `fingerprintTree`, which walks the disk itself for a warm build, where no tree is needed.
 *
 * The bytes hashed, in entry order (names sorted by their bytes):
 *   regular file  `r` `x`|`-` <size> `:` <mtimeMs> `:` <ctimeMs> `:` <ino> `;`
 *   symlink       `l` <target length> `:` <target bytes>
 *   directory     `d` <entry count> `(` then per entry <name length> `:` <name bytes> <entry> `)`
 * A change to this format changes every fingerprint, so old records are never reused wrongly;
 * they only miss once. (The inode came in with scan records of version 7: a file replaced by
 * another of the same size and times, made in the same clock tick, was not seen.) Directories
 * and symlinks carry no stat values: their listings and targets are read again at every check.
 *
 * `seen`, when given, gets the latest ctime of the files hashed (racy.ts: a record whose files
 * changed within a tick of its scan is not kept).
 */
export function treeFingerprint(node: NarNode, seen?: { latestCtimeMs: number }): string {
  const out = new FingerprintText();
  // In entry order with a stack of its own, not a call per level (a path may be ~2,000 deep).
  const leaf = (n: NarNode): Array<[Buffer, NarNode]> | undefined => {
    switch (n.type) {
      case 'regular':
        out.regular(n.executable, n.size, n.mtimeMs, n.ctimeMs, n.ino);
        return undefined;
      case 'symlink':
        out.symlink(n.target);
        return undefined;
      case 'directory':
        out.directory(n.entries.length);
        return n.entries;
    }
  };
  const first = leaf(node);
  if (first) {
    const stack: Array<{ entries: Array<[Buffer, NarNode]>; i: number }> = [{ entries: first, i: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.i === top.entries.length) {
        stack.pop();
        out.closeDirectory();
        continue;
      }
      const [name, child] = top.entries[top.i++]!;
      out.name(name);
      const entries = leaf(child);
      if (entries) stack.push({ entries, i: 0 });
    }
  }
  if (seen) seen.latestCtimeMs = out.latestCtimeMs;
  return out.digest();
}

/**
 * `treeFingerprint(readNarTree(fsPath))` without building the tree: directory entries come with
 * their type (`readdir` with file types), so only regular files need an `lstat` (for size, mode,
 * mtime and ctime), symlinks a `readlink`, and directories nothing but their listing. Synchronous
 * calls for the reason given at readNarTree. A directory whose names are all ASCII is walked with
 * string paths; any other is walked with raw bytes, as names are hashed as bytes. `seen`: as
 * treeFingerprint's.
 */
export function fingerprintTree(fsPath: string, seen?: { latestCtimeMs: number }): string {
  const out = new FingerprintText();
  new TreeWalk(out).node(fsPath, lstatOf(fsPath));
  if (seen) seen.latestCtimeMs = out.latestCtimeMs;
  return out.digest();
}

const NON_ASCII = /[^\x00-\x7f]/;

/** A directory being walked: on string paths (every name ASCII) or on bytes. */
type OpenDirectory = { path: string; entries: Dirent[]; bytes?: undefined; i: number } | { path: Buffer; bytes: Buffer[]; i: number };

/**
 * The walk of fingerprintTree, with a stack of the directories open rather than a call per level
 * (a path on disk may be ~2,000 directories deep). A directory's text is written as it is
 * listed, each entry's in order, its `)` once its last entry's is.
 */
class TreeWalk {
  private readonly open: OpenDirectory[] = [];

  constructor(private readonly out: FingerprintText) {}

  /** A node and everything below it. */
  node(path: string | Buffer, st: Stats): void {
    this.leafOrOpen(path, st);
    const out = this.out;
    const open = this.open;
    while (open.length > 0) {
      const top = open[open.length - 1]!;
      if (top.bytes === undefined) {
        if (top.i === top.entries.length) {
          open.pop();
          out.closeDirectory();
          continue;
        }
        const e = top.entries[top.i++]!;
        out.latin1Name(e.name);
        const child = `${top.path}/${e.name}`;
        if (e.isDirectory()) this.directory(child);
        else if (e.isSymbolicLink()) out.symlink(readlinkOf(child));
        // A regular file, or whatever it has become since the listing: its lstat decides.
        else this.leafOrOpen(child, lstatOf(child));
      } else {
        if (top.i === top.bytes.length) {
          open.pop();
          out.closeDirectory();
          continue;
        }
        const name = top.bytes[top.i++]!;
        out.name(name);
        const child = Buffer.concat([top.path, SLASH, name]);
        this.leafOrOpen(child, lstatOf(child));
      }
    }
  }

  /** A file's or symlink's text; a directory is opened (its entries follow). */
  private leafOrOpen(path: string | Buffer, st: Stats): void {
    if (st.isFile()) this.out.regular((st.mode & 0o100) !== 0, st.size, st.mtimeMs, st.ctimeMs, st.ino);
    else if (st.isSymbolicLink()) this.out.symlink(readlinkOf(path));
    else if (st.isDirectory()) this.directory(path);
    else throw notStorable(path);
  }

  /** Lists a directory, writes its start and opens it: on string paths, or on bytes when a name is not ASCII. */
  private directory(path: string | Buffer): void {
    if (typeof path === 'string') {
      let entries;
      try {
        entries = readdirSync(path, { withFileTypes: true });
      } catch (e) {
        throw cannotRead(path, e);
      }
      // A name that is not ASCII could have been decoded lossily, and JavaScript orders strings by
      // UTF-16 units, not bytes: such a directory is walked on raw bytes.
      if (!entries.some((e) => NON_ASCII.test(e.name))) {
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        this.out.directory(entries.length);
        this.open.push({ path, entries, i: 0 });
        return;
      }
      path = Buffer.from(path);
    }
    let names;
    try {
      names = readdirSync(path, { encoding: 'buffer' });
    } catch (e) {
      throw cannotRead(path, e);
    }
    names.sort(Buffer.compare);
    this.out.directory(names.length);
    this.open.push({ path, bytes: names, i: 0 });
  }
}

const SLASH = Buffer.from('/');

function lstatOf(path: string | Buffer): Stats {
  try {
    return lstatSync(path);
  } catch (e) {
    throw cannotRead(path, e);
  }
}

function readlinkOf(path: string | Buffer): Buffer {
  try {
    return readlinkSync(path, { encoding: 'buffer' });
  } catch (e) {
    throw cannotRead(path, e);
  }
}

function cannotRead(path: string | Buffer, e: unknown): StoreError {
  return new StoreError(`cannot read ${path.toString()}: ${(e as Error).message}`, [path.toString()], undefined, { cause: e });
}

function notStorable(path: string | Buffer): StoreError {
  return new StoreError(`${path.toString()} is neither a regular file, a directory nor a symlink; a store path cannot hold it`, [path.toString()]);
}

/** Bytes of text gathered before they are hashed. */
const TEXT_BUFFER = 64 * 1024;

/**
 * The fingerprint's bytes, gathered in a buffer and hashed in large pieces: one hash update per
 * entry cost more than the walk's own string work, and a string of pieces (`+=`) hashed whole
 * cost its flattening (~4% of a 200,000-file scan's scanning thread).
 */
export class FingerprintText {
  private readonly hash = createHash('sha256');
  private readonly buf = Buffer.allocUnsafe(TEXT_BUFFER);
  private at = 0;
  /**
   * The last mtime and ctime written and their text: files made together share their times (a
   * coarse clock; a Nix store's mtime is 1), and a number's shortest text is the costly part of
   * an entry (~0.1 s of a 200,000-file scan).
   */
  private mtimeMs = NaN;
  private mtimeText = '';
  private ctimeMs = NaN;
  private ctimeText = '';
  /** The latest ctime of the files written (-Infinity before the first): racy.ts judges it. */
  latestCtimeMs = -Infinity;

  /** Text of one byte a char (ASCII, or a name decoded as latin1). */
  text(s: string): void {
    const n = s.length;
    if (this.at + n > TEXT_BUFFER) {
      this.flush();
      if (n > TEXT_BUFFER) return void this.hash.update(s, 'latin1');
    }
    // One byte a char, as 'latin1' encodes (its low byte): a loop, not a call per piece.
    const buf = this.buf;
    let at = this.at;
    for (let i = 0; i < n; i++) buf[at++] = s.charCodeAt(i);
    this.at = at;
  }

  /**
   * A count: a non-negative safe integer's decimal digits written as they are made (what `${n}`
   * gives), no string; any other number as its text.
   */
  count(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) return this.text(`${n}`);
    if (this.at + 16 > TEXT_BUFFER) this.flush();
    const buf = this.buf;
    let digits = 1;
    for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
    const start = this.at;
    this.at = start + digits;
    for (let m = n, i = start + digits - 1; i >= start; i--, m = Math.floor(m / 10)) buf[i] = 0x30 + (m % 10);
  }

  /** One ASCII byte. */
  char(code: number): void {
    if (this.at === TEXT_BUFFER) this.flush();
    this.buf[this.at++] = code;
  }

  /** A directory's start, `d<entries>(`: its entries follow, then closeDirectory. */
  directory(entries: number): void {
    this.char(0x64);
    this.count(entries);
    this.char(0x28);
  }

  /** A directory's end, `)`. */
  closeDirectory(): void {
    this.char(0x29);
  }

  /** A name decoded as latin1, as `<length>:<name>`. */
  latin1Name(name: string): void {
    this.count(name.length);
    this.char(0x3a);
    this.text(name);
  }

  bytes(b: Buffer): void {
    if (this.at + b.length > TEXT_BUFFER) {
      this.flush();
      if (b.length > TEXT_BUFFER) return void this.hash.update(b);
    }
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  name(name: Buffer): void {
    this.count(name.length);
    this.char(0x3a);
    this.bytes(name);
  }

  regular(executable: boolean, size: number, mtimeMs: number, ctimeMs: number, ino: number): void {
    // Equal numbers print alike (0 and -0 both as "0"); NaN, never equal, is printed anew.
    if (mtimeMs !== this.mtimeMs) this.mtimeText = `${(this.mtimeMs = mtimeMs)}`;
    if (ctimeMs !== this.ctimeMs) {
      this.ctimeText = `${(this.ctimeMs = ctimeMs)}`;
      if (ctimeMs > this.latestCtimeMs) this.latestCtimeMs = ctimeMs;
    }
    // Piece by piece: a template's string of pieces is flattened again to be read char by char.
    this.char(0x72);
    this.char(executable ? 0x78 : 0x2d);
    this.count(size);
    this.char(0x3a);
    this.text(this.mtimeText);
    this.char(0x3a);
    this.text(this.ctimeText);
    this.char(0x3a);
    this.count(ino);
    this.char(0x3b);
  }

  symlink(target: Buffer): void {
    this.text(`l${target.length}:`);
    this.bytes(target);
  }

  private flush(): void {
    if (this.at === 0) return;
    this.hash.update(this.buf.subarray(0, this.at));
    this.at = 0;
  }

  digest(): string {
    this.flush();
    return this.hash.digest('hex');
  }
}
