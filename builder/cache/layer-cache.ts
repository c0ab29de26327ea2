import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isDigest } from '../../oci/digest.js';
import { BlobStore } from '../blobs/blob-store.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import type { LayerBlob } from '../layer/types.js';
import { touch } from './touch.js';

/** One cached layer: what writing it gave. The blob itself lives in the cache's BlobStore. */
export interface LayerRecord {
  v: 1;
  key: string;
  blob: LayerBlob;
  /**
   * `recordSum(key, blob)`: a record whose fields were damaged on disk (a flipped digit in a
   * diff_id still parses) does not match it and is not used. Absent in records written before it
   * existed: those are not used either (a miss: the layer is made again and the record rewritten
   * with it), since nothing vouches for their fields.
   */
  sum?: string;
}

/** The checksum a record carries of its key and layer facts (sha256 of their JSON, in a fixed order). */
export function recordSum(key: string, b: LayerBlob): string {
  const fields = [key, b.digest, b.diffId, b.size, b.uncompressedSize, b.mediaType];
  return `sha256:${createHash('sha256').update(JSON.stringify(fields)).digest('hex')}`;
}

const KEY = /^[0-9a-f]{64}$/;

/**
 * imgbuild's cache of layers under one root: records under `<root>/layers/<aa>/<key>.json`
 * (cache key → digest, diff_id, sizes, media type) and blobs under `<root>/blobs/sha256/`.
 * Records are written to a temp name, fsynced and renamed (fs/atomic-write.ts), so two builds
 * sharing the cache never read half a record, a race only writes the same record twice, and a
 * crash never leaves a torn one; each carries a checksum of its fields (`recordSum`). A hit sets the record's and the
 * blob's mtime to now, which is what `cache prune` orders by (least recently used first).
 *
 * It only gets and puts records and blobs: how a layer is used (written out, pushed) is not its
 * business. `cachedLayer` (layer-source.ts) is the decorator a build puts around each layer.
 */
export class LayerCache {
  /** Records found and not found since this object was made. */
  readonly stats = { hits: 0, misses: 0 };
  readonly blobs: BlobStore;
  readonly recordDir: string;

  constructor(readonly root: string) {
    this.blobs = new BlobStore(join(root, 'blobs'));
    this.recordDir = join(root, 'layers');
  }

  recordPath(key: string): string {
    if (!KEY.test(key)) throw new Error(`not a layer cache key: ${key}`);
    return join(this.recordDir, key.slice(0, 2), `${key}.json`);
  }

  /**
   * What the record for `key` says the layer is, whether or not its blob is here; undefined when
   * there is no valid record. Read synchronously: a warm build does this once per layer, and a
   * thread-pool round trip per call cost more than the call.
   */
  get(key: string): LayerBlob | undefined {
    let record: LayerBlob | undefined;
    try {
      record = validRecord(JSON.parse(readFileSync(this.recordPath(key), 'utf8')), key);
    } catch {
      record = undefined; // absent, or torn: either way a miss
    }
    if (!record) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    touch(this.recordPath(key));
    return record;
  }

  /** The cached blob's file when it is here with the recorded size (its mtime set to now), else undefined. */
  blobFile(blob: LayerBlob): string | undefined {
    const path = this.blobs.path(blob.digest);
    if (!isFileOfSize(path, blob.size)) return undefined;
    touch(path);
    return path;
  }

  /**
   * The file under the blob's digest whatever its size (a torn or truncated blob included: a
   * reader checks it and repairs it, cache/layer-source.ts), else undefined; its mtime set to now.
   */
  blobFileAnySize(blob: LayerBlob): string | undefined {
    const path = this.blobs.path(blob.digest);
    if (!isFile(path)) return undefined;
    touch(path);
    return path;
  }

  /** Remember what writing the layer for `key` gave. Failing to write the cache only costs a rewrite next time. */
  async put(key: string, blob: LayerBlob): Promise<void> {
    const facts: LayerBlob = { digest: blob.digest, diffId: blob.diffId, size: blob.size, uncompressedSize: blob.uncompressedSize, mediaType: blob.mediaType };
    const record: LayerRecord = { v: 1, key, blob: facts, sum: recordSum(key, facts) };
    try {
      await writeFileAtomic(this.recordPath(key), `${JSON.stringify(record)}\n`, { mkdir: true });
    } catch {
      // the temp file is gone already (writeFileAtomic); the record is written again next time
    }
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isFileOfSize(path: string, size: number): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && st.size === size;
  } catch {
    return false;
  }
}

/**
 * The layer a record file holds, or undefined when it is not a valid record for `key` with the
 * checksum of its fields (builds and `cache prune` judge records alike): a record without one,
 * written before records had it, is not used (its fields could be damaged and nothing would tell).
 */
export function validRecord(r: unknown, key: string): LayerBlob | undefined {
  const read = recordFields(r, key);
  return read?.sum === 'ok' ? read.blob : undefined;
}

/**
 * The layer facts a record file holds for `key` whatever its checksum, and what that checksum
 * says (`none`: a record written before records had one); undefined when it is not a record of
 * that shape. For `cache verify`, which checks the facts against the blob either way.
 */
export function recordFields(r: unknown, key: string): { blob: LayerBlob; sum: 'ok' | 'mismatch' | 'none' } | undefined {
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
  if (!ok) return undefined;
  const blob: LayerBlob = { digest: b.digest, diffId: b.diffId, size: b.size, uncompressedSize: b.uncompressedSize, mediaType: b.mediaType };
  // A damaged record is no record: the layer is made again and the record rewritten.
  return { blob, sum: rec.sum === undefined ? 'none' : rec.sum === recordSum(key, blob) ? 'ok' : 'mismatch' };
}
