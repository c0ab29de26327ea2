import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { validRecord } from './layer-cache.js';
import { isStaleTemp, tempOwnerPid } from '../fs/atomic-write.js';

export interface PruneOptions {
  /** Keep at most this many bytes of blobs, dropping the least recently used first. */
  maxSize?: number;
  /** Drop blobs, layer records and scan records not used for this long (milliseconds); 0 drops them all. */
  olderThanMs?: number;
  /** "Now", for tests; default the clock. */
  now?: number;
}

/** How many files, and their bytes. */
export interface Tally {
  count: number;
  bytes: number;
}

/**
 * What a prune removed, by kind and reason (the option that asked for it), and what it kept.
 * Every field is always present; `imgbuild cache prune --json` prints this object.
 */
export interface PruneResult {
  removed: {
    blobs: { olderThan: Tally; maxSize: Tally };
    /** `unreadable`: not JSON, not the layer record its file name says, or without its checksum (a build would ignore it). */
    layerRecords: { olderThan: Tally; unreadable: Tally };
    scanRecords: { olderThan: Tally };
    /** Temp files left by builds that died: their process is gone (and they were not written to for a minute), or older than a day. */
    tempFiles: { stale: Tally };
  };
  kept: { blobs: Tally; layerRecords: Tally; scanRecords: Tally };
}

/**
 * A blob used this recently is never removed for --max-size: a build running beside the prune
 * looked it up, and is about to hash it and link or read it (a build makes a blob removed under
 * it again from the store, but an output may be linking it). --older-than removes what it is told.
 */
export const IN_USE_MS = 60 * 1000;

/** A temp file this old belongs to a build that died: no build runs for a day. */
const STALE_TEMP_MS = 24 * 3600 * 1000;

/**
 * A temp file whose process is gone is left alone this long after its last write: a build in
 * another pid namespace (a container sharing the cache) has a pid this one cannot see, and a
 * running writer writes more often than this.
 */
const DEAD_WRITER_GRACE_MS = 60 * 1000;

/**
 * Whether a cache file name is a temp file: the blob store's `.tmp-<pid>-<hex>`, the registry
 * client's pulls `<hex>.tmp-<pid>-<hex>`, fs/atomic-write.ts's `.<name>.tmp-<pid>-<hex>`, and
 * the older records' `<name>.<pid>[.-]<x>.tmp`.
 */
export function isTempName(name: string): boolean {
  return tempOwnerPid(name) !== undefined || name.endsWith('.tmp') || name.startsWith('.tmp-');
}

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

const tally = (): Tally => ({ count: 0, bytes: 0 });

/**
 * Bounds the cache under `root` (`<root>/blobs/sha256`, `<root>/layers`, `<root>/scan`). Blobs are
 * ordered by mtime, which a cache hit sets to the time of use (LRU): those unused for
 * `olderThanMs` go, then the oldest until at most `maxSize` bytes remain. Layer records go only
 * when unused for `olderThanMs` (a hit touches them too) or unreadable: never because their blob
 * is gone, since a record alone still spares a push its work (the CI recipe keeps records, not
 * blobs) and costs a few hundred bytes. Scan records go when older than `olderThanMs`. Temp files
 * go when the process named in them is gone (a build killed with SIGKILL) and they were not
 * written to for a minute, or when older than a day. With no option, only unreadable records and
 * stale temp files go.
 *
 * A build running at the same time keeps working: --max-size never removes a blob used within
 * the last minute (IN_USE_MS; the cache may then stay above the bound until the next prune), and
 * a build whose blob is removed after its lookup makes it again from the store
 * (cache/layer-source.ts). --older-than removes what it names (`0s`: everything).
 */
export async function pruneCache(root: string, options: PruneOptions = {}): Promise<PruneResult> {
  const now = options.now ?? Date.now();
  const removed: PruneResult['removed'] = {
    blobs: { olderThan: tally(), maxSize: tally() },
    layerRecords: { olderThan: tally(), unreadable: tally() },
    scanRecords: { olderThan: tally() },
    tempFiles: { stale: tally() },
  };
  const kept: PruneResult['kept'] = { blobs: tally(), layerRecords: tally(), scanRecords: tally() };
  const count = (t: Tally, f: FileInfo) => {
    t.count++;
    t.bytes += f.size;
  };
  const remove = async (f: FileInfo, t: Tally) => {
    await rm(f.path, { force: true });
    count(t, f);
  };
  // `>=`, so that `--older-than 0s` empties the cache.
  const old = (f: FileInfo) => options.olderThanMs !== undefined && now - f.mtimeMs >= options.olderThanMs;
  /** Removes a temp file left by a build that died; returns the bytes of one that stays (a running build's). */
  const staleTemp = async (f: FileInfo): Promise<number> => {
    const age = now - f.mtimeMs;
    if (age > STALE_TEMP_MS || (age >= DEAD_WRITER_GRACE_MS && isStaleTemp(f.name))) {
      await remove(f, removed.tempFiles.stale);
      return 0;
    }
    return f.size;
  };

  // Blobs, least recently used first. The temp files of running builds count toward --max-size
  // (they are blobs about to be), so the bound holds once they are committed.
  const blobs: FileInfo[] = [];
  let inFlight = 0;
  for (const f of await files(join(root, 'blobs', 'sha256'))) {
    if (/^[0-9a-f]{64}$/.test(f.name)) blobs.push(f);
    else if (isTempName(f.name)) inFlight += await staleTemp(f);
  }
  blobs.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
  let total = inFlight + blobs.reduce((s, b) => s + b.size, 0);
  for (const b of blobs) {
    const inUse = now - b.mtimeMs < IN_USE_MS;
    const reason = old(b) ? removed.blobs.olderThan : options.maxSize !== undefined && total > options.maxSize && !inUse ? removed.blobs.maxSize : undefined;
    if (reason) {
      await remove(b, reason);
      total -= b.size;
    } else count(kept.blobs, b);
  }

  // Layer records: kept whether or not their blob is here.
  const layerDir = join(root, 'layers');
  for (const sub of await readdir(layerDir).catch(() => [] as string[])) {
    for (const f of await files(join(layerDir, sub))) {
      if (isTempName(f.name)) await staleTemp(f);
      else if (!(await readableRecord(f))) await remove(f, removed.layerRecords.unreadable);
      else if (old(f)) await remove(f, removed.layerRecords.olderThan);
      else count(kept.layerRecords, f);
    }
  }

  // Scan records (the directory source's reference scans): a build scans a path again without one.
  // Closure records (a directory store's whole closure, store/closure-record.ts) and kept plans
  // (build/plan-memo.ts) count as scan records: made again when missing; so do the records of
  // where pushes put each blob (cache/blob-locations.ts): without one a push uploads the blob.
  const locationDir = join(root, 'blob-locations');
  const locations: FileInfo[] = [];
  for (const sub of await readdir(locationDir).catch(() => [] as string[])) locations.push(...(await files(join(locationDir, sub))));
  for (const f of [...(await files(join(root, 'scan'))), ...(await files(join(root, 'closures'))), ...(await files(join(root, 'plans'))), ...locations]) {
    if (isTempName(f.name)) await staleTemp(f);
    else if (old(f)) await remove(f, removed.scanRecords.olderThan);
    else count(kept.scanRecords, f);
  }
  return { removed, kept };
}

/** Whether `f` is what LayerCache reads as the record of the key in its name (a read error other than "not JSON" counts as readable: not ours to judge). */
async function readableRecord(f: FileInfo): Promise<boolean> {
  const text = await readFile(f.path, 'utf8').catch(() => undefined);
  if (text === undefined) return true;
  try {
    return validRecord(JSON.parse(text), f.name.replace(/\.json$/, '')) !== undefined;
  } catch {
    return false;
  }
}
