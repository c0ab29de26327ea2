import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImgbuildError } from '../errors.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeaderFields } from '../layer/tar-header.js';

/** One member of an archive we write (OCI archive, docker-archive): in-memory bytes or a stream of known size. */
export type ArchiveMember =
  | { name: string; kind: 'directory' }
  | { name: string; kind: 'bytes'; data: Uint8Array }
  | { name: string; kind: 'stream'; size: number; open: () => Readable };

/** Fixed header fields of archive members: never the host's. */
const fixed = { mtime: 0, uid: 0, gid: 0, uname: '', gname: '' } as const;

/**
 * Write members, in the order given, as a tar to `out`. Headers are the layers' own encoding
 * (layer/tar-header.ts) with fixed fields (mtime 0, owner 0:0), so an archive's bytes depend only
 * on the members. Blob members stream through: memory does not grow with their size. `signal`
 * stops the write mid-member (the caller removes the file).
 */
export async function writeArchive(members: Iterable<ArchiveMember>, out: Writable, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  await pipeline(Readable.from(archiveBytes(members, signal), { objectMode: false }), out, ...(signal ? [{ signal }] : []));
}

async function* archiveBytes(members: Iterable<ArchiveMember>, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  for (const m of members) {
    signal?.throwIfAborted();
    const path = m.name.replace(/\/+$/, '');
    if (m.kind === 'directory') {
      yield header(path, 'directory', 0o755, 0);
    } else if (m.kind === 'bytes') {
      yield header(path, 'file', 0o644, m.data.length);
      yield m.data;
      yield Buffer.alloc(padding(m.data.length));
    } else {
      yield header(path, 'file', 0o644, m.size);
      let written = 0;
      for await (const chunk of m.open() as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (written > m.size) break;
        yield chunk;
      }
      // The header is written first, so a blob that is not the size its descriptor says cannot be fixed up.
      if (written !== m.size) throw new ImgbuildError('archive-write', `archive member ${m.name}: its blob has ${written > m.size ? 'more than' : 'only'} ${written > m.size ? m.size : written} bytes, not the ${m.size} its descriptor says`, 'run `imgbuild cache verify --repair` if the blob is in the cache, or build the image again');
      yield Buffer.alloc(padding(m.size));
    }
  }
  yield END_OF_ARCHIVE;
}

function header(path: string, type: TarHeaderFields['type'], mode: number, size: number): Buffer {
  return encodeHeader({ ...fixed, path, type, mode, size });
}
