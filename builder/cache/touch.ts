import { utimesSync } from 'node:fs';

/**
 * Marks a cache file as used at `time`: `cache prune` goes by mtimes (`--older-than`, and least
 * recently used first for `--max-size`). Failures are ignored: the file was pruned meanwhile or
 * the cache is read-only, and only its place in that order suffers.
 */
export function touch(path: string, time: Date = new Date()): void {
  try {
    utimesSync(path, time, time);
  } catch {
    // see above
  }
}
