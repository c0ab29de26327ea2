import { Worker } from 'node:worker_threads';
import { builderFile } from '../install-paths.js';
import { PER_NODE, statListValues } from './stat-list.js';

/**
 * A closure record's lstats (150,000 at 50,000 tiny paths, most of a warm build) shared by this
 * thread and a stat thread (stat-list-thread.ts). Neither is given a fixed half: both claim
 * chunks of CHUNK_PATHS paths from a shared counter until none is left, so a thread that starts
 * late (a Worker takes ~0.1 s to start on Node 20) or runs slower takes fewer, and neither waits
 * for the other longer than one chunk. Each path's values go to a fixed place of one shared
 * array, so the values hashed are the same, in the same order, whoever read them.
 */

/** Below this many nodes, starting a thread costs more than the lstats it could take over. */
export const SPLIT_MIN_NODES = 20_000;

/** Paths a claim takes by default: ~800 lstats at 3 nodes a path, a few milliseconds. */
export const CHUNK_PATHS = 256;

/** The control words: the next chunk to claim, and whether a check failed (an entry gone). */
const NEXT = 0;
const FAILED = 1;

/** The named paths of a record whose values are wanted, as both threads see them. */
export interface StatLists {
  /** `<fsDir>/`. */
  prefix: string;
  /** Base names. */
  paths: readonly string[];
  /** Each path's entry names, `\n`-joined (`''`: none; names are printable ASCII). */
  names: readonly string[];
  /** Paths a claim takes (CHUNK_PATHS unless a test asks for fewer). */
  chunk: number;
}

/** What a stat thread is given: the lists as two strings (one copy each to cross, not a clone of 50,000 objects) and the shared memory. */
export interface StatWork {
  prefix: string;
  /** Base names, `\n`-joined. */
  paths: string;
  /** `StatLists.names`, joined by `\0`. */
  names: string;
  chunk: number;
  /** Int32 control words (NEXT, FAILED). */
  control: SharedArrayBuffer;
  /** A byte per chunk: 1 once its values are in. */
  done: SharedArrayBuffer;
  /** PER_NODE float64s a node, every path's at its place. */
  values: SharedArrayBuffer;
}

/** Nodes of a path with these names: its root and each entry. */
function nodesOf(names: string): number {
  if (names === '') return 1;
  let k = 2;
  for (let at = names.indexOf('\n'); at !== -1; at = names.indexOf('\n', at + 1)) k++;
  return k;
}

/** Where each path's values start (in float64s), and the length in all. */
export function placesOf(names: readonly string[]): { at: Float64Array; length: number } {
  const at = new Float64Array(names.length);
  let sum = 0;
  for (let i = 0; i < names.length; i++) {
    at[i] = sum;
    sum += PER_NODE * nodesOf(names[i]!);
  }
  return { at, length: sum };
}

/**
 * Claims chunks of `lists`' paths and puts their values in place until none is left; false as
 * soon as a check failed here or on the other thread (an entry gone: the record does not hold).
 */
export function claimChunks(lists: StatLists, at: Float64Array, values: Float64Array, control: Int32Array, done: Uint8Array): boolean {
  const chunks = Math.ceil(lists.paths.length / lists.chunk);
  for (;;) {
    if (Atomics.load(control, FAILED) !== 0) return false;
    const c = Atomics.add(control, NEXT, 1);
    if (c >= chunks) return true;
    if (!checkChunk(lists, at, values, c)) {
      Atomics.store(control, FAILED, 1);
      return false;
    }
    Atomics.store(done, c, 1);
  }
}

const NO_NAMES: readonly string[] = Object.freeze([]);

function checkChunk(lists: StatLists, at: Float64Array, values: Float64Array, c: number): boolean {
  const end = Math.min(lists.paths.length, (c + 1) * lists.chunk);
  for (let i = c * lists.chunk; i < end; i++) {
    const names = lists.names[i]!;
    try {
      if (!statListValues(`${lists.prefix}${lists.paths[i]!}`, names === '' ? NO_NAMES : names.split('\n'), values, at[i]!)) return false;
    } catch {
      return false; // unreadable now: the scan says why
    }
  }
  return true;
}

/**
 * The values of every path of `lists` (statListValues of each, in order), read here and, from
 * `threadFrom` nodes on (undefined: never), by a stat thread too; false when an entry could not
 * be lstat-ed. `first` runs here before this thread's claims (other checks of the record, while
 * the thread starts); its false stops everything.
 */
export async function statListsValues(lists: StatLists, threadFrom: number | undefined, first: () => boolean = () => true, started?: StatThread): Promise<Float64Array | false> {
  const { at, length } = placesOf(lists.names);
  const chunks = Math.ceil(lists.paths.length / lists.chunk);
  // A thread started already is used whatever the count (its start is paid).
  const shared = chunks > 1 && (started !== undefined || (threadFrom !== undefined && length / PER_NODE >= threadFrom));
  const memory = (bytes: number) => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  const control = new Int32Array(memory(8));
  const done = new Uint8Array(memory(chunks));
  const values = new Float64Array(memory(length * 8));
  const work: StatWork | undefined = shared
    ? { prefix: lists.prefix, chunk: lists.chunk, paths: lists.paths.join('\n'), names: lists.names.join('\0'), control: control.buffer as SharedArrayBuffer, done: done.buffer as SharedArrayBuffer, values: values.buffer as SharedArrayBuffer }
    : undefined;
  let thread: StatThread | undefined;
  if (work && started) {
    started.give(work);
    thread = started;
  } else if (work) thread = startStatThread(work);
  try {
    if (!first() || !claimChunks(lists, at, values, control, done)) {
      Atomics.store(control, FAILED, 1);
      return false;
    }
    // The thread's last chunk (or none, if it never started or died: its chunks are done here).
    if (thread) await thread.ended;
    if (Atomics.load(control, FAILED) !== 0) return false;
    for (let c = 0; c < chunks; c++) if (done[c] === 0 && !checkChunk(lists, at, values, c)) return false;
    return values;
  } finally {
    // The thread given its work, or the one started early and left without work (one chunk).
    (thread ?? started)?.stop();
  }
}

/**
 * A stat thread: `ended` settles when it has claimed its last chunk, stopped, or died. Started
 * without its work (startStatThread()), it waits for `give`: a warm build starts it before
 * reading its closure record (Node 20 takes ~0.1 s to start a thread, about what the record's
 * read and graph take), so that it claims chunks from the start. Whoever starts one stops it.
 */
export interface StatThread {
  readonly ended: Promise<void>;
  /** Its work, once (a thread started without it). */
  give(work: StatWork): void;
  stop(): void;
}

export function startStatThread(work?: StatWork): StatThread {
  let worker: Worker | undefined;
  const ended = new Promise<void>((resolve) => {
    try {
      worker = new Worker(builderFile('store/stat-list-thread.js'), work ? { workerData: work } : {});
    } catch {
      return resolve();
    }
    worker.once('message', () => resolve());
    worker.once('error', () => resolve());
    worker.once('exit', () => resolve());
  });
  return { ended, give: (w) => worker?.postMessage(w), stop: () => void worker?.terminate() };
}
