import { randomBytes } from 'node:crypto';
import { fsyncSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Durable, atomic file writes: the one way imgbuild puts a file in place (cache blobs and
 * records, outputs, `--digest-file`). The bytes go to a temp name in the same directory (a rename
 * never crosses file systems), are fsynced, renamed over the final name, and the directory is
 * fsynced, so after a crash or power loss the name holds either the old file or the whole new
 * one — never a torn or empty file.
 *
 * Temp names carry the writer's pid (`…tmp-<pid>-<random>`): a temp file whose pid no longer
 * runs was left by a process that died (SIGKILL, power loss) and may be removed (`isStaleTemp`).
 */

/** A temp name beside `path`: `.<name>.<kind>-<pid>-<random>` (hidden, so no tool takes it for the file). */
export function tempSibling(path: string, kind: 'tmp' | 'old' = 'tmp'): string {
  return join(dirname(path), `${tempPrefix(path)}${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** The longest file name (in bytes) of Linux's and macOS's file systems (NAME_MAX). */
const NAME_MAX = 255;
/** The most a temp name adds after its prefix: `tmp-` or `old-`, a pid (at most 10 digits), `-`, 8 hex digits. */
const TEMP_ENDING_MAX = 4 + 10 + 1 + 8;

/**
 * How every temp name beside `path` starts: `.<name>.`, with `<name>` cut (at a character's
 * boundary) so that the whole temp name fits in NAME_MAX bytes: a 250-byte output name is
 * writable, its temp name as well. The pid ending is kept whole, so a dead writer's temp files
 * are still known (tempOwnerPid) and found by this prefix.
 */
export function tempPrefix(path: string): string {
  const name = Buffer.from(basename(path));
  const room = NAME_MAX - TEMP_ENDING_MAX - 2;
  if (name.length <= room) return `.${basename(path)}.`;
  let end = room;
  while (end > 0 && (name[end]! & 0xc0) === 0x80) end--; // not inside a UTF-8 sequence
  return `.${name.subarray(0, end).toString()}.`;
}

/** The pid a temp name was made by (`…tmp-<pid>-<hex>` as tempSibling, BlobStore and the registry client's pull make them), else undefined. */
export function tempOwnerPid(name: string): number | undefined {
  const m = /(?:^|[.-])(?:tmp|old)-(\d+)-[0-9a-z]+$/.exec(name) ?? /^\.tmp-(\d+)-[0-9a-f]+$/.exec(name) ?? /\.(\d+)[.-][0-9a-z]+\.tmp$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Whether a process with this pid runs on this machine (signal 0: EPERM still means it exists). */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `name` is a temp file left by a process that is gone (its pid named in the name does not run). */
export function isStaleTemp(name: string): boolean {
  const pid = tempOwnerPid(name);
  return pid !== undefined && !pidAlive(pid);
}

/** fsync a file by path (its data and size reach the disk before a rename makes it visible). */
export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * fsync a directory, so a rename or a new name in it survives a crash. File systems that cannot
 * fsync a directory (EINVAL, EISDIR on some) are not an error: there is nothing more to do.
 */
export async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'ENOTSUP' && code !== 'EBADF') throw e;
  } finally {
    await fh.close();
  }
}

/** fsync an open descriptor (the layer writer's synchronous temp file). */
export function syncFd(fd: number): void {
  fsyncSync(fd);
}

/** Put a finished temp file in place: fsync it, rename it over `dest`, fsync the directory. */
export async function commitFile(temp: string, dest: string): Promise<void> {
  await syncFile(temp);
  await rename(temp, dest);
  await syncDir(dirname(dest));
}

/**
 * Write `dest` durably and atomically with `write(temp)` filling a temp file beside it; on any
 * failure (ENOSPC, an abort) the temp file is removed and `dest` is untouched. `write` must leave
 * the file closed.
 */
export async function writeAtomically(dest: string, write: (temp: string) => Promise<void>): Promise<void> {
  const temp = tempSibling(dest);
  try {
    await write(temp);
    await commitFile(temp, dest);
  } catch (err) {
    await rm(temp, { force: true, recursive: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * `mkdir -p` whose error says why. Node's recursive mkdir fails with ENOENT, naming the first
 * missing directory, whatever stopped it (EROFS on a read-only file system: "no such file or
 * directory: <cache>/blobs"); on ENOENT the missing directories are made one at a time, so the
 * error is the real one.
 */
export async function makeDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await makeEachDir(dir);
  }
}

async function makeEachDir(dir: string): Promise<void> {
  const parent = dirname(dir);
  if (parent !== dir && !(await stat(parent).then(() => true, () => false))) await makeEachDir(parent);
  await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}

/** `writeAtomically` for bytes held in memory (records, digest files, small documents). */
export async function writeFileAtomic(dest: string, data: string | Uint8Array, options: { mode?: number; mkdir?: boolean; sync?: boolean } = {}): Promise<void> {
  if (options.mkdir) await makeDir(dirname(dest));
  if (options.sync === false) {
    // Atomic, not durable: for records whose loss or tearing a reader detects and only costs work
    // again (a scan record per store path: thousands of fsyncs would slow a cold build).
    const temp = tempSibling(dest);
    try {
      await writeFile(temp, data, { flag: 'wx', mode: options.mode ?? 0o644 });
      await rename(temp, dest);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
    return;
  }
  await writeAtomically(dest, async (temp) => {
    const fh = await open(temp, 'wx', options.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

/**
 * fsync every file and directory under `dir` (a finished output directory, before it is renamed
 * into place), directories after their contents. A directory's files are synced SYNC_AT_ONCE at
 * a time: a layout of 100 layers is 100 fsyncs, which one after another cost ~0.2-0.8 ms each
 * here (more while the cache's writes are still being flushed), and which the file system
 * commits together when they come together.
 */
export async function syncTree(dir: string): Promise<void> {
  const files: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await syncTree(p);
    else if (e.isFile()) files.push(p);
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) await syncFile(files[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(SYNC_AT_ONCE, files.length) }, worker));
  await syncDir(dir);
}

/** fsyncs in flight at once in syncTree (libuv's thread pool has 4 threads by default). */
const SYNC_AT_ONCE = 8;

/** Whether `err` (or what caused it) is a full disk or an exceeded quota (ENOSPC, EDQUOT). */
export function isNoSpace(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  }
  return false;
}
