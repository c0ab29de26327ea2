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
 * Commands whose work can run WebAssembly for long: zstd compression on a Node without
 * node:zlib's zstd, xz NARs from a binary cache. Any other command runs wasm briefly if at
 * all (the registry client's HTTP is node:http now; undici's llhttp, as wasm, cost a push ~0.1 s
 * of V8's background TurboFan recompilation that the process then waited for at exit):
 * Liftoff's baseline code is plenty there.
 */
export const RUNS_WASM_AT_LENGTH: ReadonlySet<string> = new Set(['build', 'verify', 'sbom', 'closure', 'plan', 'add']);

/**
 * Keeps wasm on Liftoff's baseline code, for a command not in RUNS_WASM_AT_LENGTH. The bin sets
 * these before it compiles a command's own bundle as the CLI sets them before the command runs:
 * V8 keys a code cache by its flags, so a cache made after the CLI set them is only accepted by
 * a process that set them before compiling (code-cache.ts).
 */
export function limitWasmTiering(): void {
  setFlagsFromString('--liftoff-only');
  // Node 24's V8 ignores --liftoff-only set at run time (a no-op push kept its ~50 ms of CPU
  // and ~20 MiB of RSS); a tier-up budget no function reaches does the same there, and is
  // known to Node 20 and 22 too (an unknown flag would print an error).
  setFlagsFromString('--wasm-tiering-budget=2000000000');
}

/**
 * For a short command that allocates little (push): the young generation grows to its full size
 * at the first scavenge that grows it, not by doubling. A push's module graph and code cache are
 * mostly long-lived, so every scavenge of a small young generation copies nearly all it holds: an
 * uploading push of a small image scavenged 4 times (~5 ms of CPU), now 2. Set at run time: V8
 * reads the factor each time it grows the space, while the space's initial size is fixed when the
 * process starts. Only the space's upper bound is committed (untouched pages cost no memory); a
 * build, whose heap is busy for long, keeps V8's default.
 */
export function growYoungGenerationAtOnce(): void {
  setFlagsFromString('--semi-space-growth-factor=16');
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

export function limitHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
