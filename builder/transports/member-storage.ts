import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageReadError } from '../model/complete.js';
import { indexTar, type TarMember } from './tar-index.js';

/** The named files of an image on disk: a directory's, or a tar archive's members. */
export interface MemberStorage {
  has(name: string): boolean | Promise<boolean>;
  read(name: string): Promise<Buffer>;
  open(name: string): Readable;
  size(name: string): Promise<number | undefined>;
  /** A file holding exactly the member, when it is one (a directory's). */
  file?(name: string): string;
}

/** A directory's files (an OCI layout). */
export function directoryStorage(dir: string): MemberStorage {
  const sizeOf = (name: string) => stat(join(dir, name)).then((s) => (s.isFile() ? s.size : undefined), () => undefined);
  return {
    has: async (name) => (await sizeOf(name)) !== undefined,
    read: (name) => readFile(join(dir, name)),
    open: (name) => createReadStream(join(dir, name)),
    size: sizeOf,
    file: (name) => join(dir, name),
  };
}

/** A plain (uncompressed) tar's members, read in place by offset. */
export async function tarStorage(path: string, source: string): Promise<MemberStorage> {
  const members = await indexTar(path).catch((e: Error) => {
    throw new ImageReadError(source, `not a tar archive (${e.message})`);
  });
  const member = (name: string): TarMember => {
    const m = members.get(name);
    if (!m) throw new ImageReadError(source, `the archive has no member ${name}`);
    return m;
  };
  const open = (name: string): Readable => {
    const m = member(name);
    return m.size === 0 ? Readable.from([]) : createReadStream(path, { start: m.offset, end: m.offset + m.size - 1 });
  };
  return {
    has: (name) => members.has(name),
    read: async (name) => {
      const chunks: Buffer[] = [];
      for await (const c of open(name)) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    },
    open,
    size: async (name) => members.get(name)?.size,
  };
}
