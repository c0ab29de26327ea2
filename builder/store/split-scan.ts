import { readdirSync, readlinkSync, type Dirent } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { SCAN_HELPER_BUNDLE, threadScript } from '../install-paths.js';
import { NarStream, SPECIAL_BITS, type FileHeadSink, type NarNode, type NarSink, type NodeVisitor } from './nar.js';
import type { SplitExtras } from './split-extras.js';
import { CHUNK_NODES, chunkCount, DONE, FAILED, fixedView, growableBuffer, KIND, kindOf, LISTED, LISTING_DONE, MAX_NAME_BYTES, MAX_NODES, NOT_ASCII, PENDING, type Growable, PER_NODE, SplitReader, STOP, type SplitShare } from './split-read.js';

/**
 * A big store path's tree and small files read by two threads: the scan's thread lists the
 * directories (readdir with file types, in NAR order) while a helper thread
 * (split-scan-thread.ts) already lstats every node listed and reads every small file and symlink
 * into shared memory; then both take chunks of nodes as they go (split-read.ts). The scan's
 * thread makes the tree from those values, exactly as readNarTree makes it, chunk by chunk in
 * NAR order, and gives its NAR to the sink as it goes (nar.ts NarStream), the files' bytes taken
 * from memory: the hash, the reference scan and the hand-over see the same bytes in the same
 * order, with no second read of a file.
 *
 * Anything unexpected (an entry gone or changed since its listing, an lstat or read that fails,
 * a node no store holds) gives up the split: the caller then scans the path as before, on one
 * thread, and that scan's result or error is the answer. So a split never decides an error.
 */

/**
 * A path whose walk passes this many nodes is split (the walk so far is dropped: ~5 µs a node).
 * Starting the helper costs ~20 ms of the other core; at 10,000 nodes the split saves more.
 */
export const SCAN_SPLIT_MIN_NODES = 10_000;

/** The helper thread's young generation, MiB. */
const HELPER_YOUNG_MB = 4;

/** Bytes each thread may keep of files and symlink targets read ahead of the dump (a full area reads no more; the dump reads the rest). */
const AREA_BYTES = 32 * 1024 * 1024;

/** Scans split, and splits given up (read by tests). */
export const splitCounts = { split: 0, givenUp: 0 };

function given<T>(found: T | undefined): T | undefined {
  if (found === undefined) splitCounts.givenUp++;
  else splitCounts.split++;
  return found;
}

/** How the split's work is shared (for tests), and what it makes. */
export interface SplitOptions {
  /** Bytes of each thread's area (default AREA_BYTES). */
  areaBytes?: number;
  /** The calling thread reads no chunk unless the helper cannot: every read and failure is the helper's. */
  helperReads?: boolean;
  /** Whether the tree is made (default true); without it, the dump's extras are what the split gives of it. */
  keepTree?: boolean;
}

/** What the split found: the tree (as readNarTree gives it), its NAR given to the sink. */
export interface SplitTree {
  /** Undefined when not asked for (SplitOptions.keepTree). */
  tree: NarNode | undefined;
  /** The dump's extras, every node given. */
  extras?: SplitExtras;
  /** The bytes of the `fileNo`-th regular file in NAR order as the NAR has them, if the threads read it (else the NAR's dump did). */
  fileBytes(fileNo: number): Uint8Array | undefined;
}

/** Where the NAR goes as the tree is found (what dumpNar is given). */
export interface SplitDump {
  sink: NarSink;
  heads?: FileHeadSink;
  /** Given every node too, as the tree is made (the fingerprint and hand-over record made meanwhile, not by walks of the tree after it). */
  extras?: SplitExtras;
}

/**
 * The tree of `root` read on two threads, with `visit` called for each node in NAR order (as
 * readNarTree calls it) and its NAR given to `dump` (as dumpNar gives it) as the nodes come in;
 * undefined when the split was given up (the caller scans as before, with a sink of its own:
 * this one may have had part of the NAR).
 */
export async function splitReadTree(root: Buffer, dump: SplitDump, visit?: NodeVisitor, options: SplitOptions = {}): Promise<SplitTree | undefined> {
  let helper: Worker | undefined;
  try {
    // A small young generation: the helper's garbage (a Stats object per node) dies young, and
    // the default semi-spaces took ~20 MiB of RSS at the moment of the build's peak.
    helper = new Worker(threadScript(SCAN_HELPER_BUNDLE, 'store/split-scan-thread.js'), { resourceLimits: { maxYoungGenerationSizeMb: HELPER_YOUNG_MB } });
  } catch {
    helper = undefined; // this thread does every chunk
  }
  let gone = helper === undefined;
  const exited = new Promise<void>((resolve) => {
    if (!helper) return resolve();
    helper.once('exit', () => {
      gone = true;
      resolve();
    });
    helper.once('error', () => undefined);
  });
  let share: SplitShare | undefined;
  let nar: NarStream | undefined;
  let ended = false;
  try {
    const rootLatin1 = root.toString('latin1');
    share = newShare(rootLatin1, options.areaBytes ?? AREA_BYTES);
    // The helper reads the chunks listed so far while the listing goes on.
    helper?.postMessage(share);
    const listing = listTree(rootLatin1, NON_ASCII.test(rootLatin1), new Publisher(share));
    const reader = new SplitReader(share, 0, listing.names);
    const tree = new TreeBuilder(listing, share, visit, (nar = new NarStream(dump.sink, dump.heads)), dump.extras, options.keepTree ?? true);
    const ctl = new Int32Array(share.ctl);
    const chunks = fixedView(Int32Array, share.chunks);
    const total = chunkCount(listing.kinds.length);
    // The tree is made chunk by chunk in NAR order as chunks are read; while the next one is
    // not, this thread reads the next that no thread has taken, and waits only when none is left.
    for (let at = 0; at < total; ) {
      const state = Atomics.load(chunks, at);
      if (state === DONE) {
        const pending = tree.chunk(at++);
        if (pending) await pending;
        continue;
      }
      if (state === FAILED || Atomics.load(ctl, STOP) !== 0) return given(undefined);
      const c = options.helperReads && !gone ? -1 : reader.claim(false);
      if (c >= 0) {
        if (!reader.chunk(c)) return given(undefined);
        continue;
      }
      // The helper holds it: waited for, or done here if the helper died with it.
      if (gone) {
        if (!reader.chunk(at)) return given(undefined);
        continue;
      }
      const wait = (Atomics as unknown as AtomicsWaitAsync).waitAsync(chunks, at, PENDING);
      if (wait.async) await Promise.race([wait.value, exited]);
    }
    const found = tree.done();
    ended = true;
    return given(found);
  } catch {
    return given(undefined);
  } finally {
    if (!ended) nar?.drop();
    if (share) Atomics.store(new Int32Array(share.ctl), STOP, 1);
    // Done with it: its thread ends as it finds no chunk left; ended now if it is still starting.
    if (helper && !gone) {
      helper.unref();
      void helper.terminate();
    }
  }
}

/** The directories' listings, in NAR order: per node its kind (with NOT_ASCII), name (latin1; '' for the root), parent (-1 for the root), the index after its subtree, and its count of entries (0 but for a directory). */
interface Listing {
  kinds: number[];
  names: string[];
  parents: number[];
  ends: number[];
  counts: number[];
}

const NON_ASCII = /[^\x00-\x7f]/;

/** Lists the tree below the root (a directory: the plain walk found it big), publishing its nodes to the threads as it goes; throws when a directory cannot be listed or the tree is too big to share. */
function listTree(root: string, rootNotAscii: boolean, publish: Publisher): Listing {
  const out: Listing = { kinds: [KIND.DIR | (rootNotAscii ? NOT_ASCII : 0)], names: [''], parents: [-1], ends: [0], counts: [0] };
  publish.add(0, out.kinds[0]!, -1, '');
  // The directories open (a stack of its own, not a call per level: a path may be ~2,000 deep):
  // each one's node, path (latin1), entries, and the next entry to list.
  const open: Array<{ dir: number; path: string; notAscii: boolean; entries: Dirent<string>[]; k: number }> = [];
  const list = (dir: number, path: string, notAscii: boolean): void => {
    const entries = readdirSync(notAscii ? Buffer.from(path, 'latin1') : path, { withFileTypes: true, encoding: 'latin1' });
    // As latin1 strings, UTF-16 order is byte order: NAR order.
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    out.counts[dir] = entries.length;
    open.push({ dir, path, notAscii, entries, k: 0 });
  };
  list(0, root, rootNotAscii);
  while (open.length > 0) {
    const top = open[open.length - 1]!;
    if (top.k === top.entries.length) {
      open.pop();
      // The index after the directory's subtree.
      out.ends[top.dir] = out.kinds.length;
      continue;
    }
    const e = top.entries[top.k++]!;
    const name = e.name;
    const childNotAscii = top.notAscii || NON_ASCII.test(name);
    const i = out.kinds.length;
    const kind = kindOf(e);
    const flagged = kind | (childNotAscii ? NOT_ASCII : 0);
    out.kinds.push(flagged);
    out.names.push(name);
    out.parents.push(top.dir);
    out.ends.push(0);
    out.counts.push(0);
    publish.add(i, flagged, top.dir, name);
    if (kind === KIND.DIR) list(i, `${top.path}/${name}`, childNotAscii);
    else out.ends[i] = out.kinds.length;
  }
  publish.done(out.kinds.length);
  return out;
}

/** Nodes the listing gives the threads at a time (the chunks they make up can then be read). */
const PUBLISH_NODES = 4 * CHUNK_NODES;

/** The shared memory of a split, its per-node buffers empty and growable (Publisher grows them). */
function newShare(root: string, areaBytes: number): SplitShare {
  const chunks = chunkCount(MAX_NODES);
  return {
    root,
    names: growableBuffer(0, MAX_NAME_BYTES),
    nameEnds: growableBuffer(0, 4 * MAX_NODES),
    parents: growableBuffer(0, 4 * MAX_NODES),
    kinds: growableBuffer(0, MAX_NODES),
    values: growableBuffer(0, 8 * PER_NODE * MAX_NODES),
    places: growableBuffer(0, 8 * MAX_NODES),
    ctl: new SharedArrayBuffer(16),
    chunks: growableBuffer(0, 4 * chunks),
    owners: growableBuffer(0, chunks),
    // Pages untouched cost no memory: an area is as big as what it holds.
    areas: [new SharedArrayBuffer(areaBytes), new SharedArrayBuffer(areaBytes)],
  };
}

/** Writes the listing's nodes into the shared buffers (grown as needed) and publishes them (LISTED) every PUBLISH_NODES. */
class Publisher {
  // Fixed-length views, made again as the buffers grow (fixedView).
  private nameBytes: Uint8Array;
  private nameEnds: Int32Array;
  private parents: Int32Array;
  private kinds: Uint8Array;
  private readonly ctl: Int32Array;
  private capacity = 0;
  private nameCapacity = 0;
  private nameUsed = 0;

  constructor(private readonly share: SplitShare) {
    this.nameBytes = fixedView(Uint8Array, share.names);
    this.nameEnds = fixedView(Int32Array, share.nameEnds);
    this.parents = fixedView(Int32Array, share.parents);
    this.kinds = fixedView(Uint8Array, share.kinds);
    this.ctl = new Int32Array(share.ctl);
  }

  add(i: number, kind: number, parent: number, name: string): void {
    if (i >= this.capacity) this.grow(i + 1);
    if (this.nameUsed + name.length > this.nameCapacity) this.growNames(this.nameUsed + name.length);
    this.kinds[i] = kind;
    this.parents[i] = parent;
    const bytes = this.nameBytes;
    let at = this.nameUsed;
    for (let k = 0; k < name.length; k++) bytes[at++] = name.charCodeAt(k);
    this.nameUsed = at;
    this.nameEnds[i] = at;
    if ((i + 1) % PUBLISH_NODES === 0) this.publish(i + 1);
  }

  done(nodes: number): void {
    this.publish(nodes);
    Atomics.store(this.ctl, LISTING_DONE, 1);
    Atomics.notify(this.ctl, LISTED);
  }

  private publish(nodes: number): void {
    Atomics.store(this.ctl, LISTED, nodes);
    Atomics.notify(this.ctl, LISTED);
  }

  private grow(nodes: number): void {
    if (nodes > MAX_NODES) throw new Error('split: too many nodes');
    const capacity = Math.min(MAX_NODES, Math.max(nodes, 2 * this.capacity, 16 * PUBLISH_NODES));
    const s = this.share;
    const chunks = chunkCount(capacity);
    (s.nameEnds as unknown as Growable).grow(4 * capacity);
    (s.parents as unknown as Growable).grow(4 * capacity);
    (s.kinds as unknown as Growable).grow(capacity);
    (s.values as unknown as Growable).grow(8 * PER_NODE * capacity);
    (s.places as unknown as Growable).grow(8 * capacity);
    (s.chunks as unknown as Growable).grow(4 * chunks);
    (s.owners as unknown as Growable).grow(chunks);
    this.capacity = capacity;
    this.nameEnds = fixedView(Int32Array, s.nameEnds);
    this.parents = fixedView(Int32Array, s.parents);
    this.kinds = fixedView(Uint8Array, s.kinds);
  }

  private growNames(bytes: number): void {
    if (bytes > MAX_NAME_BYTES) throw new Error('split: too many bytes of names');
    const capacity = Math.min(MAX_NAME_BYTES, Math.max(bytes, 2 * this.nameCapacity, 1 << 16));
    (this.share.names as unknown as Growable).grow(capacity);
    this.nameCapacity = capacity;
    this.nameBytes = fixedView(Uint8Array, this.share.names);
  }
}

/**
 * The tree readNarTree would give, made from the listing and the values the threads read, chunk
 * by chunk in NAR order (a node before its entries, as readNarTree makes and visits them).
 */
class TreeBuilder {
  private readonly values: Float64Array;
  private readonly places: Int32Array;
  private readonly owners: Uint8Array;
  private readonly areas: Buffer[];
  /** The directories open at the node being made: their entries, and the index after each one's subtree. */
  private readonly open: Array<{ entries: Array<[Buffer, NarNode]> | undefined; end: number; length: number }> = [];
  private root: NarNode | undefined;
  /** The regular files' nodes, in NAR order (fileBytes counts files). */
  private readonly files: number[] = [];
  private path: Buffer;
  private readonly rootLength: number;

  constructor(
    private readonly listing: Listing,
    share: SplitShare,
    private visit: NodeVisitor | undefined,
    private readonly nar: NarStream,
    private readonly extras: SplitExtras | undefined,
    private readonly keepTree: boolean,
  ) {
    this.values = fixedView(Float64Array, share.values);
    this.places = fixedView(Int32Array, share.places);
    this.owners = fixedView(Uint8Array, share.owners);
    this.areas = share.areas.map((a) => Buffer.from(a));
    const root = Buffer.from(share.root, 'latin1');
    this.rootLength = root.length;
    this.path = Buffer.allocUnsafe(root.length + 256);
    root.copy(this.path, 0);
  }

  /** The bytes the threads read of node `i` (a file's, a symlink's target), if they did. */
  private bytesOf(i: number): Buffer | undefined {
    const at = this.places[2 * i]!;
    return at < 0 ? undefined : this.areas[this.owners[Math.floor(i / CHUNK_NODES)]!]!.subarray(at, at + this.places[2 * i + 1]!);
  }

  /**
   * The node's full path as bytes (for visit, the ELF heads, a symlink whose target was not kept):
   * its directory's, kept in `path` as the nodes come in NAR order, and its name. Valid until
   * the next node.
   */
  private pathTo(parentLength: number, latin1Name: string): Buffer {
    const length = parentLength + 1 + latin1Name.length;
    if (length > this.path.length) {
      const grown = Buffer.allocUnsafe(length * 2);
      this.path.copy(grown, 0, 0, parentLength);
      this.path = grown;
    }
    this.path[parentLength] = 0x2f;
    // Written where it goes: a Buffer per node for the name, then a copy of it, cost more.
    (this.path as unknown as Latin1Writing).latin1Write(latin1Name, parentLength + 1);
    return this.path.subarray(0, length);
  }

  /** Makes the nodes of chunk `c` (every chunk before it made) and gives their NAR; a promise when a big file is read or the event loop is given a turn. */
  chunk(c: number): Promise<void> | undefined {
    const end = Math.min(this.listing.kinds.length, (c + 1) * CHUNK_NODES);
    for (let i = c * CHUNK_NODES; i < end; i++) {
      const pending = this.node(i);
      if (pending) return pending.then(() => this.rest(i + 1, end));
    }
    return this.nar.turn();
  }

  private async rest(from: number, end: number): Promise<void> {
    for (let i = from; i < end; i++) {
      const pending = this.node(i);
      if (pending) await pending;
    }
    await this.nar.turn();
  }

  private node(i: number): Promise<void> | undefined {
    const open = this.open;
    while (open.length > 0 && open[open.length - 1]!.end <= i) {
      open.pop();
      this.nar.close();
      this.extras?.close();
    }
    const v = PER_NODE * i;
    const values = this.values;
    const mode = values[v]!;
    const latin1Name = this.listing.names[i]!;
    const path = i === 0 ? this.path.subarray(0, this.rootLength) : this.pathTo(open[open.length - 1]!.length, latin1Name);
    // The name's bytes, in `path` (valid until the next node, as `path` is: a kept tree copies them).
    const name = i === 0 ? undefined : path.subarray(path.length - latin1Name.length);
    if (this.visit && this.visit(path, { mode, size: values[v + 1]!, mtimeMs: values[v + 2]!, ctimeMs: values[v + 3]!, ino: values[v + 4]! } as Parameters<NodeVisitor>[1]) === false) this.visit = undefined;
    const special = mode & SPECIAL_BITS;
    const below = () => path.subarray(this.rootLength);
    // Without a tree asked for, no object is made per node (the extras have what the scan needs).
    const keep = this.keepTree;
    let node: NarNode | undefined;
    if (name) this.nar.entry(name);
    let pending: Promise<void> | undefined;
    switch (this.listing.kinds[i]! & ~NOT_ASCII) {
      case KIND.SYMLINK: {
        const target = Buffer.from(this.bytesOf(i) ?? readlinkSync(path, { encoding: 'buffer' }));
        if (keep) node = { type: 'symlink', target };
        this.nar.symlink(target);
        this.extras?.symlink(name!, latin1Name, target);
        break;
      }
      case KIND.FILE: {
        this.files.push(i);
        const size = values[v + 1]!;
        const executable = (mode & 0o100) !== 0;
        if (keep) {
          node = { type: 'regular', size, executable, mtimeMs: values[v + 2]!, ctimeMs: values[v + 3]!, ino: values[v + 4]! };
          if (special) node.special = special;
        }
        const bytes = this.bytesOf(i);
        this.extras?.file(name!, latin1Name, executable, size, values[v + 2]!, values[v + 3]!, values[v + 4]!, special, bytes, path, below);
        pending = this.nar.file(path, executable, size, bytes);
        break;
      }
      default:
        if (keep) node = special ? { type: 'directory', entries: [], special } : { type: 'directory', entries: [] };
        // The root's own `directory` token came with the NAR's start.
        if (name) this.nar.directory();
        this.extras?.directory(name, latin1Name, this.listing.counts[i]!, special, below);
        open.push({ entries: node?.type === 'directory' ? node.entries : undefined, end: this.listing.ends[i]!, length: path.length });
    }
    if (node) {
      if (name) open[open.length - (node.type === 'directory' ? 2 : 1)]!.entries!.push([Buffer.from(name), node]);
      else this.root = node;
    }
    return pending;
  }

  /** The tree, once every chunk is made: the NAR's end given to the sink. */
  done(): SplitTree {
    while (this.open.length > 0) {
      this.open.pop();
      this.nar.close();
      this.extras?.close();
    }
    this.nar.end();
    // What the answer keeps: not the listing (names, kinds) nor the values.
    const { files, places, owners, areas } = this;
    return {
      tree: this.root,
      extras: this.extras,
      fileBytes: (fileNo) => {
        const i = files[fileNo]!;
        const at = places[2 * i]!;
        return at < 0 ? undefined : areas[owners[Math.floor(i / CHUNK_NODES)]!]!.subarray(at, at + places[2 * i + 1]!);
      },
    };
  }
}

/** Buffer's own latin1 encoder (what `write(string, offset, 'latin1')` calls after checking its arguments). */
interface Latin1Writing {
  latin1Write(s: string, offset: number): number;
}

/** Atomics.waitAsync (ES2024; in Node since 16), which this project's TypeScript lib (ES2023) does not declare. */
interface AtomicsWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}
