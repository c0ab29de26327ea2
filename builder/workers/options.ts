import { Worker } from 'node:worker_threads';
import { threadScript, WORKER_BUNDLE } from '../install-paths.js';

/**
 * How a build worker is started: by the pool, and by the executable before the build command
 * has loaded (commands/early-worker.ts), which must start it exactly as the pool would. Nothing
 * here imports more than that, so that the executable's own bundle stays small.
 */

/** Set to `0` (or `false`, `no`, `off`) to do all of a build's work on the main thread. */
export const WORKERS_ENV = 'IMGBUILD_WORKERS';

/** Whether the environment turns build workers off (WORKERS_ENV). */
export function workersOff(env: Readonly<Record<string, string | undefined>>): boolean {
  const v = env[WORKERS_ENV]?.trim().toLowerCase();
  return v === '0' || v === 'false' || v === 'no' || v === 'off';
}

/**
 * A worker's young generation is capped (V8's default lets it grow to ~48 MiB): what a worker
 * keeps between jobs is small, and a scan worker's heap reached ~44 MiB of garbage in a closure
 * of 50,000 tiny paths, ~21 MiB with this cap (v8.getHeapStatistics in the worker), for no more
 * CPU. Buffers (file and deflate data) live outside the V8 heap and are not affected.
 */
export const WORKER_OPTIONS = { resourceLimits: { maxYoungGenerationSizeMb: 12 } } as const;

/** A new build worker thread: the worker script with WORKER_OPTIONS. */
export function newBuildWorker(): Worker {
  return new Worker(threadScript(WORKER_BUNDLE, 'workers/worker.js'), WORKER_OPTIONS);
}
