import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { LayerBlob } from '../layer/types.js';
import { SHARED_KEY, SharedValue } from '../store/shared-value.js';
import type { JobKind, Jobs, StoreLayerJob } from './jobs.js';
import { abortError, reviveError, type WireError } from './wire-error.js';
import { newBuildWorker, workersOff } from './options.js';

/**
 * A build's work in worker threads: a directory store's paths (fingerprint walk, reference scan)
 * and store layers (each worker walks, tars, hashes and, for gzip, frames and hands blocks to the
 * libuv pool, one layer at a time), so the per-path and per-layer CPU work runs on every core. Bytes do not change: a worker runs the same code as the main thread would
 * (`writeLayer(storeLayerEntries(...))` into the same blob store, temp file + rename), and a
 * layer's bytes depend only on its paths and options.
 */


/**
 * Main thread → worker. `progress`: the caller wants the job's progress reports. `share`: a
 * SharedValue's value, sent before the first job naming it; such a job's field then crosses as
 * `{ [SHARED_KEY]: key }`.
 */
export type ToWorker =
  | { type: 'run'; id: number; kind: JobKind; job: Jobs[JobKind]['job']; progress?: boolean }
  | { type: 'abort'; id: number }
  | { type: 'share'; key: string; value: unknown };
/** Worker → main thread: a result, or (when asked for) a progress report (a layer's tar bytes so far; throttled in the worker). */
export type FromWorker =
  | { type: 'done'; id: number; result: Jobs[JobKind]['result'] }
  | { type: 'failed'; id: number; error: WireError }
  | { type: 'progress'; id: number; value: number };

/**
 * Whether a build spreads `jobs` independent jobs (store layers, paths to scan) over workers: the
 * caller's choice when given, else not when `IMGBUILD_WORKERS=0`, else when there is more than
 * one job and more than one core (one job gains nothing from a thread and pays its start-up).
 */
export function workersWanted(
  option: boolean | undefined,
  jobs: number,
  env: Readonly<Record<string, string | undefined>>,
  cores: number = availableParallelism(),
): boolean {
  if (option !== undefined) return option;
  if (workersOff(env)) return false;
  return jobs > 1 && cores > 1;
}

interface Waiter {
  resolve: (w: Worker) => void;
  reject: (err: unknown) => void;
}

/**
 * A pool of at most `size` build workers, started lazily (a build whose layers all come from the
 * cache starts none). Idle workers are unref'd, so a forgotten pool cannot keep the process alive;
 * `close()` terminates them all and must be awaited at the end of a build.
 */
export class BuildWorkerPool {
  private readonly all = new Set<Worker>();
  private readonly idle: Worker[] = [];
  private readonly waiting: Waiter[] = [];
  private nextId = 1;
  private closed = false;
  private busy = 0;
  /** Keys of the SharedValues each worker holds. */
  private readonly sent = new WeakMap<Worker, Set<string>>();

  /**
   * `startedWorker`: a worker of this pool's script already started by the caller (the
   * executable starts one as it loads, commands/early-worker.ts), asked each time the pool would
   * start one; it gives each worker once, and undefined when it has none (left).
   */
  constructor(
    readonly size: number = availableParallelism(),
    private readonly startedWorker?: () => Worker | undefined,
  ) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`worker pool size must be a positive integer, got ${size}`);
  }

  /** Workers started so far and still alive. */
  get started(): number {
    return this.all.size;
  }

  /** Whether close() was called: no job will run any more. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Whether a job given now would start at once instead of waiting for a worker. */
  get hasFreeWorker(): boolean {
    return !this.closed && this.busy < this.size;
  }

  /** Write one store layer in a worker (see `run`); `onProgress` hears its tar bytes so far. */
  writeStoreLayer(job: StoreLayerJob, signal?: AbortSignal, onProgress?: (tarBytes: number) => void): Promise<LayerBlob> {
    return this.run('write-store-layer', job, signal, onProgress);
  }

  /**
   * Run one job in a worker. Rejects with the worker's error re-created as the same class
   * (LayerContentError, StoreError, ...) and message. On abort the worker is told to stop, and
   * the promise rejects with an AbortError only once the job has cleaned up (temp files).
   * `onProgress` hears the job's progress reports (a store layer's tar bytes), if it makes any.
   */
  async run<K extends JobKind>(kind: K, job: Jobs[K]['job'], signal?: AbortSignal, onProgress?: (value: number) => void): Promise<Jobs[K]['result']> {
    signal?.throwIfAborted();
    this.busy++;
    try {
      const worker = await this.acquire(signal);
      try {
        return (await this.runOn(worker, kind, job, signal, onProgress)) as Jobs[K]['result'];
      } finally {
        this.release(worker);
      }
    } finally {
      this.busy--;
    }
  }

  /**
   * Jobs sent to each worker taken by runQueued and not yet answered: the worker runs them one
   * after the other (worker.ts), so the next is there when it finishes one.
   */
  private readonly queued = new Map<Worker, number>();

  /**
   * `run` for jobs that may wait in a busy worker behind the one it is doing, up to `depth` a
   * worker (a free worker first); undefined when every worker has that many. A worker answers
   * a job, then starts the next without waiting for this thread to read the answer and send
   * another: a thread busy with its own work reads it only every few milliseconds, and a
   * directory store's scan worker idled ~20% of a closure of tiny paths waiting so.
   */
  runQueued<K extends JobKind>(kind: K, job: Jobs[K]['job'], signal?: AbortSignal, depth = 2): Promise<Jobs[K]['result']> | undefined {
    if (this.closed) return undefined;
    // As `run` does: rejected, not thrown (the caller settles its other jobs first).
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    // A free worker, taken at once (so that the next call can queue behind it).
    const free = this.busy < this.size ? (this.idle.pop() ?? (this.all.size < this.size ? this.spawn() : undefined)) : undefined;
    if (free) {
      this.busy++;
      return this.runQueuedOn(free, kind, job, signal);
    }
    for (const [worker, n] of this.queued) if (n < depth) return this.runQueuedOn(worker, kind, job, signal);
    return undefined;
  }

  private async runQueuedOn<K extends JobKind>(worker: Worker, kind: K, job: Jobs[K]['job'], signal: AbortSignal | undefined): Promise<Jobs[K]['result']> {
    this.queued.set(worker, (this.queued.get(worker) ?? 0) + 1);
    try {
      return (await this.runOn(worker, kind, job, signal, undefined)) as Jobs[K]['result'];
    } finally {
      const left = (this.queued.get(worker) ?? 1) - 1;
      if (left > 0) this.queued.set(worker, left);
      else if (this.queued.delete(worker)) {
        // Its last queued job answered: free for any job again.
        this.release(worker);
        this.busy--;
      }
    }
  }

  /** Terminates every worker; jobs still waiting for one are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    this.queued.clear();
    for (const w of this.waiting.splice(0)) w.reject(new Error('build worker pool closed'));
    const workers = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private acquire(signal: AbortSignal | undefined): Promise<Worker> {
    if (this.closed) return Promise.reject(new Error('build worker pool closed'));
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
    const worker = this.startedWorker?.() ?? newBuildWorker();
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

  /** `job` with each SharedValue field replaced by its key, the value sent first if the worker lacks it. */
  private withShares(worker: Worker, job: Jobs[JobKind]['job']): Jobs[JobKind]['job'] {
    let out: Record<string, unknown> | undefined;
    for (const [field, v] of Object.entries(job)) {
      if (!(v instanceof SharedValue)) continue;
      let keys = this.sent.get(worker);
      if (!keys) this.sent.set(worker, (keys = new Set()));
      if (!keys.has(v.key)) {
        worker.postMessage({ type: 'share', key: v.key, value: v.value } satisfies ToWorker);
        keys.add(v.key);
      }
      (out ??= { ...job })[field] = { [SHARED_KEY]: v.key };
    }
    return (out ?? job) as Jobs[JobKind]['job'];
  }

  private runOn(worker: Worker, kind: JobKind, job: Jobs[JobKind]['job'], signal: AbortSignal | undefined, onProgress: ((value: number) => void) | undefined): Promise<Jobs[JobKind]['result']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
      };
      const onMessage = (m: FromWorker) => {
        if (m.id !== id) return;
        if (m.type === 'progress') {
          onProgress?.(m.value);
          return;
        }
        cleanup();
        if (m.type === 'done') resolve(m.result);
        else reject(reviveError(m.error, signal));
      };
      const onError = (err: unknown) => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`build worker exited with code ${code} during a ${kind} job`));
      };
      // The worker aborts its write, removes its temp file, then answers with an AbortError.
      const onAbort = () => worker.postMessage({ type: 'abort', id } satisfies ToWorker);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      // Ref'd while it works: a build awaiting a layer must keep the process alive.
      worker.ref();
      worker.postMessage({ type: 'run', id, kind, job: this.withShares(worker, job), ...(onProgress ? { progress: true } : {}) } satisfies ToWorker);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

