import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ImgbuildError } from '../errors.js';
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
  const cacheDir = cacheRoot(env);
  checkCacheDir(cacheDir, env);
  return {
    cacheDir,
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

/**
 * The cache root must be a directory, or not be there yet (it is made): one that is a file (or
 * under one), failed at the first layer written with the file system's `ENOTDIR: not a
 * directory, mkdir '…/blobs/sha256'`, naming neither the variable nor the file. Named by
 * IMGBUILD_CACHE_DIR, that is a usage error (a bad value, as a bad duration in IMGBUILD_*).
 */
export function checkCacheDir(root: string, env: NodeJS.ProcessEnv = process.env): void {
  for (let p = resolve(root); ; p = dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Not there yet (made by the first write), or under a file: the loop finds the file.
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dirname(p) !== p) continue;
      return; // anything else is said where the cache is written
    }
    if (isDir) return;
    const named = env.IMGBUILD_CACHE_DIR ? `IMGBUILD_CACHE_DIR ${root}` : `the cache directory ${root}`;
    const where = p === resolve(root) ? 'is not a directory' : `is under ${p}, which is not a directory`;
    throw new ImgbuildError(env.IMGBUILD_CACHE_DIR ? 'usage' : 'file', `${named} ${where}`, `point IMGBUILD_CACHE_DIR at a directory (made when missing)${env.IMGBUILD_CACHE_DIR ? '' : ', or move that file away'}`);
  }
}
