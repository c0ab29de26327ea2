import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { DigestingStream, type Digest } from '../../oci/digest.js';
import { ImgbuildError } from '../errors.js';
import { createZstdDecompressStream, isZstd } from '../layer/zstd-decompress.js';
import { readTar } from '../layer/tar-read.js';

/** How one entry's header was written: what a tar reader hides (number padding, checksum format, magic, name/prefix split). */
export interface RawHeader {
  /** From the magic and version bytes: `ustar` (POSIX `ustar\0` `00`), `gnu` (`ustar  \0`), `v7` (none). */
  format: string;
  /** sha256 hex of every header byte of the entry: pax/GNU long-name blocks and records, and the ustar block. */
  hash: string;
}

/** One tar entry as `diff` compares it: every header field a reader can see, and a content hash. */
export interface EntrySummary {
  /** Path without leading `./` or `/` and without trailing `/`; a repeated path gets ` (#2)`. */
  path: string;
  /** Position in the tar, from 0. */
  index: number;
  type: string;
  /** Permission bits (including setuid/setgid/sticky). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch (the ustar field; a pax `mtime` record shows under `pax`). */
  mtime: number;
  size: number;
  /** sha256 hex of the content, for entries with content. */
  sha256?: string;
  /** Symlink or hard link target. */
  linkname?: string;
  /** PAX extended header records applying to this entry, as written. */
  pax?: Record<string, string>;
  devmajor?: number;
  devminor?: number;
  /** How the header was written, beyond the values a tar reader decodes. */
  header: RawHeader;
}

/** The gzip member header (RFC 1952): fields that vary between compressors and hosts. */
export interface GzipHeader {
  flags: number;
  mtime: number;
  /** Extra flags: 2 = slowest compression, 4 = fastest (zlib sets them from the level). */
  xfl: number;
  /** 3 = Unix, 255 = unknown, ... */
  os: number;
}

export type Compression = 'gzip' | 'zstd' | 'none';

export interface LayerSummary {
  compression: Compression;
  gzipHeader?: GzipHeader;
  /** sha256 of the uncompressed tar, computed while reading (what rootfs.diff_ids should say). */
  diffId: Digest;
  tarSize: number;
  entries: EntrySummary[];
}

/**
 * Read a layer blob once, as a stream: sniff its compression from the magic bytes, decompress,
 * hash the tar (diff_id), and summarise each entry (content hashed on the fly). Memory grows with
 * the number of entries, never with the size of files or of the layer.
 */
export async function summariseLayer(blob: Readable, what: string): Promise<LayerSummary> {
  const { head, rest } = await readHead(blob, 10);
  const compression: Compression = head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : isZstd(head) ? 'zstd' : 'none';
  const gzipHeader = compression === 'gzip' && head.length >= 10 ? { flags: head[3]!, mtime: head.readUInt32LE(4), xfl: head[8]!, os: head[9]! } : undefined;
  let decompress: NodeJS.ReadWriteStream | undefined;
  try {
    decompress = decompressor(compression);
  } catch (err) {
    blob.destroy();
    throw err;
  }

  const tarHash = new DigestingStream();
  const entries: EntrySummary[] = [];
  const seen = new Map<string, number>();
  const summarise = async (tar: AsyncIterable<Buffer>): Promise<void> => {
    for await (const { entry: h, content } of readTar(tar)) {
      const hash = createHash('sha256');
      let hasContent = false;
      for await (const chunk of content) {
        hash.update(chunk);
        hasContent = true;
      }
      const name = normalisePath(h.name);
      const n = (seen.get(name) ?? 0) + 1;
      seen.set(name, n);
      const headerHash = createHash('sha256');
      for (const b of h.headerBytes) headerHash.update(b);
      const s: Omit<EntrySummary, 'header'> = {
        path: n === 1 ? name : `${name} (#${n})`,
        index: entries.length,
        type: h.type,
        mode: h.mode & 0o7777,
        uid: h.uid,
        gid: h.gid,
        uname: h.uname,
        gname: h.gname,
        mtime: h.mtime,
        size: h.size,
      };
      if (h.type === 'file' || h.type === 'contiguous-file' || hasContent) s.sha256 = hash.digest('hex');
      if (h.linkname) s.linkname = h.linkname;
      if (h.pax && Object.keys(h.pax).length > 0) s.pax = { ...h.pax };
      if (h.type === 'block-device' || h.type === 'character-device') {
        s.devmajor = h.devmajor;
        s.devminor = h.devminor;
      }
      entries.push({ ...s, header: { format: h.format, hash: headerHash.digest('hex') } });
    }
  };
  const stages: NodeJS.ReadWriteStream[] = decompress ? [decompress] : [];
  try {
    await pipeline(Readable.from(prepend(head, rest)), ...(stages as []), tarHash, summarise);
  } catch (err) {
    throw new ImgbuildError('image-read', `${what}: cannot read the layer as a ${compression === 'none' ? '' : `${compression}-compressed `}tar: ${(err as Error).message}`, undefined, { cause: err });
  }
  return { compression, gzipHeader, diffId: tarHash.digest(), tarSize: tarHash.size, entries };
}

function decompressor(compression: Compression): NodeJS.ReadWriteStream | undefined {
  if (compression === 'gzip') return zlib.createGunzip();
  if (compression === 'none') return undefined;
  // node:zlib's zstd where Node has it (22.15+), fzstd before.
  return createZstdDecompressStream();
}

function normalisePath(name: string): string {
  let p = name;
  while (p.startsWith('./')) p = p.slice(2);
  p = p.replace(/^\/+/, '').replace(/\/+$/, '');
  return p === '' || p === '.' ? '.' : p;
}

/** The first `n` bytes (fewer if the stream is shorter) and an iterator over the remaining chunks. */
async function readHead(stream: Readable, n: number): Promise<{ head: Buffer; rest: AsyncIterator<Buffer> }> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let have = 0;
  while (have < n) {
    const r = await it.next();
    if (r.done) break;
    chunks.push(r.value);
    have += r.value.length;
  }
  const all = Buffer.concat(chunks);
  return { head: all, rest: it };
}

async function* prepend(head: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    if (head.length) yield head;
    for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
  } finally {
    // Stopped early (an error downstream): close the blob stream too.
    await rest.return?.();
  }
}
