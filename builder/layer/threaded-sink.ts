import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { builderFile } from '../install-paths.js';
import type { BlobSink, SinkResult } from './blob-sinks.js';

/**
 * An uncompressed layer written to its temp file (`fd`) with its sha256 and its writes on a thread
 * of their own (hash-thread.ts), while this thread makes the tar: a big layer written here from
 * memory (a store path the scan handed over whole) was ~0.6 s of tar, hash and writes on one core
 * with the other idle. The bytes and digest are PlainSink's; only where the work runs differs.
 *
 * A layer's first THREAD_FROM bytes are only kept: a smaller layer never starts the thread, and
 * is hashed and written here at `finish`. Past them the thread starts, is given those bytes, and
 * then each buffer of BUFFER_BYTES as it fills (transferred, and transferred back once written:
 * at most MAX_BUFFERS exist; the tar waits while all are out). A failure of the thread's (ENOSPC)
 * is thrown by the next `write` or by `finish`; `abandon` ends the thread, and resolves once it
 * has (so the file is not closed under a write).
 */
export class ThreadedPlainSink implements BlobSink {
  private size = 0;
  private worker: Worker | undefined;
  private exited: Promise<void> | undefined;
  /** Full buffers not yet given to the thread (before it starts: the layer's first bytes). */
  private readonly queued: Array<{ buf: ArrayBuffer; length: number }> = [];
  private readonly free: ArrayBuffer[] = [];
  private made = 0;
  private current: Buffer | undefined;
  private filled = 0;
  private failure: Error | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private digested: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;

  constructor(
    private readonly fd: number,
    private readonly start: (fd: number) => Worker = startHashThread,
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

  /** Waits for a buffer back from the thread, then writes the rest (counted already). */
  private async roomThen(rest: Buffer): Promise<void> {
    await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
    this.size -= rest.length;
    await this.write(rest);
  }

  private take(): Buffer | undefined {
    const buf = this.free.pop() ?? (this.made < MAX_BUFFERS ? (this.made++, new ArrayBuffer(BUFFER_BYTES)) : undefined);
    return buf ? Buffer.from(buf) : undefined;
  }

  /** The current buffer, full or last, to the thread (started once the layer passes THREAD_FROM, not by its last buffer). */
  private queue(last = false): void {
    this.queued.push({ buf: this.current!.buffer as ArrayBuffer, length: this.filled });
    this.current = undefined;
    this.filled = 0;
    if (!this.worker && !last && this.queued.length * BUFFER_BYTES >= THREAD_FROM) this.startThread();
    if (this.worker) for (const m of this.queued.splice(0)) this.worker.postMessage(m, [m.buf]);
  }

  private startThread(): void {
    const worker = (this.worker = this.start(this.fd));
    hashThreads.started++;
    hashThreads.running++;
    this.exited = new Promise((resolve) =>
      worker.once('exit', () => {
        hashThreads.running--;
        if (!this.stopping) this.fail(new Error('layer write: the hashing thread ended'));
        resolve();
      }),
    );
    worker.on('message', (m: { buf?: ArrayBuffer; digest?: string; error?: { message: string; code?: string; errno?: number; syscall?: string } }) => {
      if (m.buf) this.free.push(m.buf);
      else if (m.digest !== undefined) this.digested?.resolve(m.digest);
      else if (m.error) this.fail(Object.assign(new Error(m.error.message), m.error));
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    });
    worker.once('error', (err) => this.fail(err));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.digested?.reject(this.failure);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async finish(): Promise<SinkResult> {
    if (this.failure) throw this.failure;
    if (this.filled > 0) this.queue(true);
    let hex: string;
    if (!this.worker) {
      // A small layer: hashed and written here, as PlainSink does.
      const hash = createHash('sha256');
      let position = 0;
      for (const { buf, length } of this.queued) {
        const bytes = new Uint8Array(buf, 0, length);
        hash.update(bytes);
        let off = 0;
        while (off < length) off += writeSync(this.fd, bytes, off, length - off, position + off);
        position += length;
      }
      hex = hash.digest('hex');
    } else {
      const digest = new Promise<string>((resolve, reject) => (this.digested = { resolve, reject }));
      this.worker.postMessage({ end: true });
      hex = await digest;
      await this.stop();
    }
    const digest = `sha256:${hex}` as const;
    return { digest, diffId: digest, size: this.size, uncompressedSize: this.size };
  }

  /** Ends the thread (its write in progress done first); resolves once it has. */
  async abandon(): Promise<void> {
    this.failure ??= new Error('layer write abandoned');
    await this.stop();
  }

  private async stop(): Promise<void> {
    if (!this.worker) return;
    this.stopping = true;
    void this.worker.terminate();
    await this.exited;
  }
}

/** Hash threads started, and running now (read by tests). */
export const hashThreads = { started: 0, running: 0 };

/** Bytes of a layer kept before the thread starts (a smaller layer never starts it). */
export const THREAD_FROM = 8 * 1024 * 1024;
/** Bytes per buffer handed to the thread. */
const BUFFER_BYTES = 1024 * 1024;
/** Buffers at most (the first THREAD_FROM bytes', and a few more while the thread works). */
const MAX_BUFFERS = THREAD_FROM / BUFFER_BYTES + 4;

function startHashThread(fd: number): Worker {
  return new Worker(builderFile('layer/hash-thread.js'), { workerData: { fd } });
}
