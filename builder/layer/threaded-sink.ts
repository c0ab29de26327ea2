import { createHash } from 'node:crypto';
import { write, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { builderFile } from '../install-paths.js';
import type { BlobSink, SinkResult } from './blob-sinks.js';

/**
 * An uncompressed layer written to its temp file (`fd`) with its sha256 on a thread of its own
 * (hash-thread.ts), while this thread makes the tar and the thread pool writes it: a big layer
 * written here from memory (a store path the scan handed over whole) was ~0.6 s of tar, hash and
 * writes on one core with the other idle. The bytes and digest are PlainSink's; only where the
 * work runs differs.
 *
 * A layer's first THREAD_FROM bytes are only kept: a smaller layer never starts the thread, and
 * is hashed and written here at `finish`. Past them the thread starts, and each buffer of
 * BUFFER_BYTES (shared memory, at most MAX_BUFFERS) is handed to it and written at its offset on
 * the pool as it fills; a buffer is filled again once both are done (the tar waits while none
 * is). A write's failure (ENOSPC) is thrown by the next `write` or by `finish`; `abandon` ends
 * the thread and resolves once no write is in flight (so the file is not closed under one).
 */
export class ThreadedPlainSink implements BlobSink {
  private size = 0;
  private position = 0;
  private worker: Worker | undefined;
  private exited: Promise<void> | undefined;
  /** Full buffers not yet handed on (before the thread starts: the layer's first bytes). */
  private readonly queued: Array<{ buf: SharedArrayBuffer; length: number }> = [];
  /** Buffers handed to the thread, in order, waiting for its answer. */
  private readonly hashing: Slot[] = [];
  private readonly free: SharedArrayBuffer[] = [];
  private made = 0;
  private current: Buffer | undefined;
  private filled = 0;
  private writes = 0;
  private failure: Error | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private digested: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;

  constructor(
    private readonly fd: number,
    private readonly start: () => Worker = startHashThread,
  ) {}

  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    this.size += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const buf = (this.current ??= this.take());
      if (!buf) return this.roomThen(chunk.subarray(off));
      const n = Math.min(chunk.length - off, buf.length - this.filled);
      buf.set(n === chunk.length ? chunk : chunk.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === buf.length) this.queue();
    }
    return undefined;
  }

  /** Waits for a buffer to be free, then writes the rest (counted already). */
  private async roomThen(rest: Buffer): Promise<void> {
    await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
    this.size -= rest.length;
    await this.write(rest);
  }

  private take(): Buffer | undefined {
    const buf = this.free.pop() ?? (this.made < MAX_BUFFERS ? (this.made++, new SharedArrayBuffer(BUFFER_BYTES)) : undefined);
    return buf ? Buffer.from(buf) : undefined;
  }

  /** The current buffer, full or last, handed on (the thread started once the layer passes THREAD_FROM, not by its last buffer). */
  private queue(last = false): void {
    this.queued.push({ buf: this.current!.buffer as SharedArrayBuffer, length: this.filled });
    this.current = undefined;
    this.filled = 0;
    if (!this.worker && !last && this.queued.length * BUFFER_BYTES >= THREAD_FROM) this.startThread();
    if (!this.worker) return;
    for (const { buf, length } of this.queued.splice(0)) {
      const slot: Slot = { buf, pending: 2 };
      this.hashing.push(slot);
      this.worker.postMessage({ buf, length });
      this.writeAt(slot, new Uint8Array(buf, 0, length), 0, this.position);
      this.position += length;
    }
  }

  private writeAt(slot: Slot, bytes: Uint8Array, off: number, position: number): void {
    this.writes++;
    write(this.fd, bytes, off, bytes.length - off, position + off, (err, n) => {
      this.writes--;
      if (!err && n > 0 && off + n < bytes.length) return this.writeAt(slot, bytes, off + n, position);
      if (err) this.fail(err);
      else if (n === 0 && off < bytes.length) this.fail(new Error('layer write: the file took no bytes'));
      this.done(slot);
    });
  }

  /** One of a buffer's two jobs (hash, write) done: free once both are. */
  private done(slot: Slot): void {
    if (--slot.pending === 0) this.free.push(slot.buf);
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private startThread(): void {
    const worker = (this.worker = this.start());
    hashThreads.started++;
    hashThreads.running++;
    this.exited = new Promise((resolve) =>
      worker.once('exit', () => {
        hashThreads.running--;
        if (!this.stopping) this.fail(new Error('layer write: the hashing thread ended'));
        resolve();
      }),
    );
    worker.on('message', (m: { hashed?: true; digest?: string }) => {
      if (m.hashed) this.done(this.hashing.shift()!);
      else if (m.digest !== undefined) this.digested?.resolve(m.digest);
    });
    worker.once('error', (err) => this.fail(err));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.digested?.reject(this.failure);
    this.wakeUp();
  }

  async finish(): Promise<SinkResult> {
    if (this.failure) throw this.failure;
    if (this.filled > 0) this.queue(true);
    let hex: string;
    if (!this.worker) {
      // A small layer: hashed and written here, as PlainSink does.
      const hash = createHash('sha256');
      for (const { buf, length } of this.queued) {
        const bytes = new Uint8Array(buf, 0, length);
        hash.update(bytes);
        let off = 0;
        while (off < length) off += writeSync(this.fd, bytes, off, length - off, this.position + off);
        this.position += length;
      }
      hex = hash.digest('hex');
    } else {
      const digest = new Promise<string>((resolve, reject) => (this.digested = { resolve, reject }));
      this.worker.postMessage({ end: true });
      hex = await digest;
      await this.settled();
      await this.stop();
      if (this.failure) throw this.failure;
    }
    const digest = `sha256:${hex}` as const;
    return { digest, diffId: digest, size: this.size, uncompressedSize: this.size };
  }

  /** Ends the thread; resolves once it has and no write is in flight. */
  async abandon(): Promise<void> {
    this.failure ??= new Error('layer write abandoned');
    await this.stop();
    await this.settled();
  }

  /** Every write started has ended. */
  private async settled(): Promise<void> {
    while (this.writes > 0) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  private async stop(): Promise<void> {
    if (!this.worker) return;
    this.stopping = true;
    void this.worker.terminate();
    await this.exited;
  }
}

interface Slot {
  buf: SharedArrayBuffer;
  /** Jobs not done of the two (hash, write). */
  pending: number;
}

/** Hash threads started, and running now (read by tests). */
export const hashThreads = { started: 0, running: 0 };

/** Bytes of a layer kept before the thread starts (a smaller layer never starts it). */
export const THREAD_FROM = 8 * 1024 * 1024;
/** Bytes per buffer handed on. */
const BUFFER_BYTES = 1024 * 1024;
/** Buffers at most (the first THREAD_FROM bytes', and a few more while they are hashed and written). */
const MAX_BUFFERS = THREAD_FROM / BUFFER_BYTES + 4;

function startHashThread(): Worker {
  return new Worker(builderFile('layer/hash-thread.js'));
}
