import { createReadStream, createWriteStream, openSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { digestHex, isDigest, type Digest } from '../../oci/digest.js';

/**
 * A content-addressed directory of blobs laid out like an OCI layout's `blobs/`:
 * `<root>/sha256/<hex>`. Writes go to a unique temp name in the same directory and are renamed
 * into place once their digest is known, so two builds sharing a store never see half a blob.
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
    await mkdir(join(this.root, 'sha256'), { recursive: true });
    const path = this.tempName();
    return { path, stream: createWriteStream(path, { flags: 'wx' }) };
  }

  private tempName(): string {
    return join(this.root, 'sha256', `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** A temp file in the store opened for synchronous writes (the layer writer's), to be closed by the caller. */
  async createTempFile(): Promise<{ path: string; fd: number }> {
    await mkdir(join(this.root, 'sha256'), { recursive: true });
    const path = this.tempName();
    return { path, fd: openSync(path, 'wx') };
  }

  /** Move a finished temp file to its digest's name (atomic; an existing blob is the same bytes). */
  async commit(tempPath: string, digest: Digest): Promise<void> {
    await rename(tempPath, this.path(digest));
  }

  async discard(tempPath: string): Promise<void> {
    await rm(tempPath, { force: true });
  }

  /** Store bytes held in memory (configs, manifests). */
  async putBytes(data: Uint8Array, digest: Digest): Promise<void> {
    if (await this.has(digest)) return;
    const { path, stream } = await this.createTemp();
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.end(data, () => resolve());
    });
    await this.commit(path, digest);
  }
}
