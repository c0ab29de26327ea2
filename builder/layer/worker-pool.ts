import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ImgbuildError, LayerContentError, SpecError, StoreError } from '../errors.js';
import { LayerEntryError } from './errors.js';
import type { Compressor, LayerBlob, TarHeaderDefaults } from './types.js';

/**
 * Store layers written in worker threads: each worker walks, tars, hashes (and, for gzip, frames
 * and hands blocks to the libuv pool) one layer at a time, so the per-layer CPU work that used to
 * share the main thread runs on every core. Bytes do not change: a worker runs the same
 * `writeLayer(storeLayerEntries(...))` as the main thread would, into the same blob store (temp
 * file + rename), and a layer's bytes depend only on its paths and options.
 */

/** Set to `0` (or `false`) to write every layer on the main thread. */
export const WORKERS_ENV = 'IMGBUILD_WORKERS';

/** One store layer to write; everything in it crosses a thread boundary (structured clone). */
export interface StoreLayerJob {
  /** The layer's logical store paths. */
  paths: string[];
  /** Where each of `paths` is on this machine, same order (StoreSource objects cannot cross threads). */
  fsPaths: string[];
  storeDir: string;
  header: TarHeaderDefaults;
  compressor: Compressor;
  /** Root of the BlobStore the layer goes into. */
  blobRoot: string;
}

/** Main thread → worker. */
export type ToWorker = { type: 'write'; id: number; job: StoreLayerJob } | { type: 'abort'; id: number };
/** Worker → main thread. */
export type FromWorker = { type: 'done'; id: number; blob: LayerBlob } | { type: 'failed'; id: number; error: WireError };

/** An error as it crosses the thread boundary: structured clone keeps neither the class nor our fields. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** Set when the error was an ImgbuildError (its `code`), or a system error's code (`ENOSPC`). */
  code?: string;
  imgbuild?: boolean;
  hint?: string;
  fsPath?: string;
  entryPath?: string;
  paths?: string[];
  file?: string;
  field?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

/**
 * Whether a build writes its store layers in workers: the caller's choice when given, else not
 * when `IMGBUILD_WORKERS=0`, else when there is more than one store layer and more than one core
 * (one layer gains nothing from a thread and pays its start-up).
 */
export function layerWorkersWanted(
  option: boolean | undefined,
  storeLayers: number,
  env: NodeJS.ProcessEnv = process.env,
  cores: number = availableParallelism(),
): boolean {
  if (option !== undefined) return option;
  const v = env[WORKERS_ENV]?.trim().toLowerCase();
  if (v === '0' || v === 'false' || v === 'no' || v === 'off') return false;
  return storeLayers > 1 && cores > 1;
}

interface Waiter {
  resolve: (w: Worker) => void;
  reject: (err: unknown) => void;
}

/**
 * A pool of at most `size` layer workers, started lazily (a build whose layers all come from the
 * cache starts none). Idle workers are unref'd, so a forgotten pool cannot keep the process alive;
 * `close()` terminates them all and must be awaited at the end of a build.
 */
export class LayerWorkerPool {
  private readonly all = new Set<Worker>();
  private readonly idle: Worker[] = [];
  private readonly waiting: Waiter[] = [];
  private nextId = 1;
  private closed = false;
  private busy = 0;

  constructor(readonly size: number = availableParallelism()) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`worker pool size must be a positive integer, got ${size}`);
  }

  /** Workers started so far and still alive. */
  get started(): number {
    return this.all.size;
  }

  /** Whether a job given now would start at once instead of waiting for a worker. */
  get hasFreeWorker(): boolean {
    return !this.closed && this.busy < this.size;
  }

  /**
   * Write one store layer in a worker. Rejects with the worker's error re-created as the same
   * class (LayerContentError, StoreError, ...) and message. On abort the worker is told to stop,
   * and the promise rejects with an AbortError only once it has removed its temp file.
   */
  async writeStoreLayer(job: StoreLayerJob, signal?: AbortSignal): Promise<LayerBlob> {
    signal?.throwIfAborted();
    this.busy++;
    try {
      const worker = await this.acquire(signal);
      try {
        return await this.run(worker, job, signal);
      } finally {
        this.release(worker);
      }
    } finally {
      this.busy--;
    }
  }

  /** Terminates every worker; jobs still waiting for one are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(new Error('layer worker pool closed'));
    const workers = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private acquire(signal: AbortSignal | undefined): Promise<Worker> {
    if (this.closed) return Promise.reject(new Error('layer worker pool closed'));
    const ready = this.idle.pop();
    if (ready) return Promise.resolve(ready);
    if (this.all.size < this.size) return Promise.resolve(this.spawn());
    return new Promise<Worker>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(abortError(signal));
      };
      const waiter: Waiter = {
        resolve: (w) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(w);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private release(worker: Worker): void {
    worker.unref();
    if (this.closed) return;
    const alive = this.all.has(worker);
    const next = this.waiting.shift();
    if (next) next.resolve(alive ? worker : this.spawn());
    else if (alive) this.idle.push(worker);
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./layer-worker.js', import.meta.url));
    worker.unref();
    this.all.add(worker);
    worker.once('exit', () => {
      this.all.delete(worker);
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
    });
    // A crash is reported to the job it interrupts (run's listener); this keeps it from being unhandled.
    worker.on('error', () => undefined);
    return worker;
  }

  private run(worker: Worker, job: StoreLayerJob, signal: AbortSignal | undefined): Promise<LayerBlob> {
    const id = this.nextId++;
    return new Promise<LayerBlob>((resolve, reject) => {
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
      };
      const onMessage = (m: FromWorker) => {
        if (m.id !== id) return;
        cleanup();
        if (m.type === 'done') resolve(m.blob);
        else reject(reviveError(m.error, signal));
      };
      const onError = (err: unknown) => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`layer worker exited with code ${code} while writing a layer of ${job.paths.length} store path(s)`));
      };
      // The worker aborts its write, removes its temp file, then answers with an AbortError.
      const onAbort = () => worker.postMessage({ type: 'abort', id } satisfies ToWorker);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      // Ref'd while it works: a build awaiting a layer must keep the process alive.
      worker.ref();
      worker.postMessage({ type: 'write', id, job } satisfies ToWorker);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** An error for the wire: name, message, stack and the fields our error classes carry. */
export function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const e = err as Error & Record<string, unknown>;
  const wire: WireError = { name: err.name, message: err.message, stack: err.stack };
  if (err instanceof ImgbuildError) wire.imgbuild = true;
  for (const k of ['code', 'hint', 'fsPath', 'entryPath', 'file', 'field', 'syscall', 'path'] as const) {
    if (typeof e[k] === 'string') wire[k] = e[k];
  }
  if (typeof e.errno === 'number') wire.errno = e.errno;
  if (Array.isArray(e.paths) && e.paths.every((p) => typeof p === 'string')) wire.paths = e.paths as string[];
  return wire;
}

/** The error a worker reported, as the class it was thrown as, with the same message and fields. */
export function reviveError(w: WireError, signal?: AbortSignal): Error {
  let err: Error;
  if (w.name === 'AbortError') {
    err = abortError(signal, w.message);
  } else if (w.imgbuild) {
    err = reviveImgbuildError(w);
  } else {
    err = new Error(w.message);
    if (w.name !== 'Error') err.name = w.name;
    const sys = err as Error & { code?: string; errno?: number; syscall?: string; path?: string };
    if (w.code !== undefined) sys.code = w.code;
    if (w.errno !== undefined) sys.errno = w.errno;
    if (w.syscall !== undefined) sys.syscall = w.syscall;
    if (w.path !== undefined) sys.path = w.path;
  }
  // The worker's frames say where it failed; ours would only show the message handler.
  if (w.stack) err.stack = w.stack;
  return err;
}

function reviveImgbuildError(w: WireError): ImgbuildError {
  let err: ImgbuildError;
  switch (w.name) {
    case 'LayerContentError':
      return new LayerContentError(w.message, w.fsPath ?? '', w.hint);
    case 'LayerEntryError':
      return new LayerEntryError(w.message, w.entryPath, w.hint);
    case 'StoreError':
      return new StoreError(w.message, w.paths ?? [], w.hint);
    case 'SpecError':
      err = new SpecError(w.file ?? '', w.field, w.message, w.hint);
      // The constructor prefixes file and field; the message already has them.
      err.message = w.message;
      return err;
    default:
      // Another ImgbuildError subclass: same code, message, hint and name; not the same class.
      err = new ImgbuildError(w.code ?? 'error', w.message, w.hint);
      err.name = w.name;
      return err;
  }
}

/** An AbortError, as Node's stream pipeline gives one (name, code), caused by the signal's reason. */
function abortError(signal: AbortSignal | undefined, message = 'The operation was aborted'): Error {
  const err = new Error(message, signal ? { cause: signal.reason } : undefined);
  err.name = 'AbortError';
  (err as Error & { code: string }).code = 'ABORT_ERR';
  return err;
}
