import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface PruneOptions {
  /** Keep at most this many bytes of blobs, dropping the least recently used first. */
  maxSize?: number;
  /** Drop blobs and records not used for this long (milliseconds). */
  olderThanMs?: number;
  /** "Now", for tests; default the clock. */
  now?: number;
}

export interface PruneResult {
  removedBlobs: number;
  freedBytes: number;
  removedRecords: number;
  /** Temp files left by builds that died (older than a day). */
  removedTemps: number;
  keptBlobs: number;
  keptBytes: number;
}

/** A temp file this old belongs to a build that died: no build runs for a day. */
const STALE_TEMP_MS = 24 * 3600 * 1000;

interface FileInfo {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
}

async function files(dir: string): Promise<FileInfo[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: FileInfo[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile()) out.push({ path, name, size: st.size, mtimeMs: st.mtimeMs });
  }
  return out;
}

/**
 * Bounds the cache under `root` (`<root>/blobs/sha256`, `<root>/layers`, `<root>/scan`). Blobs are
 * ordered by mtime, which a cache hit sets to the time of use (LRU): those unused for
 * `olderThanMs` go, then the oldest until at most `maxSize` bytes remain. Layer records whose
 * blob is gone, records unused for `olderThanMs`, and temp files older than a day go too.
 *
 * A build running at the same time keeps working unless it needs a blob pruned between its cache
 * lookup and its output (then it fails with the missing file; run it again): prune between builds.
 */
export async function pruneCache(root: string, options: PruneOptions = {}): Promise<PruneResult> {
  const now = options.now ?? Date.now();
  const result: PruneResult = { removedBlobs: 0, freedBytes: 0, removedRecords: 0, removedTemps: 0, keptBlobs: 0, keptBytes: 0 };
  const remove = async (path: string) => rm(path, { force: true });
  const old = (f: FileInfo) => options.olderThanMs !== undefined && now - f.mtimeMs > options.olderThanMs;

  // Blobs, least recently used first.
  const blobDir = join(root, 'blobs', 'sha256');
  const blobs: FileInfo[] = [];
  for (const f of await files(blobDir)) {
    if (/^[0-9a-f]{64}$/.test(f.name)) blobs.push(f);
    else if (f.name.startsWith('.tmp-') && now - f.mtimeMs > STALE_TEMP_MS) {
      await remove(f.path);
      result.removedTemps++;
    }
  }
  blobs.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
  let total = blobs.reduce((s, b) => s + b.size, 0);
  const kept = new Set<string>();
  for (const b of blobs) {
    if (old(b) || (options.maxSize !== undefined && total > options.maxSize)) {
      await remove(b.path);
      total -= b.size;
      result.removedBlobs++;
      result.freedBytes += b.size;
    } else kept.add(`sha256:${b.name}`);
  }
  result.keptBlobs = kept.size;
  result.keptBytes = total;

  // Layer records: useless once their blob is gone.
  const layerDir = join(root, 'layers');
  for (const sub of await readdir(layerDir).catch(() => [] as string[])) {
    for (const f of await files(join(layerDir, sub))) {
      if (f.name.endsWith('.tmp')) {
        if (now - f.mtimeMs > STALE_TEMP_MS) {
          await remove(f.path);
          result.removedTemps++;
        }
        continue;
      }
      const digest = await readFile(f.path, 'utf8').then((t) => (JSON.parse(t) as { blob?: { digest?: string } }).blob?.digest, () => undefined);
      if (old(f) || digest === undefined || !kept.has(digest)) {
        await remove(f.path);
        result.removedRecords++;
      }
    }
  }

  // Scan records (the directory source's reference scans) unused for olderThanMs.
  for (const f of await files(join(root, 'scan'))) {
    if (old(f) || (f.name.endsWith('.tmp') && now - f.mtimeMs > STALE_TEMP_MS)) {
      await remove(f.path);
      result.removedRecords++;
    }
  }
  return result;
}
