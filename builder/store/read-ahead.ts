import { closeSync, constants, openSync, readSync } from 'node:fs';
import { SYNC_FILE, type NarNode, type SmallFileContents } from './nar.js';

/**
 * Reading a large store path's small files on two threads (issue 19): a worker scanning a path
 * of many tiny files spends most of its time in open/read/close, while the main thread, which
 * sent it the path, waits. So the worker hands the main thread the next few groups ("units") of
 * small files to read ahead, in NAR order, and takes their bytes when its dump reaches them.
 *
 * The dump, the hash and the reference scan stay on the worker, in order: the NAR bytes are the
 * same whoever read a file. Memory is bounded: at most WINDOW units of at most UNIT_BYTES are
 * read ahead. Nothing waits on a busy main thread: a unit has a state in shared memory, taken
 * with a compare-and-swap by whichever thread starts it first; the worker reads a unit itself
 * when the main thread has not begun it, and the main thread skips one the worker has taken. A
 * unit the main thread could not read whole (an error, a file shorter than listed) is read again
 * by the worker, which reports the error as a scan without read-ahead would.
 */

/** Files per unit, and bytes of content per unit (a unit is one message each way). */
const UNIT_FILES = 256;
const UNIT_BYTES = 1024 * 1024;
/** Units asked for ahead of the dump. */
const WINDOW = 4;
/** Paths with fewer small files are read by the scanning thread alone (messages would cost more). */
export const READ_AHEAD_MIN_FILES = 2048;

const FREE = 0;
const TAKEN_HERE = 1;
const TAKEN_THERE = 2;

/** Worker → main thread: read these files (`names`: paths below `root`, each ended by a NUL byte). */
export interface ReadAheadRequest {
  type: 'read-ahead';
  scan: number;
  unit: number;
  states: SharedArrayBuffer;
  root: string;
  names: Uint8Array;
  sizes: number[];
}

/** Main thread → worker: the files' bytes one after the other, or null (not read here: the worker reads them). */
export interface ReadAheadReply {
  type: 'read-ahead-done';
  scan: number;
  unit: number;
  data: Uint8Array | null;
}

type Post = (request: ReadAheadRequest) => void;

/** How this thread asks its parent to read ahead (set in a build worker); undefined: no read-ahead. */
let post: Post | undefined;
let lastScan = 0;
const scans = new Map<number, ReadAhead>();

/** Called once by a build worker: read-ahead requests go to the main thread through `send` (undefined: none). */
export function enableReadAhead(send: Post | undefined): void {
  post = send;
}

/** A reply from the main thread, given to the scan that asked. */
export function receiveReadAhead(reply: ReadAheadReply): void {
  scans.get(reply.scan)?.receive(reply.unit, reply.data);
}

/**
 * The main thread's side: reads a unit unless the worker took it first; `reply` sends the answer
 * (its data's buffer transferred). Synchronous reads, as in the scan (nar.ts).
 */
export function answerReadAhead(request: ReadAheadRequest, reply: (answer: ReadAheadReply, transfer: ArrayBuffer[]) => void): void {
  const states = new Int32Array(request.states);
  const none = { type: 'read-ahead-done', scan: request.scan, unit: request.unit, data: null } as const;
  if (Atomics.compareExchange(states, request.unit, FREE, TAKEN_THERE) !== FREE) return reply(none, []);
  let data: Uint8Array | undefined;
  try {
    data = readUnit(request);
  } catch {
    // Always an answer: the worker waits for a unit claimed here (it then reads it itself).
    data = undefined;
  }
  if (!data) return reply(none, []);
  reply({ ...none, data }, [data.buffer as ArrayBuffer]);
}

function readUnit(request: ReadAheadRequest): Uint8Array | undefined {
  let total = 0;
  for (const size of request.sizes) total += size;
  // Not from Buffer's shared pool: its ArrayBuffer is transferred.
  const data = new Uint8Array(new ArrayBuffer(total));
  const root = Buffer.from(request.root);
  const names = Buffer.from(request.names.buffer, request.names.byteOffset, request.names.byteLength);
  const path = Buffer.allocUnsafe(root.length + 1 + 4096);
  root.copy(path);
  path[root.length] = 0x2f;
  let at = 0;
  let offset = 0;
  for (const size of request.sizes) {
    const end = names.indexOf(0, at);
    const length = root.length + 1 + (end - at);
    if (length > path.length) return undefined;
    names.copy(path, root.length + 1, at, end);
    at = end + 1;
    let fd: number;
    try {
      // O_NONBLOCK: a file swapped for a fifo since the walk must not hang the main thread (the
      // unit then fails here, and the worker meets the fifo as a scan without read-ahead would).
      fd = openSync(path.subarray(0, length), constants.O_RDONLY | constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      let done = 0;
      while (done < size) {
        const n = readSync(fd, data, offset + done, size - done, null);
        if (n === 0) return undefined;
        done += n;
      }
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
    offset += size;
  }
  return data;
}

interface Unit {
  index: number;
  /** Index (among the path's small files) of the unit's first file, and one past its last. */
  start: number;
  end: number;
  /** The bytes, once known; null: read here. */
  data?: Uint8Array | null;
  /** Where the next file's bytes start in `data`. */
  offset: number;
  waiting?: (data: Uint8Array | null) => void;
}

/**
 * The worker's side for one scan: `next(size)` is called by the dump for each small file in NAR
 * order and gives its bytes, or undefined when the dump must read it itself.
 */
class ReadAhead implements SmallFileContents {
  private readonly id = ++lastScan;
  private readonly states: SharedArrayBuffer;
  private readonly view: Int32Array;
  private readonly files: SmallFiles;
  /** Units asked for, in order, that the dump has not reached; `current`: the one it is in. */
  private readonly units: Unit[] = [];
  private nextUnit = 0;
  private fileIndex = 0;
  private current: Unit | undefined;

  constructor(
    private readonly root: string,
    tree: NarNode,
    count: number,
  ) {
    // A unit holds at least one file: `count` slots are enough.
    this.states = new SharedArrayBuffer(4 * count);
    this.view = new Int32Array(this.states);
    this.files = new SmallFiles(tree);
    scans.set(this.id, this);
    for (let i = 0; i < WINDOW; i++) this.ask();
  }

  /** Forget the scan (its late replies are dropped). */
  close(): void {
    scans.delete(this.id);
  }

  receive(unit: number, data: Uint8Array | null): void {
    const u = this.current?.index === unit ? this.current : this.units.find((x) => x.index === unit);
    if (!u || u.data !== undefined) return;
    u.data = data;
    u.waiting?.(data);
  }

  next(size: number): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    const i = this.fileIndex++;
    if (this.current && i < this.current.end) return this.slice(this.current, size);
    // The dump reached the next unit.
    const unit = this.units.shift();
    if (!unit || unit.start !== i) throw new Error(`read-ahead out of step at small file ${i}`);
    this.current = unit;
    this.ask();
    if (Atomics.compareExchange(this.view, unit.index, FREE, TAKEN_HERE) === FREE) {
      unit.data = null;
      return undefined;
    }
    if (unit.data !== undefined) return this.slice(unit, size);
    return new Promise<Uint8Array | null>((resolve) => (unit.waiting = resolve)).then(() => this.slice(unit, size));
  }

  private slice(unit: Unit, size: number): Uint8Array | undefined {
    if (!unit.data) return undefined;
    const out = unit.data.subarray(unit.offset, unit.offset + size);
    unit.offset += size;
    return out;
  }

  /** Sends the next unit of small files to the main thread, if any are left. */
  private ask(): void {
    const names: Buffer[] = [];
    const sizes: number[] = [];
    let bytes = 0;
    const start = this.files.index;
    while (names.length < UNIT_FILES && bytes < UNIT_BYTES && this.files.next()) {
      names.push(this.files.name());
      sizes.push(this.files.size);
      bytes += this.files.size;
    }
    if (names.length === 0) return;
    const unit: Unit = { index: this.nextUnit++, start, end: start + names.length, offset: 0 };
    this.units.push(unit);
    post!({ type: 'read-ahead', scan: this.id, unit: unit.index, states: this.states, root: this.root, names: Buffer.concat(names), sizes });
  }
}

/**
 * The small files (size ≤ SYNC_FILE) of a tree in NAR order, one at a time: `name()` is the path
 * below the root followed by a NUL byte.
 */
class SmallFiles {
  index = 0;
  size = 0;
  private readonly stack: Array<{ entries: Array<[Buffer, NarNode]>; i: number; prefix: Buffer }> = [];
  private path: Buffer = Buffer.alloc(0);

  constructor(tree: NarNode) {
    if (tree.type === 'directory') this.stack.push({ entries: tree.entries, i: 0, prefix: Buffer.alloc(0) });
  }

  next(): boolean {
    while (this.stack.length > 0) {
      const frame = this.stack[this.stack.length - 1]!;
      if (frame.i === frame.entries.length) {
        this.stack.pop();
        continue;
      }
      const [name, node] = frame.entries[frame.i++]!;
      if (node.type === 'directory') {
        this.stack.push({ entries: node.entries, i: 0, prefix: frame.prefix.length ? Buffer.concat([frame.prefix, name, SLASH]) : Buffer.concat([name, SLASH]) });
      } else if (node.type === 'regular' && node.size <= SYNC_FILE) {
        this.path = Buffer.concat([frame.prefix, name, NUL]);
        this.size = node.size;
        this.index++;
        return true;
      }
    }
    return false;
  }

  name(): Buffer {
    return this.path;
  }
}

const SLASH = Buffer.from('/');
const NUL = Buffer.from([0]);

/** How many small files the dump of `tree` reads (those SmallFiles gives). */
function countSmallFiles(node: NarNode): number {
  if (node.type === 'regular') return node.size <= SYNC_FILE ? 1 : 0;
  if (node.type === 'symlink') return 0;
  let n = 0;
  for (const [, child] of node.entries) n += countSmallFiles(child);
  return n;
}

/**
 * Read-ahead for the dump of `tree` (a directory read from `root`), when this thread is a build
 * worker and the tree has enough small files; undefined otherwise. Call `close()` after the dump.
 */
export function readAheadFor(root: string, tree: NarNode): (SmallFileContents & { close(): void }) | undefined {
  if (!post || tree.type !== 'directory') return undefined;
  const count = countSmallFiles(tree);
  if (count < READ_AHEAD_MIN_FILES) return undefined;
  return new ReadAhead(root, tree, count);
}
