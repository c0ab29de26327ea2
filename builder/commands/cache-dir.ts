import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * imgbuild's cache root: `$IMGBUILD_CACHE_DIR`, else `$XDG_CACHE_HOME/imgbuild`, else
 * `~/.cache/imgbuild` (XDG base directory rules). Blobs live in `<root>/blobs/sha256/`.
 */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IMGBUILD_CACHE_DIR) return env.IMGBUILD_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'imgbuild');
  return join(homedir(), '.cache', 'imgbuild');
}

/**
 * The cache's record of where blobs were pushed, for a push to mount them from there (loaded
 * only by the commands that push).
 */
export async function cliBlobLocations(env: NodeJS.ProcessEnv = process.env): Promise<import('../transports/registry.js').BlobLocations> {
  const { BlobLocationStore } = await import('../cache/blob-locations.js');
  return BlobLocationStore.inCache(cacheRoot(env));
}
