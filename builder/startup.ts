import * as nodeModule from 'node:module';
import { join } from 'node:path';
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
