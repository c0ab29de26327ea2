import { hostArchitecture } from '../spec/platform.js';
import type { BuildContext } from '../build/context.js';
import { cacheRoot } from './cache-dir.js';
import { workersOff } from '../workers/options.js';

/**
 * The build context the CLI gives the library: the cache root and the environment (SOURCE_DATE_EPOCH,
 * IMGBUILD_*), read here, once, from the process — the library reads none of it itself.
 */
export function cliBuildContext(extra: Partial<BuildContext> = {}): BuildContext {
  const env = process.env;
  const noWorkers = workersOff(env);
  return {
    cacheDir: cacheRoot(env),
    env,
    ...(noWorkers ? { workers: false } : {}),
    warn: (message) => process.stderr.write(`${message}\n`),
    ...extra,
  };
}

/** The platform picked from a multi-platform image when a command is not told: this machine's. */
export function hostPlatform(): { os: string; architecture: string } {
  return { os: 'linux', architecture: hostArchitecture() };
}
