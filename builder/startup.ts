import * as nodeModule from 'node:module';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { cacheRoot } from './commands/cache-dir.js';

/** Where the CLI keeps Node's compile cache: `compile/` in imgbuild's cache dir. */
export function compileCacheDir(env: NodeJS.ProcessEnv): string {
  return join(cacheRoot(env), 'compile');
}

/**
 * Turns on Node's on-disk compile cache (`module.enableCompileCache`, Node ≥ 22.1) in the CLI's
 * cache dir, unless NODE_COMPILE_CACHE already chose one or NODE_DISABLE_COMPILE_CACHE is set.
 * A Node without it, or a cache dir that cannot be written, only means no cache: never an error
 * (Node reports a failure in its return value and carries on).
 */
export function enableCompileCache(env: NodeJS.ProcessEnv): void {
  const enable = (nodeModule as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
  if (typeof enable !== 'function' || env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE) return;
  try {
    enable(compileCacheDir(env));
  } catch {
    // A cache is an optimisation: carry on without it.
  }
}

/**
 * How much the JS heap may grow past what a full garbage collection left before the next one:
 * 50%. V8 lets it grow up to 4× when its collections are cheap, so a cold build of 50,000 tiny
 * store paths carried ~40-50 MiB of dead objects in old space (a full collection took its main
 * thread's heap from 89 to 41 MiB, the first since start-up) at its peak: 193-217 MiB there
 * against 185-187 MiB with the limit, and no CPU measured beside the run-to-run noise
 * (bench/README.md). Set by the CLI for `build` (a process-wide V8 flag, read at each full
 * collection): the library leaves the process's flags alone.
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * Sets HEAP_GROWING_PERCENT, for `build`: the only V8 flag set at run time. Any flag set then
 * changes V8's flag hash, and a code cache made under another hash is rejected: from then on every
 * Node built-in the process loads is compiled from its source instead of from the code cache
 * embedded in Node (~7 ms of CPU for node:http, node:crypto and node:fs/promises, on Node 20, 22
 * and 24 alike; bench/README.md, branch i19-pushstart). The other commands once kept WebAssembly
 * on Liftoff (`--liftoff-only`, `--wasm-tiering-budget`) for undici's HTTP parser; the registry
 * client's HTTP is its own JavaScript now, and what runs wasm at length (zstd on Node 20, xz NARs)
 * runs under build, verify, sbom, closure, plan and add, which never set those.
 *
 * So the CLI sets it once build's command is loaded (cli.ts preAction), not as the process starts:
 * a thread started before it (the early build worker) then takes Node's code caches for its own
 * start-up (~45–60 ms to a ready worker, against ~75–100 ms with the flag set), and so do the
 * built-ins the command loads. Nothing of size is allocated before it, so the heap's peak is the same.
 */
export function limitHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
