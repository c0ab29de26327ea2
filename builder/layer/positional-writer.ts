import { write, writeSync } from 'node:fs';
import { SpareBuffers } from './spare-buffers.js';

/**
 * A layer blob's bytes written to its temp file at their offsets, on the thread pool, while the
 * calling thread goes on making the tar and hashing it: the write (a copy into the page cache,
 * costly on a VM whose free pages are handed back to the host) overlaps the next chunks' work
 * instead of following it. Past its first SYNC_BYTES (written here, as they come: most layers
 * are small), bytes are copied into a few buffers of BUFFER_BYTES, each written
 * once full; with every buffer still being written, the full one is written here, at once (so
 * memory stays bounded and nothing waits for an event-loop turn; the blob's bytes are the same
 * either way: each write has its offset).
 *
 * `add` never keeps the caller's buffer (the tar's chunk is reused once it returns); `end`
 * writes the rest and waits for every write, and rejects with the first failure (ENOSPC); a
 * failure seen earlier is thrown by the next `add`. `abandon` waits for the writes in flight
 * and keeps none of their errors: the caller then closes and removes the file.
 */
export class PositionalWriter {
  private readonly free: Buffer[] = [];
  private current: Buffer | undefined;
  private filled = 0;
  /** Where the current buffer's bytes go in the file. */
  private position = 0;
  private inFlight = 0;
  private failure: { error: unknown } | undefined;
  private drained: (() => void) | undefined;
  private waiting: Array<() => void> = [];
  private made = 0;

  constructor(
    private readonly fd: number,
    private readonly buffers = MAX_BUFFERS,
    private readonly bufferBytes = BUFFER_BYTES,
    /** Bytes written here, synchronously, before any goes to the pool. */
    private readonly syncBytes = SYNC_BYTES,
  ) {}

  add(bytes: Uint8Array): void {
    if (this.failure) throw this.failure.error;
    if (this.position < this.syncBytes) {
      // A small layer (or a big one's start) is written here, as it comes: no buffer to allocate.
      writeFullySync(this.fd, bytes, bytes.length, this.position);
      this.position += bytes.length;
      return;
    }
    let off = 0;
    while (off < bytes.length) {
      const buf = (this.current ??= this.take());
      const n = Math.min(bytes.length - off, buf.length - this.filled);
      buf.set(n === bytes.length ? bytes : bytes.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === buf.length) this.flush();
    }
  }

  /**
   * A promise while every buffer is taken (being written, or the one filling): the caller waits
   * for a write to end before it adds more, as a stream's backpressure. Undefined when there is room.
   */
  room(): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.free.length > 0 || this.made < this.buffers || this.inFlight === 0) return undefined;
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Every byte added, written; rejects with the first write's failure. */
  async end(): Promise<void> {
    if (this.filled > 0) this.flush();
    await this.settled();
    this.release();
    if (this.failure) throw this.failure.error;
  }

  /** After a failure elsewhere: the writes in flight finished (their errors dropped), none started. */
  async abandon(): Promise<void> {
    this.failure ??= { error: new Error('layer write abandoned') };
    this.current = undefined;
    this.filled = 0;
    await this.settled();
    this.release();
  }

  /** A buffer to fill: a free one, else one kept from an earlier writer of this thread, else a new one. */
  private take(): Buffer {
    const free = this.free.pop();
    if (free) return free;
    this.made++;
    return spareBuffers.take(this.bufferBytes);
  }

  /** Every write has ended: the buffers go to the next writer of this thread. */
  private release(): void {
    const bufs = this.free.splice(0);
    if (this.current) bufs.push(this.current);
    this.current = undefined;
    spareBuffers.give(bufs);
  }

  private flush(): void {
    const buf = this.current!;
    const length = this.filled;
    const position = this.position;
    this.current = undefined;
    this.filled = 0;
    this.position += length;
    if (this.free.length === 0 && this.made >= this.buffers) {
      // Every other buffer is still being written: this one now, here, and then filled again.
      writeFullySync(this.fd, buf, length, position);
      this.free.push(buf);
      return;
    }
    this.inFlight++;
    this.writeAt(buf, 0, length, position);
  }

  private writeAt(buf: Buffer, off: number, length: number, position: number): void {
    write(this.fd, buf, off, length - off, position + off, (err, n) => {
      if (!err && off + n < length && n > 0) return this.writeAt(buf, off + n, length, position);
      if (err) this.failure ??= { error: err };
      else if (n === 0 && off < length) this.failure ??= { error: new Error('layer write: the file took no bytes') };
      this.inFlight--;
      this.free.push(buf);
      for (const wake of this.waiting.splice(0)) wake();
      if (this.inFlight === 0) this.drained?.();
    });
  }

  private settled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = () => {
        this.drained = undefined;
        resolve();
      };
    });
  }
}

/**
 * The first bytes of every blob are written synchronously, straight from the caller's buffer:
 * most layers of a store of many paths are small, and a buffer of 1 MiB allocated for each (and
 * the garbage collections its external memory set off) cost a build of 50,000 tiny paths ~5% more
 * CPU than the writes it moved.
 */
export const SYNC_BYTES = 4 * 1024 * 1024;

/** Bytes a buffer holds before it is written: fewer, larger writes than the tar's 256 KiB chunks. */
export const BUFFER_BYTES = 1024 * 1024;

/** Buffers a writer may have (filling or being written): its memory is at most this many BUFFER_BYTES. */
export const MAX_BUFFERS = 4;

/**
 * Buffers of finished writers, for the next layers of this thread: a fresh 1 MiB buffer per
 * buffer per layer (~30 MiB over the 1 GB bench's layers on each writing thread) was memory to
 * fault in and external memory that set off V8's collections. Two writers' worth are kept (a
 * thread may write two layers at once), and only while layers follow each other (dropped a
 * second after the last writer ended).
 */
const spareBuffers = new SpareBuffers(BUFFER_BYTES, 2 * MAX_BUFFERS, 1000);

/** Buffers kept for the next writer of this thread (for tests). */
export function keptWriterBuffers(): number {
  return spareBuffers.count;
}

function writeFullySync(fd: number, buf: Uint8Array, length: number, position: number): void {
  let off = 0;
  while (off < length) off += writeSync(fd, buf, off, length - off, position + off);
}
