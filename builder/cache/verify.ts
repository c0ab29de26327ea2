import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { MediaType } from '../../oci/media-types.js';
import type { Digest } from '../../oci/digest.js';
import { hashFile } from './checked-blob.js';
import { recordFields } from './layer-cache.js';
import { isTempName } from './prune.js';
import { checkScanPack } from '../store/scan-cache.js';
import { closureRecordProblem } from '../store/closure-record.js';
import { writeFileAtomic } from '../fs/atomic-write.js';

/** One damaged file of the cache: where, and what is wrong with it. */
export interface DamagedFile {
  /**
   * `scan-record`: a line of a scan record pack (`scan/pack-*.jsonl`; the problem names the line);
   * `closure-record`: a file of `closures/`; `directory`: one of the cache's directories (the
   * cache directory, `blobs/sha256`, `layers`, ...) that is a file or something else.
   */
  kind: 'blob' | 'layer-record' | 'scan-record' | 'closure-record' | 'directory';
  path: string;
  problem: string;
}

export interface VerifyCacheResult {
  /** What was read: every blob hashed, every layer record parsed and checked against its blob, every scan record (a line of a pack) and closure record against its checksum. */
  checked: { blobs: number; blobBytes: number; layerRecords: number; scanRecords: number; closureRecords: number };
  /** Damaged blobs and records; removed when `repair`. */
  damaged: DamagedFile[];
  /** Whether the damaged files were removed (`repair`). */
  repaired: boolean;
}

/**
 * Check every file of the layer cache under `root`: each blob (`blobs/sha256/<hex>`) hashes to
 * its name; each layer record (`layers/<aa>/<key>.json`) parses, is the record its name says,
 * carries the checksum of its fields, and when its blob is here, that blob's size, diff_id (the
 * digest of the uncompressed tar, gunzipped here) and uncompressed size are the record's. Temp
 * files are `cache prune`'s business.
 *
 * Each scan record (a line of `scan/pack-*.jsonl`) and closure record (`closures/*.json`) of the
 * current version must match its checksum (store/sealed-json.ts), and every line must be JSON;
 * records of older versions, which a build never uses, are not damage.
 *
 * With `repair`, damaged files are removed: a build writes a missing blob or record again from the
 * store (a record without its blob makes the bytes when they are read), which is the repair. A
 * scan record pack is written again without its damaged lines (its other records kept); the
 * next build scans those paths again.
 */
export async function verifyCache(root: string, options: { repair?: boolean } = {}): Promise<VerifyCacheResult> {
  const checked = { blobs: 0, blobBytes: 0, layerRecords: 0, scanRecords: 0, closureRecords: 0 };
  const damaged: DamagedFile[] = [];
  /** How each damaged file is repaired, by path (removed, unless said otherwise). */
  const repairs = new Map<string, () => Promise<void>>();

  const rootKind = await kindOf(root);
  if (rootKind !== 'missing' && rootKind !== 'directory') {
    // Not removed by --repair: IMGBUILD_CACHE_DIR may name someone's file by mistake.
    damaged.push({ kind: 'directory', path: root, problem: `is ${KIND_TEXT[rootKind]}, not the cache directory (set IMGBUILD_CACHE_DIR to a directory; --repair does not remove it)` });
    return { checked, damaged, repaired: false };
  }
  /** Whether `dir` is a directory to look in; a file (or anything else) there instead is damage, which --repair removes. */
  const isDir = async (dir: string): Promise<boolean> => {
    const kind = await kindOf(dir);
    if (kind === 'directory') return true;
    if (kind !== 'missing') damaged.push({ kind: 'directory', path: dir, problem: `is ${KIND_TEXT[kind]}, not a directory` });
    return false;
  };
  /** Whether `path` is a file to read; a directory, a dangling symlink or other in its place is damage of `kind`. */
  const isFileOf = async (path: string, kind: DamagedFile['kind']): Promise<boolean> => {
    const k = await kindOf(path);
    if (k === 'file') return true;
    if (k !== 'missing') damaged.push({ kind, path, problem: `is ${KIND_TEXT[k]}, not a file` });
    return false;
  };

  const blobDir = join(root, 'blobs', 'sha256');
  const goodBlobs = new Set<string>();
  const blobNames = (await isDir(join(root, 'blobs'))) && (await isDir(blobDir)) ? await readdir(blobDir).catch(() => [] as string[]) : [];
  for (const name of blobNames.sort()) {
    const path = join(blobDir, name);
    if (!/^[0-9a-f]{64}$/.test(name) || !(await isFileOf(path, 'blob'))) continue;
    const got = await hashFile(path).catch(() => undefined);
    if (!got) continue; // removed meanwhile (a prune)
    checked.blobs++;
    checked.blobBytes += got.size;
    if (got.digest === `sha256:${name}`) goodBlobs.add(name);
    else damaged.push({ kind: 'blob', path, problem: `does not hash to its name: its ${got.size} bytes give ${got.digest}` });
  }

  const recordDir = join(root, 'layers');
  const subs = (await isDir(recordDir)) ? await readdir(recordDir).catch(() => [] as string[]) : [];
  for (const sub of subs.sort()) {
    if (isTempName(sub) || !(await isDir(join(recordDir, sub)))) continue;
    for (const name of (await readdir(join(recordDir, sub)).catch(() => [] as string[])).sort()) {
      const path = join(recordDir, sub, name);
      if (isTempName(name) || !name.endsWith('.json') || !(await isFileOf(path, 'layer-record'))) continue;
      checked.layerRecords++;
      const problem = await recordProblem(path, name.slice(0, -'.json'.length), blobDir, goodBlobs);
      if (problem) damaged.push({ kind: 'layer-record', path, problem });
    }
  }

  const scanDir = join(root, 'scan');
  for (const name of ((await isDir(scanDir)) ? await readdir(scanDir).catch(() => [] as string[]) : []).sort()) {
    const path = join(scanDir, name);
    if (!name.startsWith('pack-') || !name.endsWith('.jsonl') || !(await isFileOf(path, 'scan-record'))) continue;
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // merged away by a build meanwhile
    const pack = checkScanPack(text);
    checked.scanRecords += pack.lines;
    for (const d of pack.damaged) damaged.push({ kind: 'scan-record', path, problem: d.problem });
    if (pack.damaged.length > 0) {
      repairs.set(path, async () => {
        if (pack.kept.length === 0) await rm(path, { force: true });
        else await writeFileAtomic(path, `${pack.kept.join('\n')}\n`);
      });
    }
  }

  const closureDir = join(root, 'closures');
  for (const name of ((await isDir(closureDir)) ? await readdir(closureDir).catch(() => [] as string[]) : []).sort()) {
    const path = join(closureDir, name);
    if (isTempName(name) || !name.endsWith('.json') || !(await isFileOf(path, 'closure-record'))) continue;
    const bytes = await readFile(path).catch(() => undefined);
    if (bytes === undefined) continue;
    checked.closureRecords++;
    const problem = closureRecordProblem(bytes);
    if (problem) damaged.push({ kind: 'closure-record', path, problem });
  }

  if (options.repair) {
    // A directory in place of a file, or a file in place of a directory: removed whole (a symlink itself, not what it names).
    for (const d of damaged) if (!repairs.has(d.path)) repairs.set(d.path, () => rm(d.path, { recursive: true, force: true }));
    for (const repair of repairs.values()) await repair();
  }
  return { checked, damaged, repaired: options.repair === true && damaged.length > 0 };
}

type EntryKind = 'file' | 'directory' | 'dangling-symlink' | 'symlink-to-directory' | 'other' | 'missing';

const KIND_TEXT: Record<Exclude<EntryKind, 'missing'>, string> = {
  file: 'a file',
  directory: 'a directory',
  'dangling-symlink': 'a symbolic link to nothing',
  'symlink-to-directory': 'a symbolic link to a directory',
  other: 'not a regular file (a fifo, socket or device)',
};

/** What is at `path`: a file or directory (a symlink to one counts as one, but for a directory named by a symlink in a file's place), or what else. */
async function kindOf(path: string): Promise<EntryKind> {
  const l = await lstat(path).catch(() => undefined);
  if (!l) return 'missing';
  if (l.isFile()) return 'file';
  if (l.isDirectory()) return 'directory';
  if (!l.isSymbolicLink()) return 'other';
  const target = await stat(path).catch(() => undefined);
  if (!target) return 'dangling-symlink';
  if (target.isFile()) return 'file';
  if (target.isDirectory()) return 'directory';
  return 'other';
}

/** What is wrong with a layer record, or undefined when it is sound (and agrees with its blob when that is here and sound). */
async function recordProblem(path: string, key: string, blobDir: string, goodBlobs: Set<string>): Promise<string | undefined> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return 'is not JSON (torn or damaged)';
  }
  const read = recordFields(json, key);
  if (!read) return 'is not a valid layer record for its key';
  if (read.sum === 'mismatch') return 'does not match its checksum (a field was damaged)';
  // A record without a checksum (an older imgbuild's) is not used by a build; its facts are still checked against its blob.
  const record = read.blob;
  const hex = record.digest.slice('sha256:'.length);
  if (!goodBlobs.has(hex)) return undefined; // no blob (or a damaged one, reported as such): nothing to compare
  const blobPath = join(blobDir, hex);
  const size = (await stat(blobPath)).size;
  if (size !== record.size) return `says its blob has ${record.size} bytes; ${blobPath} has ${size}`;
  // A zstd blob's tar is not unpacked here (no zstd decoder in the cache's reach): its record's checksum vouches for its diff_id.
  if (record.mediaType === MediaType.ociLayerZstd) return undefined;
  const tar = await tarDigest(blobPath, record.mediaType);
  if (tar === undefined) return `says its blob is ${record.mediaType}, and ${blobPath} does not gunzip`;
  if (tar.digest !== record.diffId) return `says the layer's diff_id is ${record.diffId}; ${blobPath} uncompressed gives ${tar.digest}`;
  if (tar.size !== record.uncompressedSize) return `says the layer's tar has ${record.uncompressedSize} bytes; ${blobPath} uncompressed has ${tar.size}`;
  return undefined;
}

/** The digest and size of a blob's tar: the blob itself, or gunzipped for a gzip layer; undefined when it does not gunzip. */
async function tarDigest(path: string, mediaType: string): Promise<{ digest: Digest; size: number } | undefined> {
  if (mediaType !== MediaType.ociLayerGzip && mediaType !== MediaType.dockerLayerGzip) return hashFile(path);
  const hash = createHash('sha256');
  let size = 0;
  try {
    await pipeline(
      createReadStream(path),
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          size += chunk.length;
          cb();
        },
      }),
    );
  } catch {
    return undefined;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}
