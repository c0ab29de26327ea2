import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { ImageReadError } from '../model/complete.js';
import type { MemberStorage } from './member-storage.js';
import { cString, normalise, parseOctal, paxPath, ustarName } from './tar-index.js';

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
  try {
    await scanTar(createReadStream(path).pipe(createGunzip()), (m) => members.set(m.name, m));
  } catch (e) {
    throw new ImageReadError(source, `not a gzipped tar archive (${(e as Error).message})`);
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

/** Parses a tar stream's headers, hashing each regular member's data as it passes. */
async function scanTar(stream: AsyncIterable<Buffer>, onMember: (m: GzipMember) => void): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  let pos = 0; // offset of pending[0] in the tar
  let longName: string | undefined;
  // The member being read: how much data remains, then padding to skip.
  let current: { name: string; offset: number; size: number; left: number; hash?: ReturnType<typeof createHash>; keep?: Buffer[]; meta?: Buffer[]; type: string } | undefined;
  let pad = 0;
  let ended = false;
  for await (const chunk of stream) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      if (ended) return;
      if (current) {
        const take = Math.min(current.left, pending.length);
        const data = pending.subarray(0, take);
        current.hash?.update(data);
        current.keep?.push(Buffer.from(data));
        current.meta?.push(Buffer.from(data));
        current.left -= take;
        pending = pending.subarray(take);
        pos += take;
        if (current.left > 0) break;
        const done = current;
        current = undefined;
        pad = (512 - (done.size % 512)) % 512;
        if (done.meta) {
          const body = Buffer.concat(done.meta);
          longName = done.type === 'L' ? cString(body) : (paxPath(body) ?? longName);
        } else if (done.hash) {
          onMember({ name: done.name, offset: done.offset, size: done.size, digest: `sha256:${done.hash.digest('hex')}`, ...(done.keep ? { data: Buffer.concat(done.keep) } : {}) });
        }
      }
      if (pad > 0) {
        const skip = Math.min(pad, pending.length);
        pad -= skip;
        pending = pending.subarray(skip);
        pos += skip;
        if (pad > 0) break;
      }
      if (pending.length < 512) break;
      const header = pending.subarray(0, 512);
      pending = pending.subarray(512);
      pos += 512;
      if (header.every((b) => b === 0)) {
        ended = true;
        return;
      }
      const size = parseOctal(header.subarray(124, 136));
      const type = String.fromCharCode(header[156] ?? 0x30);
      if (type === 'x' || type === 'L') {
        current = { name: '', offset: pos, size, left: size, meta: [], type };
      } else {
        const name = normalise(longName ?? ustarName(header));
        longName = undefined;
        const regular = type === '0' || type === '\0' || type === '7';
        current = { name, offset: pos, size, left: size, type, ...(regular ? { hash: createHash('sha256'), ...(size <= KEEP_BYTES ? { keep: [] } : {}) } : {}) };
      }
    }
  }
  if (current && current.left > 0) throw new Error('the archive ends inside a member');
}
