/**
 * What starts a build worker, apart from the pool: the executable starts one before the build
 * command has loaded (commands/early-worker.ts), and must start it exactly as the pool would.
 * Nothing here imports anything, so that the executable's own bundle stays small.
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
