import { handoverAllInline, handoverLength } from './handover.js';

/** Records made on this thread are gathered in shared buffers of this size (a bigger record gets its own). */
const CHUNK = 1024 * 1024;

/** A record's place: buffer index × 2^32 + offset (a safe integer). */
const SPLIT = 2 ** 32;

/**
 * The hand-over records (handover.ts) a directory store keeps, up to a budget: each in a
 * SharedArrayBuffer (a worker's batch comes as one; records scanned here are copied into chunks),
 * so that a layer worker is given the buffers, not a copy, and each path holds one number.
 */
export class HandoverArena {
  private readonly buffers: SharedArrayBuffer[] = [];
  /** The buffer records made here are appended to, and how much of it is used. */
  private own: Uint8Array | undefined;
  private ownUsed = 0;
  private ownIndex = -1;
  private used = 0;

  /**
   * `first`: the index of this arena's first buffer in places: a source that lets go of one arena
   * and keeps another numbers the new one's buffers after the old one's, so that a place kept
   * from the old one finds nothing rather than another record.
   */
  constructor(
    private readonly budget: number,
    readonly first = 0,
  ) {}

  /** The index the buffers of an arena made after this one start at. */
  get end(): number {
    return this.first + this.buffers.length;
  }

  /** Bytes still allowed. */
  room(): number {
    return Math.max(0, this.budget - this.used);
  }

  /** Keeps `record` (a view of a SharedArrayBuffer, from a worker, or bytes made here); its place, or -1 past the budget. */
  place(record: Uint8Array): number {
    if (this.used + record.length > this.budget) return -1;
    this.used += record.length;
    if (record.buffer instanceof SharedArrayBuffer) {
      // A batch's records share one buffer: it is kept once.
      let index = this.buffers.length - 1;
      if (index < 0 || this.buffers[index] !== record.buffer) {
        this.buffers.push(record.buffer);
        index++;
      }
      return (this.first + index) * SPLIT + record.byteOffset;
    }
    if (!this.own || this.ownIndex < 0 || this.buffers[this.ownIndex] !== this.own.buffer || this.ownUsed + record.length > this.own.length) {
      this.own = new Uint8Array(new SharedArrayBuffer(Math.max(CHUNK, record.length)));
      this.ownUsed = 0;
      this.buffers.push(this.own.buffer as SharedArrayBuffer);
      this.ownIndex = this.buffers.length - 1;
    }
    this.own.set(record, this.ownUsed);
    const at = (this.first + this.ownIndex) * SPLIT + this.ownUsed;
    this.ownUsed += record.length;
    return at;
  }

  /** A Buffer over each of `buffers` (made once: a view per record over shared memory costs). */
  private readonly views: Buffer[] = [];

  /** The record at `at` (a place given by `place`), or undefined when it is another arena's. */
  record(at: number): Buffer | undefined {
    const index = Math.floor(at / SPLIT) - this.first;
    if (index < 0 || index >= this.buffers.length) return undefined;
    const view = (this.views[index] ??= viewOf(this.buffers[index]!));
    const offset = at % SPLIT;
    return view.subarray(offset, offset + handoverLength(view, offset));
  }

  /**
   * Whether the record at `at` holds all its path's files (handoverAllInline), read in place: a
   * Buffer view per record cost ~2 µs, and a build asks this of each of 50,000 paths three times.
   */
  allInline(at: number): boolean {
    const index = Math.floor(at / SPLIT) - this.first;
    if (index < 0 || index >= this.buffers.length) return false;
    const view = (this.views[index] ??= viewOf(this.buffers[index]!));
    return handoverAllInline(view, at % SPLIT);
  }

  /** The buffers the places `at` name, and the places renumbered into them, for a worker; undefined when none is placed. */
  job(at: readonly number[]): { buffers: SharedArrayBuffer[]; at: Float64Array } | undefined {
    const buffers: SharedArrayBuffer[] = [];
    const renumbered = new Map<number, number>();
    const out = new Float64Array(at.length);
    for (let i = 0; i < at.length; i++) {
      const place = at[i]!;
      if (place < 0) {
        out[i] = -1;
        continue;
      }
      const index = Math.floor(place / SPLIT) - this.first;
      if (index < 0 || index >= this.buffers.length) {
        out[i] = -1;
        continue;
      }
      let mine = renumbered.get(index);
      if (mine === undefined) {
        mine = buffers.length;
        buffers.push(this.buffers[index]!);
        renumbered.set(index, mine);
      }
      out[i] = mine * SPLIT + (place % SPLIT);
    }
    return buffers.length > 0 ? { buffers, at: out } : undefined;
  }
}

/** The records of a job's buffers (HandoverArena.job), on the worker's side. */
export class HandoverReader {
  private readonly views: Buffer[];

  constructor(buffers: readonly SharedArrayBuffer[]) {
    this.views = buffers.map(viewOf);
  }

  /** The record at `at`, if `at` is a place. */
  record(at: number): Buffer | undefined {
    if (!(at >= 0)) return undefined;
    const view = this.views[Math.floor(at / SPLIT)];
    if (!view) return undefined;
    const offset = at % SPLIT;
    return view.subarray(offset, offset + handoverLength(view, offset));
  }
}

/**
 * A fixed-length view of a whole buffer: a split scan's big record is in a growable
 * SharedArrayBuffer (split-extras.ts), and a view that follows growth is slow to index.
 */
function viewOf(buffer: SharedArrayBuffer): Buffer {
  return Buffer.from(buffer, 0, buffer.byteLength);
}
