import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { closeSync, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import type { Digest } from '../../oci/digest.js';
import { ImgbuildError } from '../errors.js';
import { SpareBuffers } from '../layer/spare-buffers.js';

/** What a cache file must hold: its digest and size. */
export interface ExpectedBytes {
  digest: Digest;
  size: number;
}

export const CACHE_FIX_HINT = 'run `imgbuild cache verify --repair` (removes damaged blobs and records; the next build makes them again), or empty the cache with `imgbuild cache prune --older-than 0s`';

/** A file of the layer cache whose bytes are not the ones its name or record says (bit rot, a torn write, a hand edit). */
export class CacheDamageError extends ImgbuildError {
  override name = 'CacheDamageError';
  constructor(readonly file: string, message: string, hint = CACHE_FIX_HINT) {
    super('cache', `the layer cache is damaged: ${file} ${message}`, hint);
  }
}

/**
 * Which file (device and inode) with which size, and its times: the file a hash was taken of.
 *
 * Blobs are named by their content and only ever replaced by a rename (fs/atomic-write.ts), so
 * "the same file" is dev, inode and size (`sameFile`): a rename over the path gives another inode,
 * a torn or truncated write another size. The times are not part of it: every build sets the mtime
 * of the blobs it uses (touch.ts, for `cache prune`), which also sets their ctime, so a build
 * reading a blob another build touched meanwhile would take it for damaged. What the mtime used
 * to guard against, a file written in place with the same size, is caught by the bytes instead:
 * a read hashes what it gives out and fails before its last byte when they are not the digest
 * (verifiedFileBytes). The times are kept for `unchangedFile`, which lets a caller skip hashing a
 * file again (an OCI layout's hard link): a file whose times moved is then hashed again, never
 * taken as damaged.
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

const identityOf = (st: Stats): FileIdentity => ({ dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs });
/** The identity of the file at `path` now, or undefined when there is none. */
export function fileIdentity(path: string): FileIdentity | undefined {
  try {
    return identityOf(statSync(path));
  } catch {
    return undefined;
  }
}

/**
 * The buffer a read stream of a file of `size` bytes reads into: 1 MiB, or the file's size when
 * smaller. A stream allocates a buffer of its highWaterMark for every read: a MiB for each of a
 * hundred 200-byte layers of a warm build was 100 MB of external memory, and the garbage
 * collections it set off (~50 ms of CPU).
 */
function readSize(size: number): number {
  return Math.min(1 << 20, Math.max(size, 1));
}

/** Whether two identities are the same file (dev, inode, size; not its times: a build touching a blob is no change of its bytes). */
export const sameFile = (a: FileIdentity, b: FileIdentity): boolean => a.dev === b.dev && a.ino === b.ino && a.size === b.size;

/**
 * Whether two identities are the same file with the same times: nothing can have been written to
 * it since (a write sets its mtime and ctime). For skipping a hash only: a file touched since is
 * hashed again, not taken as damaged.
 */
export const unchangedFile = (a: FileIdentity, b: FileIdentity): boolean => sameFile(a, b) && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

/** Called by hashFile after it read a file's bytes, before it looks at the file again (tests put a concurrent change there). */
export type AfterRead = (path: string) => void;

/**
 * The sha256 digest and size of a file, read once, and the identity of the file read (from its
 * descriptor, so a rename over the path meanwhile does not confuse it). Stops reading after
 * `limit` bytes (a damaged file longer than it should be is not read to its end).
 */
export async function hashFile(path: string, limit = Number.MAX_SAFE_INTEGER, afterRead?: AfterRead): Promise<{ digest: Digest; size: number; identity: FileIdentity }> {
  return hashSmallFile(path, limit, afterRead) ?? hashFileStreamed(path, limit, afterRead);
}

/**
 * Files up to this size are hashed with synchronous calls: a warm build links each of its cached
 * layers into an OCI layout after hashing it, and through the thread pool each small blob cost
 * five round trips (open, fstat, read, fstat, close), ~2 ms each on a loaded machine: a
 * hundred layers of a few hundred bytes were ~0.2 s of a one-second build, nearly all waiting.
 */
export const SYNC_HASH_MAX = 256 * 1024;

/**
 * The digest hashFile gives a file it did not hash whole (longer than its limit, or written to
 * while it was read): one no content hashes to, so it never matches what the caller expects.
 */
const UNMATCHABLE: Digest = `sha256:${'0'.repeat(64)}`;

/** hashFile by synchronous calls, when the file is at most SYNC_HASH_MAX bytes; else undefined (stream it). */
function hashSmallFile(path: string, limit: number, afterRead?: AfterRead): { digest: Digest; size: number; identity: FileIdentity } | undefined {
  const fd = openSync(path, 'r');
  try {
    const identity = identityOf(fstatSync(fd));
    if (identity.size > SYNC_HASH_MAX) return undefined;
    // One byte more than its size says: a file grown since its fstat is read past it and seen.
    const buf = Buffer.allocUnsafe(Math.min(identity.size, limit) + 1);
    let size = 0;
    for (let n; size < buf.length && (n = readSync(fd, buf, size, buf.length - size, size)) > 0; ) size += n;
    if (size > limit) return { digest: UNMATCHABLE, size, identity };
    afterRead?.(path);
    const after = identityOf(fstatSync(fd));
    // Written to while it was hashed: not the bytes of any one moment; say so by a size or digest that cannot match.
    if (!sameFile(identity, after) || size > identity.size) return { digest: UNMATCHABLE, size: -1, identity };
    return { digest: `sha256:${createHash('sha256').update(buf.subarray(0, size)).digest('hex')}`, size, identity };
  } finally {
    closeSync(fd);
  }
}

/**
 * Read buffers for hashFileStreamed, kept while blobs follow each other: a read stream allocates a
 * new buffer for every read, and a warm build of the 1 GB bench hashed ~350 MB of cached blobs
 * through fresh 1 MiB buffers (external memory; ~0.18 s of its main thread's 0.93 s was garbage
 * collection). Each chunk is hashed before the next read, so one buffer serves a whole file.
 */
const readBuffers = new SpareBuffers(1 << 20, 4, 1000);

async function hashFileStreamed(path: string, limit: number, afterRead?: AfterRead): Promise<{ digest: Digest; size: number; identity: FileIdentity }> {
  const fh = await open(path, 'r');
  const buf = readBuffers.take();
  try {
    const identity = identityOf(await fh.stat());
    const hash = createHash('sha256');
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (size > limit) return { digest: UNMATCHABLE, size, identity };
      hash.update(buf.subarray(0, bytesRead));
    }
    afterRead?.(path);
    const after = identityOf(await fh.stat());
    // Written to while it was hashed: not the bytes of any one moment; say so by a size or digest that cannot match.
    if (!sameFile(identity, after)) return { digest: UNMATCHABLE, size: -1, identity };
    return { digest: `sha256:${hash.digest('hex')}`, size, identity };
  } finally {
    readBuffers.give([buf]);
    await fh.close();
  }
}

/** Why `got` is not `expected`, for a message. */
export function describeMismatch(expected: ExpectedBytes, got: { digest: Digest; size: number }): string {
  if (got.size < 0) return 'changed while it was read';
  if (got.size > expected.size) return `holds more than the ${expected.size} bytes of ${expected.digest}`;
  if (got.size < expected.size) return `is truncated: ${got.size} of the ${expected.size} bytes of ${expected.digest}`;
  return `does not hash to ${expected.digest}: its ${got.size} bytes give ${got.digest}`;
}

/** Whether the file holds exactly `expected`: its identity when it does, else why not (describeMismatch). */
export async function checkFile(path: string, expected: ExpectedBytes, afterRead?: AfterRead): Promise<{ ok: true; identity: FileIdentity } | { ok: false; why: string }> {
  const got = await hashFile(path, expected.size, afterRead);
  return got.size === expected.size && got.digest === expected.digest ? { ok: true, identity: got.identity } : { ok: false, why: describeMismatch(expected, got) };
}

/**
 * The bytes of a cache file whose content was hashed as `verified` (checkFile): read from one
 * descriptor, which must still be that file (same inode and size, `sameFile`) when it is opened.
 * The bytes are hashed again as they go, and the last chunk is held back until they are known to
 * be `expected`: a file written in place since it was checked (its inode and size the same) fails
 * the read as `error[cache]` naming the file, before its last byte. A touch by another build
 * (a new mtime) is no change. Returns false, reading nothing, when the file is no longer the
 * one hashed or no longer there (removed by `cache prune`): hash it again.
 */
export async function* verifiedFileBytes(path: string, expected: ExpectedBytes, verified: FileIdentity): AsyncGenerator<Buffer, boolean> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    const at = identityOf(await fh.stat());
    if (!sameFile(at, verified)) return false;
    const hash = createHash('sha256');
    let n = 0;
    let held: Buffer | undefined;
    for await (const chunk of fh.createReadStream({ highWaterMark: readSize(expected.size), autoClose: false, start: 0 })) {
      n += (chunk as Buffer).length;
      if (n > expected.size) break;
      hash.update(chunk as Buffer);
      if (held) yield held;
      held = chunk as Buffer;
    }
    if (n !== expected.size || `sha256:${hash.digest('hex')}` !== expected.digest || !sameFile(identityOf(await fh.stat()), verified)) {
      throw new CacheDamageError(path, 'changed while it was read');
    }
    if (held) yield held;
    return true;
  } finally {
    await fh.close();
  }
}
