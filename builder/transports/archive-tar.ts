import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import type { Header, Pack } from 'tar-stream';

/** One member of an archive we write (OCI archive, docker-archive): in-memory bytes or a stream of known size. */
export type ArchiveMember =
  | { name: string; kind: 'directory' }
  | { name: string; kind: 'bytes'; data: Uint8Array }
  | { name: string; kind: 'stream'; size: number; open: () => Readable };

/** Fixed header fields of archive members: never the host's. */
const header = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' } as const;

/**
 * Write members, in the order given, as a tar to `out`. Headers are fixed (mtime 0, owner 0:0),
 * so an archive's bytes depend only on the members. Blob members stream through: memory does
 * not grow with their size. `signal` stops the write mid-member (the caller removes the file).
 */
export async function writeArchive(members: Iterable<ArchiveMember>, out: Writable, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  // Loaded when an archive is written: tar-stream and its dependencies are ~40 CommonJS files,
  // which every build and push paid for at start-up (open.ts reads archives too).
  const { default: tar } = await import('tar-stream');
  const pack = tar.pack();
  const done = pipeline(pack, out, ...(signal ? [{ signal }] : []));
  // Awaited below, after the members; handled now, so that an output failing mid-member (ENOSPC)
  // is not an unhandled rejection that ends the process before the member's own error arrives.
  done.catch(() => {});
  try {
    for (const m of members) {
      signal?.throwIfAborted();
      if (m.kind === 'directory') {
        await addEntry(pack, { ...header, name: m.name, type: 'directory', mode: 0o755 });
      } else if (m.kind === 'bytes') {
        await addEntry(pack, { ...header, name: m.name, type: 'file', mode: 0o644, size: m.data.length }, Buffer.from(m.data));
      } else {
        const entry = pack.entry({ ...header, name: m.name, type: 'file', mode: 0o644, size: m.size });
        await pipeline(m.open(), entry, ...(signal ? [{ signal }] : []));
      }
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
  }
  await done;
}

function addEntry(pack: Pack, h: Partial<Header> & { name: string }, data: Buffer = Buffer.alloc(0)): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(h, data, (err) => (err ? reject(err) : resolve()));
  });
}
