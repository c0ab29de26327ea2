import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, utimesSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '../../oci/digest.js';
import type { BlobStore } from '../blobs/blob-store.js';
import { cacheRoot } from '../cache-dir.js';
import type { LayerBlob } from '../layer/types.js';

/** One cached layer: what writing it gave. The blob itself lives in a BlobStore. */
export interface LayerRecord {
  v: 1;
  key: string;
  blob: LayerBlob;
}

const KEY = /^[0-9a-f]{64}$/;

/**
 * Maps a layer's cache key (layer-key.ts) to the layer it gives: digest, diff_id, sizes, media
 * type. Records are small JSON files under `<dir>/<aa>/<key>.json`, written to a temp name and
 * renamed, so two builds sharing the cache never read half a record and a race only writes the
 * same record twice. A record answers only if its blob is in the build's BlobStore with the
 * recorded size (or, for a push, held at the registry or made again); a hit sets the record's and
 * the blob's mtime to now, which is what `cache prune` orders by (least recently used first).
 */
export class LayerCache {
  /** Lookups answered and not answered since this object was made. */
  readonly stats = { hits: 0, misses: 0 };

  constructor(readonly dir: string) {}

  /** `<cacheRoot>/layers` ($IMGBUILD_CACHE_DIR, $XDG_CACHE_HOME/imgbuild or ~/.cache/imgbuild). */
  static atDefaultLocation(env: NodeJS.ProcessEnv = process.env): LayerCache {
    return new LayerCache(join(cacheRoot(env), 'layers'));
  }

  recordPath(key: string): string {
    if (!KEY.test(key)) throw new Error(`not a layer cache key: ${key}`);
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  /**
   * The cached layer for `key` whose blob is in `blobs`, or undefined. Reads no layer bytes.
   * The record is read, and the blob looked at, with synchronous calls: a warm build does this
   * once per layer, and a thread-pool round trip per call cost more than the calls.
   */
  async lookup(key: string, blobs: BlobStore, elsewhere?: BlobElsewhere): Promise<LayerBlob | undefined> {
    return this.usable(key, this.known(key), blobs, elsewhere);
  }

  /**
   * What the record for `key` says the layer is, whether or not its blob is anywhere: for a push
   * that can make the blob again as it sends it (layer-stream.ts). Reads no layer bytes.
   */
  known(key: string): LayerBlob | undefined {
    try {
      return validRecord(JSON.parse(readFileSync(this.recordPath(key), 'utf8')), key);
    } catch {
      return undefined; // absent, or torn by a crash before rename could not happen: either way a miss
    }
  }

  /** `blob` (the record of `key`) when its blob is in `blobs`, or held `elsewhere`; counts the hit or miss. */
  private async usable(key: string, blob: LayerBlob | undefined, blobs: BlobStore, elsewhere?: BlobElsewhere): Promise<LayerBlob | undefined> {
    const blobPath = blob ? blobs.path(blob.digest) : undefined;
    const present = blobPath ? isFileOfSize(blobPath, blob!.size) : false;
    // Without the blob here, the record still serves a push whose target already holds it.
    const usable = present || (blob !== undefined && elsewhere !== undefined && (await elsewhere(blob.digest).catch(() => false)));
    if (!blob || !usable) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    const now = new Date();
    // Best effort: a blob or record pruned meanwhile is simply written again next time.
    touch(this.recordPath(key), now);
    touch(blobPath!, now);
    return blob;
  }

  /** Remember what writing the layer for `key` gave. Failing to write the cache only costs a rewrite next time. */
  async save(key: string, blob: LayerBlob): Promise<void> {
    const file = this.recordPath(key);
    const tmp = `${file}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
    const record: LayerRecord = { v: 1, key, blob: { digest: blob.digest, diffId: blob.diffId, size: blob.size, uncompressedSize: blob.uncompressedSize, mediaType: blob.mediaType } };
    try {
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(tmp, `${JSON.stringify(record)}\n`);
      await rename(tmp, file);
    } catch {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  /**
   * The layer for `key`: from the cache when it has it (then `write` is not called and nothing is
   * read), else written by `write` and remembered. For a build whose only output is a push
   * (`push.elsewhere` answers whether the registry holds a blob): a blob held at the registry
   * need not be here; and with `push.remake`, a layer whose record is here but whose blob is held
   * nowhere is not written either — the answer says `remake`, and the caller makes the bytes
   * again as the push sends them.
   */
  async getOrWrite(key: string, blobs: BlobStore, write: () => Promise<LayerBlob>, push?: PushOnly): Promise<CacheAnswer> {
    const record = this.known(key);
    const hit = await this.usable(key, record, blobs, push?.elsewhere);
    if (hit) return { blob: hit, cached: true };
    if (record && push?.remake) {
      // Used, though its blob is held nowhere: `cache prune --older-than` must keep it.
      touch(this.recordPath(key), new Date());
      return { blob: record, cached: true, remake: true };
    }
    const blob = await write();
    await this.save(key, blob);
    return { blob, cached: false };
  }
}

/** What the build's only output, a push, tells the cache. */
export interface PushOnly {
  elsewhere: BlobElsewhere;
  /** The caller can make a layer's bytes again while pushing (see getOrWrite). */
  remake?: boolean;
}

export interface CacheAnswer {
  blob: LayerBlob;
  /** From the cache: not written now. */
  cached: boolean;
  /** Known from the cache but held neither here nor at the registry: to be made again for the push. */
  remake?: boolean;
}

function isFileOfSize(path: string, size: number): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && st.size === size;
  } catch {
    return false;
  }
}

function touch(path: string, time: Date): void {
  try {
    utimesSync(path, time, time);
  } catch {
    // pruned meanwhile, or a read-only cache: only the LRU order suffers
  }
}

/** Whether a blob is held where the build's output goes (a registry that will be pushed to). */
export type BlobElsewhere = (digest: Digest) => Promise<boolean>;

/** The layer a record file's parsed JSON gives when it is a well-formed record of `key`, else undefined. */
export function validRecord(r: unknown, key: string): LayerBlob | undefined {
  if (typeof r !== 'object' || r === null) return undefined;
  const rec = r as Partial<LayerRecord>;
  const b = rec.blob;
  if (rec.v !== 1 || rec.key !== key || typeof b !== 'object' || b === null) return undefined;
  const ok =
    typeof b.digest === 'string' &&
    isDigest(b.digest) &&
    typeof b.diffId === 'string' &&
    isDigest(b.diffId) &&
    Number.isSafeInteger(b.size) &&
    b.size >= 0 &&
    Number.isSafeInteger(b.uncompressedSize) &&
    b.uncompressedSize >= 0 &&
    typeof b.mediaType === 'string';
  return ok ? { digest: b.digest, diffId: b.diffId, size: b.size, uncompressedSize: b.uncompressedSize, mediaType: b.mediaType } : undefined;
}
