import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readlinkSync, type Stats } from 'node:fs';
import { fastFstatValues, type FstatValues } from './lstat-values.js';
import { PER_NODE, putStatValues } from './stat-list.js';

/**
 * The per-entry work of a big store path's scan shared by two threads (split-scan.ts): every
 * node's lstat, every small file's bytes and every symlink's target, put in shared memory. This
 * module is all the helper thread loads (split-scan-thread.ts), so it imports nothing of ours.
 *
 * The nodes are the path's tree in NAR order (the root, then each directory's entries sorted by
 * name bytes, a directory before its entries), as listed by the scanning thread. Both threads
 * take chunks of CHUNK_NODES nodes from a shared counter until none is left: whichever is
 * faster does more, with no share fixed in advance.
 */

/** A node's kind, as its directory listing gave it (the lstat must agree, else the split is dropped). */
export const KIND = { DIR: 1, FILE: 2, SYMLINK: 3, OTHER: 4 } as const;

/** Set on a node's kind when its path is not all ASCII: the syscalls then take it as bytes, not as a string (which they would write as UTF-8). */
export const NOT_ASCII = 0x80;

/** Nodes a thread takes at a time. */
export const CHUNK_NODES = 256;

/** Regular files up to this size are read here (larger ones by the NAR dump, as in a plain scan; nar.ts SYNC_FILE). */
export const PRE_READ_MAX = 64 * 1024;

/** How a node listed as a regular file is opened: read-only, following no symlink, never waiting (a fifo). */
const FILE_OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Fields of `ctl`: the next chunk to take; set when the split is given up (a failure) or done; nodes listed so far; set once the listing is whole. */
export const NEXT = 0;
export const STOP = 1;
export const LISTED = 2;
export const LISTING_DONE = 3;

/** A chunk's state in `chunks`. */
export const PENDING = 0;
export const DONE = 1;
export const FAILED = 2;

/** Per node in `values`: stat-list.ts's layout (mode, size, mtimeMs, ctimeMs, ino), what the tree and the stat checks take. */
export { PER_NODE } from './stat-list.js';

/** A split of a tree of more nodes, or of more bytes of names, is given up (the shared buffers grow up to these). */
export const MAX_NODES = 1 << 24;
export const MAX_NAME_BYTES = 1 << 28;

/**
 * Everything the threads share (SharedArrayBuffers: no copy either way). The per-node and
 * per-chunk buffers are growable: the listing thread grows them and publishes nodes (LISTED) as
 * it lists, and the helper reads the chunks listed so far while the listing goes on.
 */
export interface SplitShare {
  /** The store path's own path, its bytes as a latin1 string (one char a byte). */
  root: string;
  /**
   * Each node's name (the root's empty), its bytes one after another, and where each ends
   * (Int32 per node). Node makes a Buffer per name read from a directory at twice the cost of a
   * string: the names are read as latin1 strings and their bytes shared.
   */
  names: SharedArrayBuffer;
  nameEnds: SharedArrayBuffer;
  /** Each node's parent (Int32; the root's -1): a path is its directory's and its name. */
  parents: SharedArrayBuffer;
  /** KIND (with NOT_ASCII) per node (Uint8). */
  kinds: SharedArrayBuffer;
  /** PER_NODE float64s per node. */
  values: SharedArrayBuffer;
  /** Per node, two Int32s: where its bytes (a file's, a symlink's target) are in its chunk's area, and how many; -1: not read. */
  places: SharedArrayBuffer;
  /** Int32s: NEXT, STOP, LISTED, LISTING_DONE. */
  ctl: SharedArrayBuffer;
  /** Per chunk: PENDING, DONE, FAILED (Int32, waited on). */
  chunks: SharedArrayBuffer;
  /** Per chunk: the index of the area (the thread) that read it (Uint8). */
  owners: SharedArrayBuffer;
  /** One per thread: the bytes it read, appended. A full area reads no more (the dump reads the rest). */
  areas: SharedArrayBuffer[];
}

export function chunkCount(nodes: number): number {
  return Math.ceil(nodes / CHUNK_NODES);
}

/** A growable SharedArrayBuffer (ES2024; Node 20 has it), which this project's TypeScript lib (ES2023) does not declare. */
export interface Growable {
  grow(bytes: number): void;
}

/**
 * A fixed-length view of all of a growable buffer as it is now: in Node 20 an element access
 * through a view that follows its buffer's growth was ~10-30 times slower (measured).
 */
export function fixedView<T>(View: { new (buffer: SharedArrayBuffer, offset: number, length: number): T; BYTES_PER_ELEMENT: number }, buffer: SharedArrayBuffer): T {
  return new View(buffer, 0, Math.floor(buffer.byteLength / View.BYTES_PER_ELEMENT));
}

export function growableBuffer(bytes: number, maxBytes: number): SharedArrayBuffer {
  return new (SharedArrayBuffer as unknown as new (bytes: number, options: { maxByteLength: number }) => SharedArrayBuffer)(bytes, { maxByteLength: maxBytes });
}

/** One thread's side of a split: takes chunks and reads their nodes into its area. */
export class SplitReader {
  private readonly names: string[] | undefined;
  private readonly nameBytes: SharedArrayBuffer;
  /** Each directory's path and `/` (latin1), once asked for. */
  private readonly prefixes: string[] = [];
  private readonly ctl: Int32Array;
  // Fixed-length views of the growable buffers, made again when a chunk is past them (fixedView).
  private nameEnds!: Int32Array;
  private parents!: Int32Array;
  private kinds!: Uint8Array;
  private values!: Float64Array;
  private places!: Int32Array;
  private chunks!: Int32Array;
  private owners!: Uint8Array;
  /** The names' bytes as one Buffer (fixed length, made again when a name is past it): a name is sliced from it, no Buffer made per node. */
  private nameView: Latin1Slicing = Buffer.alloc(0) as unknown as Latin1Slicing;
  private readonly area: Buffer;
  private used = 0;

  constructor(
    private readonly share: SplitShare,
    /** This thread's area. */
    private readonly me: number,
    /** Every node's name (the root's ''), when the caller has them (the listing thread). */
    names?: string[],
  ) {
    this.names = names;
    this.nameBytes = share.names;
    this.prefixes[0] = `${share.root}/`;
    this.ctl = new Int32Array(share.ctl);
    this.area = Buffer.from(share.areas[me]!);
    this.view();
  }

  /** Views of the buffers as they are now (their nodes listed so far at least). */
  private view(): void {
    const s = this.share;
    this.nameEnds = fixedView(Int32Array, s.nameEnds);
    this.parents = fixedView(Int32Array, s.parents);
    this.kinds = fixedView(Uint8Array, s.kinds);
    this.values = fixedView(Float64Array, s.values);
    this.places = fixedView(Int32Array, s.places);
    this.chunks = fixedView(Int32Array, s.chunks);
    this.owners = fixedView(Uint8Array, s.owners);
  }

  /** Nodes listed so far. */
  private listed(): number {
    return Atomics.load(this.ctl, LISTED);
  }

  /**
   * The next chunk no thread has taken, taken: one whose nodes are all listed (any once the
   * listing is whole). While the listing goes on and every listed chunk is taken, waits for more
   * when `wait` (the helper), else answers -1 as when none is left or the split is stopped.
   */
  claim(wait: boolean): number {
    for (;;) {
      if (Atomics.load(this.ctl, STOP) !== 0) return -1;
      const listed = this.listed();
      const whole = Atomics.load(this.ctl, LISTING_DONE) !== 0;
      const ready = whole ? chunkCount(listed) : Math.floor(listed / CHUNK_NODES);
      const c = Atomics.load(this.ctl, NEXT);
      if (c >= ready) {
        if (whole || !wait) return -1;
        Atomics.wait(this.ctl, LISTED, listed, 100);
        continue;
      }
      if (Atomics.compareExchange(this.ctl, NEXT, c, c + 1) !== c) continue;
      // Listed nodes are in the buffers (grown before they were published).
      if (Math.min(listed, (c + 1) * CHUNK_NODES) > this.kinds.length || c >= this.chunks.length) this.view();
      return c;
    }
  }

  /** Takes chunks until none is left or the split is stopped (the helper thread). */
  work(): void {
    for (let c = this.claim(true); c >= 0; c = this.claim(true)) if (!this.chunk(c)) return;
  }

  /** Reads chunk `c` (taken by this thread, or left by a thread that died) and says so; false when a node failed (the split is stopped). */
  chunk(c: number): boolean {
    if (c >= this.chunks.length || Math.min(this.listed(), (c + 1) * CHUNK_NODES) > this.kinds.length) this.view();
    this.owners[c] = this.me;
    let ok = true;
    const end = Math.min(this.listed(), (c + 1) * CHUNK_NODES);
    for (let i = c * CHUNK_NODES; ok && i < end; i++) {
      try {
        ok = this.node(i);
      } catch {
        ok = false; // the plain scan that follows says why
      }
    }
    Atomics.store(this.chunks, c, ok ? DONE : FAILED);
    Atomics.notify(this.chunks, c);
    if (!ok) Atomics.store(this.ctl, STOP, 1);
    return ok;
  }

  private node(i: number): boolean {
    const kind = this.kinds[i]! & ~NOT_ASCII;
    const path = this.pathOf(i);
    if (kind === KIND.FILE) return this.file(i, path);
    const st = lstatSync(path);
    // Changed since the listing, or a node no store holds (a fifo, a device): the plain scan says which.
    if (kind !== kindOf(st) || kind === KIND.OTHER) return false;
    putStatValues(this.values, PER_NODE * i, st);
    this.places[2 * i] = -1;
    if (kind === KIND.SYMLINK) {
      const target = readlinkSync(path, { encoding: 'buffer' });
      if (target.length <= this.area.length - this.used) this.place(i, target);
    }
    return true;
  }

  /**
   * A node listed as a regular file: opened, then fstat-ed, not lstat-ed then opened: one lookup
   * of its path instead of two (~15% of a tiny file's system time). The open follows no symlink
   * and does not block (a symlink or fifo put there since the listing fails it, or fails the
   * fstat's check: the plain scan then says what it is).
   */
  private file(i: number, path: string | Buffer): boolean {
    const fd = openSync(path, FILE_OPEN_FLAGS);
    try {
      const at = PER_NODE * i;
      // Node 20: the values without a Stats object and its four Dates (lstat-values.ts).
      const put = fastFstatValues(fd, fstatSync) ?? fstatValues;
      if (!put(fd, this.values, at)) return false;
      this.places[2 * i] = -1;
      const size = this.values[at + 1]!;
      if (size <= PRE_READ_MAX && size <= this.area.length - this.used) return this.read(i, fd, size);
      return true;
    } finally {
      closeSync(fd);
    }
  }

  private nameOf(i: number): string {
    if (this.names) return this.names[i]!;
    const end = this.nameEnds[i]!;
    if (end > this.nameView.length) this.nameView = Buffer.from(this.nameBytes, 0, this.nameBytes.byteLength) as unknown as Latin1Slicing;
    return this.nameView.latin1Slice(this.nameEnds[i - 1]!, end);
  }

  /** Node `i`'s path as latin1 (one char a byte). */
  latin1Path(i: number): string {
    return i === 0 ? this.share.root : this.prefix(this.parents[i]!) + this.nameOf(i);
  }

  /** Node `i`'s path for the syscalls: a string when it is ASCII (what Node passes as is), else its bytes. */
  pathOf(i: number): string | Buffer {
    const latin1 = this.latin1Path(i);
    return (this.kinds[i]! & NOT_ASCII) !== 0 ? Buffer.from(latin1, 'latin1') : latin1;
  }

  private prefix(dir: number): string {
    return (this.prefixes[dir] ??= `${this.prefix(this.parents[dir]!)}${this.nameOf(dir)}/`);
  }

  private place(i: number, bytes: Buffer): void {
    this.area.set(bytes, this.used);
    this.places[2 * i] = this.used;
    this.places[2 * i + 1] = bytes.length;
    this.used += bytes.length;
  }

  /** Exactly `size` bytes of the open file into the area; false when it has fewer (it changed: the plain scan says so). */
  private read(i: number, fd: number, size: number): boolean {
    let done = 0;
    while (done < size) {
      const n = readSync(fd, this.area, this.used + done, size - done, null);
      if (n === 0) break;
      done += n;
    }
    if (done !== size) return false;
    this.places[2 * i] = this.used;
    this.places[2 * i + 1] = size;
    this.used += size;
    return true;
  }
}

/** Buffer's own latin1 decoder (what `toString('latin1', start, end)` calls after checking its arguments). */
interface Latin1Slicing {
  readonly length: number;
  latin1Slice(start: number, end: number): string;
}

export function kindOf(st: Stats | { isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }): number {
  return st.isFile() ? KIND.FILE : st.isDirectory() ? KIND.DIR : st.isSymbolicLink() ? KIND.SYMLINK : KIND.OTHER;
}

/** FstatValues by `fstatSync`: the values put even for a node that is not a regular file (unused then). */
const fstatValues: FstatValues = (fd, values, at) => {
  const st = fstatSync(fd);
  putStatValues(values, at, st);
  return st.isFile();
};
