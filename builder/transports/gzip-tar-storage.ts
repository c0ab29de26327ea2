import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { ImageReadError } from '../model/complete.js';
import { readTar } from '../layer/tar-read.js';
import { normalise, resolveLink } from './tar-index.js';
import { truncatedArchive, type MemberStorage } from './member-storage.js';

/** Members this small are kept in memory by the index pass (manifest.json, configs). */
const KEEP_BYTES = 1 << 20;

interface GzipMember {
  name: string;
  /** Offset of the member's data in the uncompressed tar. */
  offset: number;
  size: number;
  digest: Digest;
  data?: Buffer;
}

/** A gzipped tar's members (dockerTools' `.tar.gz`), plus each member's sha256, from one pass. */
export interface GzipTarStorage extends MemberStorage {
  digestOf(name: string): Digest | undefined;
}

/**
 * Indexes a gzipped tar in one pass over its decompressed bytes: every regular member's offset,
 * size and sha256, small members kept. A member is read again by decompressing from the start
 * and skipping to it: gzip cannot seek.
 */
export async function gzipTarStorage(path: string, source: string): Promise<GzipTarStorage> {
  const members = new Map<string, GzipMember>();
  // node:zlib is loaded when a gzipped archive is read, not by every command that can read one.
  const { createGunzip } = await import('node:zlib');
  const links = new Map<string, { hard: boolean; target: string }>();
  try {
    await scanTar(createReadStream(path).pipe(createGunzip()), (m) => members.set(m.name, m), (name, link) => links.set(name, link));
  } catch (e) {
    const err = e as Error & { code?: string };
    // A cut gzip stream (zlib's "unexpected end of file"), or a tar inside it that ends early.
    if (err.code === 'Z_BUF_ERROR') throw truncatedArchive(source, `the gzip stream stops short: the file ends after ${statSync(path).size} bytes`);
    if (err.name === 'TarReadError' && /^the tar ends /.test(err.message)) throw truncatedArchive(source, err.message);
    throw new ImageReadError(source, `not a gzipped tar archive (${err.message})`);
  }
  // Hard links and symlinks (legacy `docker save`'s shared layer.tar) read as what they lead to.
  for (const name of links.keys()) {
    const m = resolveLink(name, members, links);
    if (m) members.set(name, { ...m, name });
  }
  const member = (name: string) => {
    const m = members.get(name);
    if (!m) throw new ImageReadError(source, `the archive has no member ${name}`);
    return m;
  };
  const open = (name: string): Readable => {
    const m = member(name);
    if (m.data) return Readable.from([m.data]);
    return Readable.from(slice(path, m.offset, m.size));
  };
  return {
    has: (name) => members.has(name),
    read: async (name) => {
      const m = member(name);
      if (m.data) return m.data;
      const chunks: Buffer[] = [];
      for await (const c of open(name)) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    },
    open,
    size: async (name) => members.get(name)?.size,
    digestOf: (name) => members.get(name)?.digest,
    list: () => members.keys(),
    // A small member is in memory; a larger one would be decompressed from the start.
    peek: (name, length) => members.get(name)?.data?.subarray(0, length),
  };
}

/** Bytes `offset..offset+size` of the decompressed file. */
async function* slice(path: string, offset: number, size: number): AsyncGenerator<Buffer> {
  const { createGunzip } = await import('node:zlib');
  const gunzip = createReadStream(path).pipe(createGunzip());
  let pos = 0;
  const end = offset + size;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      const from = Math.max(offset, pos);
      const to = Math.min(end, pos + chunk.length);
      if (to > from) yield chunk.subarray(from - pos, to - pos);
      pos += chunk.length;
      if (pos >= end) return;
    }
  } finally {
    gunzip.destroy();
  }
}

/** Reads a tar stream, hashing each regular member's data as it passes (and keeping the small ones). */
async function scanTar(stream: AsyncIterable<Buffer>, onMember: (m: GzipMember) => void, onLink: (name: string, link: { hard: boolean; target: string }) => void): Promise<void> {
  for await (const { entry, content } of readTar(stream)) {
    if ((entry.type === 'link' || entry.type === 'symlink') && entry.linkname !== undefined) onLink(normalise(entry.name), { hard: entry.type === 'link', target: entry.linkname });
    if (entry.type !== 'file' && entry.type !== 'contiguous-file') continue;
    const hash = createHash('sha256');
    const keep: Buffer[] | undefined = entry.size <= KEEP_BYTES ? [] : undefined;
    for await (const piece of content) {
      hash.update(piece);
      keep?.push(piece);
    }
    onMember({ name: normalise(entry.name), offset: entry.dataOffset, size: entry.size, digest: `sha256:${hash.digest('hex')}`, ...(keep ? { data: Buffer.concat(keep) } : {}) });
  }
}
