import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { StoreError } from '../errors.js';
import { nixBase32Encode } from './nix-base32.js';

/** setuid, setgid, sticky: not part of a NAR (store/content-id.ts hashes them too); kept in layers (layer/modes.ts). */
export const SPECIAL_BITS = 0o7000;

/**
 * The file tree of a store path as the NAR format sees it. Names and symlink targets are raw
 * bytes (Nix sorts entries by bytes and hashes them as bytes, whatever their encoding).
 * `special` holds setuid/setgid/sticky bits when a file or directory has any: not part of a NAR,
 * but a layer keeps them (layer/modes.ts).
 */
export type NarNode =
  | { type: 'regular'; size: number; executable: boolean; mtimeMs: number; ctimeMs: number; ino: number; special?: number }
  | { type: 'symlink'; target: Buffer }
  | { type: 'directory'; entries: Array<[name: Buffer, node: NarNode]>; special?: number };

/**
 * Walks `fsPath` (lstat, never following symlinks) into a NarNode tree, entries sorted by name bytes.
 * The walk uses synchronous fs calls on purpose: a store holds many small files, and a thread-pool
 * round trip per lstat/readdir costs several times the syscall itself (measured in bench/scan.ts).
 */
export async function readNarTree(fsPath: string | Buffer, visit?: NodeVisitor): Promise<NarNode> {
  const root = typeof fsPath === 'string' ? Buffer.from(fsPath) : fsPath;
  return readNarTreeSync(new PathBuffer(root), root.length, visit);
}

/**
 * Sees each node's path and lstat as readNarTree reads them, in NAR order (a node before its
 * entries). `path` is only valid during the call (its buffer is reused for the next entry).
 * `false`: it wants no more nodes (a walk may stop calling it; readNarTree calls it for each).
 */
export type NodeVisitor = (path: Buffer, st: Stats) => void | boolean;

/**
 * The walk of readNarTree, with a stack of its own rather than a call per level: a path on disk
 * may be ~2,000 directories deep (PATH_MAX), and the recursive walk ran out of the main thread's
 * stack at half its default size. Nodes are read, visited and listed in the same order.
 */
function readNarTreeSync(paths: PathBuffer, rootLength: number, visit: NodeVisitor | undefined): NarNode {
  const root = readNode(paths, rootLength, visit);
  if (!root.names) return root.node;
  const stack: Array<{ entries: Array<[Buffer, NarNode]>; names: Buffer[]; i: number; length: number }> = [
    { entries: (root.node as { entries: Array<[Buffer, NarNode]> }).entries, names: root.names, i: 0, length: rootLength },
  ];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i === top.names.length) {
      stack.pop();
      continue;
    }
    const name = top.names[top.i++]!;
    // Each entry's path is written after this one's in the same buffer (no Buffer.concat per entry).
    const length = paths.child(top.length, name);
    const { node, names } = readNode(paths, length, visit);
    top.entries.push([name, node]);
    if (names) stack.push({ entries: (node as { entries: Array<[Buffer, NarNode]> }).entries, names, i: 0, length });
  }
  return root.node;
}

/** One node: lstat-ed and visited; a directory comes with its names, sorted, and no entries yet. */
function readNode(paths: PathBuffer, length: number, visit: NodeVisitor | undefined): { node: NarNode; names?: Buffer[] } {
  const path = paths.view(length);
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    throw new StoreError(`cannot read ${path.toString()}: ${(e as Error).message}`, [path.toString()], undefined, {
      cause: e,
    });
  }
  visit?.(path, st);
  if (st.isSymbolicLink()) return { node: { type: 'symlink', target: readlinkSync(path, { encoding: 'buffer' }) } };
  const special = st.mode & SPECIAL_BITS;
  if (st.isFile()) {
    // Nix marks a file executable when its owner may execute it.
    const node: NarNode = { type: 'regular', size: st.size, executable: (st.mode & 0o100) !== 0, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
    if (special) node.special = special;
    return { node };
  }
  if (st.isDirectory()) {
    const names = readdirSync(path, { encoding: 'buffer' });
    names.sort(Buffer.compare);
    const entries: Array<[Buffer, NarNode]> = [];
    return { node: special ? { type: 'directory', entries, special } : { type: 'directory', entries }, names };
  }
  throw new StoreError(
    `${path.toString()} is neither a regular file, a directory nor a symlink; a store path cannot hold it`,
    [path.toString()],
  );
}

/**
 * Size of a NAR string field: 8-byte length, the bytes, zero padding to 8. Plain arithmetic, not
 * bit masks: JavaScript's bitwise operators work on 32 bits and would wrap for files of 2 GiB+.
 */
function strSize(len: number): number {
  return 8 + Math.ceil(len / 8) * 8;
}

const TOKEN_SIZES = {
  magic: strSize('nix-archive-1'.length),
  open: strSize(1),
  close: strSize(1),
  type: strSize(4),
};

/** The exact size of the NAR serialisation of `node` (what `nix path-info` reports as narSize). */
export function narSize(node: NarNode): number {
  // A sum: the nodes are taken from a stack in any order (no call per level, see readNarTreeSync).
  let n = TOKEN_SIZES.magic;
  const stack: NarNode[] = [node];
  while (stack.length > 0) {
    const next = stack.pop()!;
    // "(" "type" <type> ... ")"
    n += TOKEN_SIZES.open + TOKEN_SIZES.type + TOKEN_SIZES.close;
    switch (next.type) {
      case 'regular':
        n += strSize('regular'.length);
        if (next.executable) n += strSize('executable'.length) + strSize(0);
        n += strSize('contents'.length) + strSize(next.size);
        break;
      case 'symlink':
        n += strSize('symlink'.length) + strSize('target'.length) + strSize(next.target.length);
        break;
      case 'directory':
        n += strSize('directory'.length);
        for (const [name, child] of next.entries) {
          // "entry" "(" "name" <name> "node" <node> ")"
          n += strSize(5) + TOKEN_SIZES.open + strSize(4) + strSize(name.length) + strSize(4) + TOKEN_SIZES.close;
          stack.push(child);
        }
        break;
    }
  }
  return n;
}

function strBytes(s: string | Buffer): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s) : s;
  const out = Buffer.alloc(strSize(bytes.length));
  out.writeUInt32LE(bytes.length % 0x100000000, 0);
  out.writeUInt32LE(Math.floor(bytes.length / 0x100000000), 4);
  bytes.copy(out, 8);
  return out;
}

const T = {
  magic: strBytes('nix-archive-1'),
  open: strBytes('('),
  close: strBytes(')'),
  type: strBytes('type'),
  regular: strBytes('regular'),
  executable: strBytes('executable'),
  empty: strBytes(''),
  contents: strBytes('contents'),
  symlink: strBytes('symlink'),
  target: strBytes('target'),
  directory: strBytes('directory'),
  entry: strBytes('entry'),
  name: strBytes('name'),
  node: strBytes('node'),
};

/** Receives the NAR bytes in order. A chunk is only valid during the call (buffers are reused). */
export type NarSink = (chunk: Buffer) => void;

/**
 * Receives the first `bytes` bytes of every regular file of at least `minSize` bytes (all of it
 * when shorter than `bytes`), with the file's path, as the dump reads them: a look at each file's
 * header (elf.ts) at no extra read. `head` is only valid during the call.
 */
export interface FileHeadSink {
  bytes: number;
  minSize: number;
  /**
   * When set, only heads that start with these bytes are wanted: a file whose first bytes differ
   * is neither copied nor given (nearly every file of a store is not ELF; a copy and a call per
   * file was ~2.5% of a scan of 200,000 tiny files).
   */
  magic?: Uint8Array;
  take(path: Buffer, head: Buffer): void;
}

/**
 * Where regular files' bytes are copied as the dump reads them: `slots[i]` is the offset in
 * `bytes` of the i-th regular file in NAR order, or -1 for a file not copied (store/handover.ts).
 */
export interface FileCopies {
  bytes: Buffer;
  slots: readonly number[];
}

/** Bytes of NAR per chunk given to the sink. */
export const NAR_CHUNK = 256 * 1024;

/**
 * Bytes between two turns given to the event loop, so that a long scan does not starve timers and
 * I/O — nor a build's worker, which gets its next path to scan only when the main thread, maybe
 * scanning too, hears that it finished the last (16 MiB → 1 MiB: cold build 3.41 → 3.32 s, median of 10).
 */
const BYTES_PER_TURN = 1024 * 1024;

/**
 * Streams the NAR serialisation of the tree `node` (read from `fsPath`) into `sink`, in chunks
 * of NAR_CHUNK bytes. A file whose size changed since the tree was read is an error: the NAR
 * would not match the size announced in its header. `heads`, if given, also sees each file's
 * first bytes, in NAR order (the chunks given to `sink` are the same with or without it).
 */
export async function dumpNar(fsPath: string | Buffer, node: NarNode, sink: NarSink, heads?: FileHeadSink, copies?: FileCopies): Promise<void> {
  const buf = spareChunks.pop() ?? Buffer.allocUnsafe(NAR_CHUNK);
  try {
    const out = new NarChunks(sink, buf, heads, copies);
    out.put(T.magic);
    await dumpTree(typeof fsPath === 'string' ? Buffer.from(fsPath) : fsPath, node, out);
    out.flush();
  } finally {
    if (spareChunks.length < 4) spareChunks.push(buf);
  }
}

/**
 * Chunk buffers of finished dumps, for the next: a fresh 256 KiB buffer per store path was most
 * of a scan of tiny paths' garbage (and page faults). A sink sees a chunk only during its call.
 */
const spareChunks: Buffer[] = [];

/** Runs of tokens that always come together, each put as one copy (a path of tiny files is mostly tokens). */
const RUN = {
  /** `(` `type` `regular` `contents`, and with `executable` `` before `contents`. */
  regular: Buffer.concat([T.open, T.type, T.regular, T.contents]),
  executable: Buffer.concat([T.open, T.type, T.regular, T.executable, T.empty, T.contents]),
  symlink: Buffer.concat([T.open, T.type, T.symlink, T.target]),
  directory: Buffer.concat([T.open, T.type, T.directory]),
  /** `entry` `(` `name`: a name's length and bytes follow. */
  entry: Buffer.concat([T.entry, T.open, T.name]),
  /** A leaf's `)` and its entry's `)`. */
  close2: Buffer.concat([T.close, T.close]),
};

/**
 * Files up to this size are read without a turn of the event loop in the middle (one read, maybe
 * split by a chunk's end); larger ones by `fileAsync`, which gives the loop a turn every
 * BYTES_PER_TURN as before.
 */
const SYNC_FILE = 64 * 1024;

/**
 * The NAR of `node` after the magic, in pre-order with an explicit stack rather than an async
 * call per node (a promise and a microtask per entry showed in a scan of 200,000 tiny files).
 * Entry paths are built in one reused buffer: a path given to `heads` or an error is only used
 * during the call.
 */
async function dumpTree(root: Buffer, node: NarNode, out: NarChunks): Promise<void> {
  if (node.type !== 'directory') {
    const pending = dumpLeaf(root, node, out);
    if (pending) await pending;
    out.put(T.close);
    return;
  }
  const path = new PathBuffer(root);
  out.put(RUN.directory);
  const stack: Array<{ entries: Array<[Buffer, NarNode]>; i: number; length: number }> = [{ entries: node.entries, i: 0, length: root.length }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.i === frame.entries.length) {
      stack.pop();
      // The directory's `)`, and the `)` of the entry holding it (none for the root).
      out.put(stack.length > 0 ? RUN.close2 : T.close);
      if (out.sinceTurn >= BYTES_PER_TURN) await out.turn();
      continue;
    }
    const [name, child] = frame.entries[frame.i++]!;
    out.put(RUN.entry);
    out.str(name);
    out.put(T.node);
    const length = path.child(frame.length, name);
    if (child.type === 'directory') {
      out.put(RUN.directory);
      stack.push({ entries: child.entries, i: 0, length });
      continue;
    }
    // Awaited only when it is a promise: an await per tiny file is a microtask turn each.
    const pending = dumpLeaf(path.view(length), child, out);
    if (pending) await pending;
    out.put(RUN.close2);
    if (out.sinceTurn >= BYTES_PER_TURN) await out.turn();
  }
}

/** A regular file or symlink up to its last token before `)`. Synchronous for a small file (no promise). */
function dumpLeaf(path: Buffer, node: NarNode, out: NarChunks): Promise<void> | undefined {
  if (node.type === 'symlink') {
    out.put(RUN.symlink);
    out.str(node.target);
    return undefined;
  }
  if (node.type !== 'regular') throw new Error('dumpLeaf: a directory');
  out.put(node.executable ? RUN.executable : RUN.regular);
  out.u64(node.size);
  if (node.size <= SYNC_FILE) {
    out.fileSync(path, node.size);
    out.pad(node.size);
    return undefined;
  }
  // The path buffer is reused for the next entry: this file's path must outlive the awaits.
  return out.fileAsync(Buffer.from(path), node.size).then(() => out.pad(node.size));
}

/** Entry paths as views of one growing buffer: `<parent>/<name>` written after the parent's bytes. */
class PathBuffer {
  private buf: Buffer;

  constructor(root: Buffer) {
    this.buf = Buffer.allocUnsafe(root.length + 256);
    root.copy(this.buf, 0);
  }

  /** Writes `/<name>` after the first `parentLength` bytes; returns the child's length. */
  child(parentLength: number, name: Buffer): number {
    const length = parentLength + 1 + name.length;
    if (length > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(length, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, parentLength);
      this.buf = grown;
    }
    this.buf[parentLength] = 0x2f;
    this.buf.set(name, parentLength + 1);
    return length;
  }

  view(length: number): Buffer {
    return this.buf.subarray(0, length);
  }
}

/**
 * NAR bytes gathered into one reused buffer, file contents read straight into it with
 * synchronous reads (see readNarTree): a store path of many small files costs a few calls per
 * file and one sink call per chunk, not a sink call and a buffer per token.
 */
class NarChunks {
  private filled = 0;
  sinceTurn = 0;
  /** A file's first bytes for `heads`, copied as they are read (a head can straddle a flush). */
  private readonly head: Buffer | undefined;
  /** The next regular file's index in `copies.slots`, and where the current file's bytes go (-1: nowhere). */
  private file = 0;
  private slot = -1;
  /** Whether the current file's head is wanted (FileHeadSink.magic), decided by its first bytes. */
  private headWanted = true;

  constructor(
    private readonly sink: NarSink,
    private readonly buf: Buffer,
    private readonly heads?: FileHeadSink,
    private readonly copies?: FileCopies,
  ) {
    if (heads) this.head = Buffer.allocUnsafe(heads.bytes);
  }

  /** Called as each regular file's reading starts (NAR order). */
  private nextFile(): void {
    if (this.copies) this.slot = this.copies.slots[this.file++] ?? -1;
  }

  put(bytes: Uint8Array): void {
    // Most puts are a token or a name that fits: one copy, no view made.
    if (bytes.length <= this.buf.length - this.filled) {
      this.buf.set(bytes, this.filled);
      this.filled += bytes.length;
      return;
    }
    let off = 0;
    while (off < bytes.length) {
      if (this.filled === this.buf.length) this.flush();
      const n = Math.min(bytes.length - off, this.buf.length - this.filled);
      this.buf.set(bytes.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
    }
  }

  /** A 64-bit little-endian number (arithmetic, not bit masks: sizes pass 2^32). */
  u64(value: number): void {
    if (this.buf.length - this.filled < 8) this.flush();
    const b = this.buf;
    const o = this.filled;
    const lo = value % 0x100000000;
    const hi = Math.floor(value / 0x100000000);
    b[o] = lo & 0xff;
    b[o + 1] = (lo >>> 8) & 0xff;
    b[o + 2] = (lo >>> 16) & 0xff;
    b[o + 3] = lo >>> 24;
    b[o + 4] = hi & 0xff;
    b[o + 5] = (hi >>> 8) & 0xff;
    b[o + 6] = (hi >>> 16) & 0xff;
    b[o + 7] = hi >>> 24;
    this.filled = o + 8;
  }

  /** A NAR string: its length, its bytes, zero padding to 8. */
  str(bytes: Uint8Array): void {
    this.u64(bytes.length);
    this.put(bytes);
    this.pad(bytes.length);
  }

  pad(length: number): void {
    const pad = (8 - (length % 8)) % 8;
    if (pad === 0) return;
    if (pad <= this.buf.length - this.filled) {
      // At most 7 bytes: a loop, not fill's checks and call (two pads a file).
      const buf = this.buf;
      for (let i = this.filled, end = i + pad; i < end; i++) buf[i] = 0;
      this.filled += pad;
    } else this.put(ZEROS.subarray(0, pad));
  }

  private open(path: Buffer): number {
    try {
      return openSync(path, 'r');
    } catch (e) {
      throw new StoreError(`cannot read ${path.toString()}: ${(e as Error).message}`, [path.toString()], undefined, { cause: e });
    }
  }

  /** Exactly `size` bytes of the file at `path` (a small file): the NAR header already announced that length. */
  fileSync(path: Buffer, size: number): void {
    this.nextFile();
    const fd = this.open(path);
    try {
      let done = 0;
      while (done < size) {
        if (this.filled === this.buf.length) this.flush();
        const n = this.read(fd, path, size, done);
        if (n === 0) break;
        done += n;
      }
      if (done !== size) throw changed(path, size, done);
    } finally {
      closeSync(fd);
    }
  }

  /** `fileSync` for a large file, with a turn of the event loop every BYTES_PER_TURN. */
  async fileAsync(path: Buffer, size: number): Promise<void> {
    this.nextFile();
    const fd = this.open(path);
    try {
      let done = 0;
      while (done < size) {
        if (this.filled === this.buf.length) {
          this.flush();
          if (this.sinceTurn >= BYTES_PER_TURN) await this.turn();
        }
        const n = this.read(fd, path, size, done);
        if (n === 0) break;
        done += n;
      }
      if (done !== size) throw changed(path, size, done);
    } finally {
      closeSync(fd);
    }
  }

  /** A regular file's bytes read before (NarStream), put as fileSync puts what it reads. */
  fileBytes(path: Buffer, bytes: Uint8Array): void {
    this.nextFile();
    this.given(path, bytes);
  }

  /** A file's bytes read before, put as `read` puts what it reads. */
  private given(path: Buffer, bytes: Uint8Array): void {
    const size = bytes.length;
    let done = 0;
    while (done < size) {
      if (this.filled === this.buf.length) this.flush();
      const n = Math.min(this.buf.length - this.filled, size - done);
      // A small file fits whole: no view made of it.
      this.buf.set(n === size ? bytes : bytes.subarray(done, done + n), this.filled);
      this.took(path, size, done, n);
      done += n;
    }
  }

  /** One read into the chunk buffer at the file's offset `done`; gives `heads` the file's first bytes. */
  private read(fd: number, path: Buffer, size: number, done: number): number {
    const n = readSync(fd, this.buf, this.filled, Math.min(this.buf.length - this.filled, size - done), null);
    this.took(path, size, done, n);
    return n;
  }

  /** `n` bytes of a file (at its offset `done`) just put at the chunk's end: to `heads` and the copy, then counted. */
  private took(path: Buffer, size: number, done: number, n: number): void {
    const heads = this.heads;
    if (heads && size >= heads.minSize) {
      const want = Math.min(heads.bytes, size);
      if (done < want && n > 0) {
        // Decided by the first piece when it holds the magic's length (else copied, and `take` judges).
        if (done === 0) this.headWanted = heads.magic === undefined || n < heads.magic.length || startsWith(this.buf, this.filled, heads.magic);
        if (this.headWanted) {
          this.buf.copy(this.head!, done, this.filled, this.filled + Math.min(n, want - done));
          if (done + n >= want) heads.take(path, this.head!.subarray(0, want));
        }
      }
    }
    if (this.slot >= 0 && n > 0) this.buf.copy(this.copies!.bytes, this.slot + done, this.filled, this.filled + n);
    this.filled += n;
  }

  flush(): void {
    if (this.filled === 0) return;
    this.sink(this.buf.subarray(0, this.filled));
    this.sinceTurn += this.filled;
    this.filled = 0;
  }

  turn(): Promise<void> {
    this.sinceTurn = 0;
    return new Promise((resolve) => setImmediate(resolve));
  }
}

/** Whether `buf` holds `magic` at `at`. */
function startsWith(buf: Buffer, at: number, magic: Uint8Array): boolean {
  for (let i = 0; i < magic.length; i++) if (buf[at + i] !== magic[i]) return false;
  return true;
}

function changed(path: Buffer, size: number, done: number): StoreError {
  return new StoreError(`${path.toString()} changed while it was read (expected ${size} bytes, read ${done}); store paths must not change`, [path.toString()]);
}

const ZEROS = Buffer.alloc(8);

/**
 * The NAR of a directory given node by node in NAR order, as a tree's nodes are found
 * (store/split-scan.ts): the very bytes dumpNar gives for the same tree, in the same chunks' way
 * (the tokens of dumpTree, files read here when not given). Call `end` once, after the last
 * node, or `drop` on a failure.
 */
export class NarStream {
  private readonly buf: Buffer;
  private readonly out: NarChunks;
  /** Directories open, the root's included. */
  private depth = 0;

  constructor(sink: NarSink, heads?: FileHeadSink) {
    this.buf = spareChunks.pop() ?? Buffer.allocUnsafe(NAR_CHUNK);
    this.out = new NarChunks(sink, this.buf, heads);
    this.out.put(T.magic);
    this.out.put(RUN.directory);
    this.depth = 1;
  }

  /** An entry of the innermost open directory: its node follows (directory, file or symlink). */
  entry(name: Buffer): void {
    this.out.put(RUN.entry);
    this.out.str(name);
    this.out.put(T.node);
  }

  /** The entry is a directory: its entries follow, then `close`. */
  directory(): void {
    this.out.put(RUN.directory);
    this.depth++;
  }

  /** The end of the innermost open directory. */
  close(): void {
    this.depth--;
    this.out.put(this.depth > 0 ? RUN.close2 : T.close);
  }

  symlink(target: Buffer): void {
    this.out.put(RUN.symlink);
    this.out.str(target);
    this.out.put(RUN.close2);
  }

  /** The entry is a regular file of `size` bytes: `bytes` when read before (exactly `size`), else read from `path` here. */
  file(path: Buffer, executable: boolean, size: number, bytes: Uint8Array | undefined): Promise<void> | undefined {
    const out = this.out;
    out.put(executable ? RUN.executable : RUN.regular);
    out.u64(size);
    if (bytes) out.fileBytes(path, bytes);
    else if (size <= SYNC_FILE) out.fileSync(path, size);
    else
      return out.fileAsync(Buffer.from(path), size).then(() => {
        out.pad(size);
        out.put(RUN.close2);
      });
    out.pad(size);
    out.put(RUN.close2);
    return undefined;
  }

  /** A turn of the event loop when BYTES_PER_TURN went by since the last (as dumpNar gives). */
  turn(): Promise<void> | undefined {
    return this.out.sinceTurn >= BYTES_PER_TURN ? this.out.turn() : undefined;
  }

  /** After the root's `close`: the last chunk to the sink. */
  end(): void {
    if (this.depth !== 0) throw new Error('NarStream: a directory is still open');
    this.out.flush();
    this.drop();
  }

  /** Lets the chunk buffer go to the next dump. */
  drop(): void {
    if (spareChunks.length < 4 && !spareChunks.includes(this.buf)) spareChunks.push(this.buf);
  }
}

/** `sha256:<nix-base32>` of the NAR serialisation of `fsPath`, computed by streaming. */
export async function narHashOf(fsPath: string, node?: NarNode): Promise<{ narHash: string; narSize: number }> {
  const tree = node ?? (await readNarTree(fsPath));
  const h = createHash('sha256');
  let size = 0;
  await dumpNar(fsPath, tree, (chunk) => {
    size += chunk.length;
    h.update(chunk);
  });
  return { narHash: `sha256:${nixBase32Encode(h.digest())}`, narSize: size };
}
