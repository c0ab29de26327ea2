import { createReadStream, createWriteStream, openSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { digestHex, isDigest, type Digest } from '../../oci/digest.js';
import { commitFile, makeDir } from '../fs/atomic-write.js';

/**
 * A content-addressed directory of blobs laid out like an OCI layout's `blobs/`:
 * `<root>/sha256/<hex>`. Writes go to a unique temp name in the same directory and are renamed
 * into place once their digest is known, so two builds sharing a store never see half a blob.
 * A commit is durable (fsync of the file, then of the directory: fs/atomic-write.ts), so a crash
 * never leaves a torn file under a digest's name.
 */
export class BlobStore {
  constructor(readonly root: string) {}

  path(digest: Digest): string {
    if (!isDigest(digest)) throw new Error(`not a sha256 digest: ${digest}`);
    return join(this.root, 'sha256', digestHex(digest));
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      return (await stat(this.path(digest))).isFile();
    } catch {
      return false;
    }
  }

  async size(digest: Digest): Promise<number> {
    return (await stat(this.path(digest))).size;
  }

  open(digest: Digest): Readable {
    return createReadStream(this.path(digest));
  }

  /** A temp file in the store, to be committed with `commit` or dropped with `discard`. */
  async createTemp(): Promise<{ path: string; stream: Writable }> {
    await makeDir(join(this.root, 'sha256'));
    const path = this.tempName();
    return { path, stream: createWriteStream(path, { flags: 'wx' }) };
  }

  private tempName(): string {
    return join(this.root, 'sha256', `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** A temp file in the store opened for synchronous writes (the layer writer's), to be closed by the caller. */
  async createTempFile(): Promise<{ path: string; fd: number }> {
    await makeDir(join(this.root, 'sha256'));
    const path = this.tempName();
    return { path, fd: openSync(path, 'wx') };
  }

  /**
   * Move a finished temp file to its digest's name, durably. It replaces a file already there:
   * the caller hashed these bytes, while a file under the name may be damaged (torn, flipped).
   */
  async commit(tempPath: string, digest: Digest): Promise<void> {
    await commitFile(tempPath, this.path(digest));
  }

  async discard(tempPath: string): Promise<void> {
    await rm(tempPath, { force: true });
  }

  /** Store bytes held in memory (configs, manifests). */
  async putBytes(data: Uint8Array, digest: Digest): Promise<void> {
    if ((await this.size(digest).catch(() => -1)) === data.length) return;
    const { path, stream } = await this.createTemp();
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.end(data, () => resolve());
    });
    await this.commit(path, digest);
  }
}
