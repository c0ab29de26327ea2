import { closeSync, createReadStream, fstatSync, openSync, readFile, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageReadError } from '../model/complete.js';
import { ImgbuildError } from '../errors.js';
import { indexTar, TruncatedTarError, type TarMember } from './tar-index.js';

/** An archive cut short (an interrupted copy or download): `<archive> is truncated: <what>`. */
export function truncatedArchive(source: string, what: string): ImgbuildError {
  return new ImgbuildError('image-read', `${source} is truncated: ${what}`, 'the archive was cut short (an interrupted copy, download or write): write or copy it again from its source');
}

/** The named files of an image on disk: a directory's, or a tar archive's members. */
export interface MemberStorage {
  has(name: string): boolean | Promise<boolean>;
  read(name: string): Promise<Buffer>;
  open(name: string): Readable;
  size(name: string): Promise<number | undefined>;
  /** A file holding exactly the member, when it is one (a directory's). */
  file?(name: string): string;
  /**
   * The member's bytes at once when it is a small file (`open` would read it so, in one chunk),
   * else undefined (it must be streamed; a file that cannot be stat'ed too: its stream says why).
   */
  readSmall?(name: string): Buffer | undefined;
  /** Every member's name, when they are known at once (an archive's, from its index): layout-referrers.ts looks through them. */
  list?(): Iterable<string>;
  /** Up to `length` first bytes of a member, when they can be had without reading it all (else undefined). */
  peek?(name: string, length: number): Buffer | undefined;
}

/**
 * A directory's files (an OCI layout). Its small files (index.json, manifests, configs) are read
 * synchronously: a push read them through node:fs/promises, whose loading (readline, the file
 * watchers: ~9 internal modules) and thread-pool round trips cost more CPU than the reads.
 */
export function directoryStorage(dir: string): MemberStorage {
  // A name that is there but not a regular file (a directory, a FIFO, a symlink to a device) is
  // said to be what it is, never taken as missing, and never opened (a FIFO would block).
  const sizeOf = async (name: string) => {
    let s;
    try {
      s = statSync(join(dir, name));
    } catch {
      return undefined;
    }
    if (!s.isFile()) throw notRegular(join(dir, name));
    return s.size;
  };
  return {
    has: async (name) => (await sizeOf(name)) !== undefined,
    read: (name) => readMember(join(dir, name)),
    open: (name) => {
      const path = join(dir, name);
      const kind = nonRegularKind(path);
      if (kind) {
        const r = new Readable({ read() {} });
        process.nextTick(() => r.destroy(notRegular(path)));
        return r;
      }
      return openMember(path);
    },
    size: sizeOf,
    file: (name) => join(dir, name),
    readSmall: (name) => readSmallFile(join(dir, name)),
  };
}

/** A file read at once up to this size; a larger one off the event loop (a big blob never blocks uploads in flight). */
export const SYNC_READ_MAX = 1024 * 1024;

/** What a path is when it is not a regular file (a pipe, a device, a socket), else undefined (a missing one too: its open says so). */
export function nonRegularKind(path: string): string | undefined {
  let st;
  try {
    st = statSync(path);
  } catch {
    return undefined;
  }
  if (st.isFile()) return undefined;
  if (st.isFIFO()) return 'a pipe (FIFO)';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'a file of another kind';
}

/** `<path> is a FIFO, not a regular file`: an image's files are regular files. */
function notRegular(path: string): ImgbuildError {
  return new ImgbuildError('image-read', `${path} is ${nonRegularKind(path) ?? 'a file of another kind'}, not a regular file`, 'an image layout holds regular files only: write or copy the layout again from its source');
}

/** A file's bytes: read synchronously when small, through the thread pool otherwise. */
async function readMember(path: string): Promise<Buffer> {
  if (nonRegularKind(path)) throw notRegular(path);
  const fd = openSync(path, 'r');
  try {
    if (fstatSync(fd).size <= SYNC_READ_MAX) return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
  return new Promise((resolve, reject) => readFile(path, (err, bytes) => (err ? reject(err) : resolve(bytes))));
}

/** Whether a file is read at once rather than streamed: it can be stat'ed and holds at most SYNC_READ_MAX bytes. */
function isSmallFile(path: string): boolean {
  try {
    return statSync(path).size <= SYNC_READ_MAX;
  } catch {
    return false;
  }
}

/** A file's bytes when openMember would read them synchronously, in one chunk; else undefined. */
function readSmallFile(path: string): Buffer | undefined {
  return isSmallFile(path) && !nonRegularKind(path) ? readFileSync(path) : undefined;
}

/**
 * A stream of a file's bytes: a small file read synchronously as the stream is first read, in one
 * chunk; a larger one (or one that cannot be stat'ed: its stream reports why) through
 * createReadStream. A push of a small image opened each layer as a file stream: four thread-pool
 * round trips apiece, and node:fs's streams load node:fs/promises.
 */
function openMember(path: string): Readable {
  if (!isSmallFile(path)) return createReadStream(path);
  return new Readable({
    read() {
      try {
        const bytes = readFileSync(path);
        if (bytes.length > 0) this.push(bytes);
        this.push(null);
      } catch (e) {
        this.destroy(e as Error);
      }
    },
  });
}

/** A plain (uncompressed) tar's members, read in place by offset. */
export async function tarStorage(path: string, source: string): Promise<MemberStorage> {
  const members = await indexTar(path).catch((e: Error) => {
    if (e instanceof TruncatedTarError) throw truncatedArchive(source, e.what);
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
    list: () => members.keys(),
    peek: (name, length) => {
      const m = members.get(name);
      if (!m) return undefined;
      const head = Buffer.alloc(Math.min(length, m.size));
      const fd = openSync(path, 'r');
      try {
        return head.subarray(0, readSync(fd, head, 0, head.length, m.offset));
      } finally {
        closeSync(fd);
      }
    },
  };
}
