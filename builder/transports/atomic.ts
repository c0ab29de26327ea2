import { constants, type Stats } from 'node:fs';
import { access, lstat, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ImgbuildError, OutputError } from '../errors.js';
import { fsProblem } from '../fs/errno.js';
import { fileKind } from '../fs/file-kind.js';
import { isNoSpace, isStaleTemp, syncDir, syncTree, tempPrefix, tempSibling, writeAtomically } from '../fs/atomic-write.js';
import { isTarHeader } from '../layer/tar-read.js';

async function requireParent(out: string): Promise<void> {
  const parent = dirname(resolve(out));
  let st;
  try {
    st = await stat(parent);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw outputFailure(err, out);
    throw new OutputError(`cannot write ${out}: its parent directory ${parent} does not exist`, out, `create it first (mkdir -p ${parent})`);
  }
  if (!st.isDirectory()) throw new OutputError(`cannot write ${out}: ${parent} is not a directory`, out);
  // The output is written as a new name in it: a read-only file system (or, not as root, a
  // directory without write permission) is known before the build.
  await access(parent, constants.W_OK).catch((err: unknown) => {
    throw outputFailure(err, out);
  });
}

/** What is at `out` now (the link itself for a symlink), or undefined when nothing is. */
async function existingAt(out: string): Promise<Stats | undefined> {
  try {
    return await lstat(out);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw outputFailure(err, out);
  }
}

/**
 * Temp files and directories of this output left by a process that was killed (SIGKILL, power
 * loss: no chance to clean up): `.<name>.tmp-<pid>-*` / `.old-` whose pid no longer runs. Removed
 * before the output is written again, so they never pile up beside it.
 */
async function removeStaleTemps(out: string): Promise<void> {
  const dir = dirname(resolve(out));
  const prefix = tempPrefix(out);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(prefix) && isStaleTemp(name)) await rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/** A kind of output file, to tell one written before (which a new one may replace) from anything else. */
export interface OutputFileKind {
  /** In words, for a refusal: `an image archive (a tar file)`. */
  what: string;
  /** Whether the non-empty regular file `file` is one (by its first bytes). */
  recognise(file: string): Promise<boolean>;
}

/**
 * The archives this tool writes (OCI archive, docker-archive): plain tar, never compressed, so
 * the first block of one written before is a tar header with a right checksum.
 */
export const IMAGE_ARCHIVE: OutputFileKind = {
  what: 'an image archive (a tar file)',
  recognise: async (file) => isTarHeader(await firstBytes(file, 512)),
};

/**
 * Up to `n` bytes from the start of a regular file. O_NONBLOCK: should it have been swapped for a
 * fifo since it was looked at, opening it does not wait for a writer.
 */
export async function firstBytes(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Refuse to write the file `out` where it would replace what it must not: anything but a regular
 * file (a symlink, a fifo, a device, a socket: the rename would put a file in their place, even
 * of /dev/null), or a non-empty regular file `kind` does not recognise (the spec file itself, a
 * document). An empty file, or one of `kind` (the previous build's), is replaced. Run before a
 * build (so that it fails before its work) and again by writeFileAtomically.
 */
export async function checkFileTarget(out: string, kind: OutputFileKind): Promise<void> {
  await requireParent(out);
  const st = await existingAt(out);
  if (!st) return;
  if (st.isDirectory()) throw new OutputError(`cannot write ${out}: a directory is in the way`, out, 'remove it or choose another --output');
  if (!st.isFile()) {
    throw new OutputError(`refusing to write ${out}: it is a ${fileKind(st)}, and the output would be a new file in its place`, out, 'choose another --output');
  }
  if (st.size === 0) return;
  const ours = await kind.recognise(out).catch((err: unknown) => {
    throw outputFailure(err, out);
  });
  if (!ours) throw new OutputError(`refusing to replace ${out}: it exists and is not ${kind.what}`, out, 'remove it or choose another --output');
}

/**
 * Where a directory output may go: nothing there, or a directory `isReplaceable` says is one of
 * ours (e.g. holds an `oci-layout` file). Run before a build and again by writeDirAtomically.
 * Returns whether something is there.
 */
export async function checkDirTarget(out: string, isReplaceable: (dir: string) => Promise<boolean>): Promise<boolean> {
  await requireParent(out);
  const existing = await existingAt(out);
  if (existing && !existing.isDirectory()) {
    throw new OutputError(`refusing to replace ${out}: it is a ${fileKind(existing)}, not an image directory this tool wrote`, out, existing.isFile() ? 'remove it or choose another --output' : 'choose another --output');
  }
  if (existing && !(await isReplaceable(out))) {
    throw new OutputError(`refusing to replace ${out}: it exists and is not an image this tool wrote`, out, 'remove it or choose another --output');
  }
  return existing !== undefined;
}

/**
 * Write a file under a temp name and rename it to `out` only when `write` succeeded (after an
 * fsync: fs/atomic-write.ts), so an interrupted or failed build (an abort, ENOSPC) never leaves a
 * half-written file under the output name, nor a temp file beside it. What is at `out` is
 * replaced only as checkFileTarget allows.
 */
export async function writeFileAtomically(out: string, kind: OutputFileKind, write: (tempPath: string) => Promise<void>): Promise<void> {
  await checkFileTarget(out, kind);
  await removeStaleTemps(out);
  await writeAtomically(out, write).catch((err: unknown) => {
    throw outputFailure(err, out);
  });
}

/**
 * A file system failure writing `out` (its temp file or directory, or the directory it goes in),
 * said as such (the temp file or directory is gone already): a full disk, a read-only file
 * system, a name too long. Anything else as it is: a failure reading a layer is the layer's.
 */
export function outputFailure(err: unknown, out: string): unknown {
  if (isNoSpace(err)) {
    return new OutputError(`no space left on the device writing ${out}: nothing was written (the partial file was removed)`, out, `free space on ${dirname(resolve(out))}, or write the output elsewhere with -o`, { cause: err });
  }
  if (err instanceof ImgbuildError) return err;
  const found = fsProblem(err);
  if (!found || !isAboutOutput(found.error, out)) return err;
  return new OutputError(`cannot write ${out}: ${found.problem.what}; nothing was written`, out, found.problem.hint('-o'), { cause: err });
}

/** Whether a Node error names `out`, one of its temp files or directories (or what is in them), or the directory they are in. */
function isAboutOutput(e: { path?: string; dest?: string }, out: string): boolean {
  const target = resolve(out);
  const dir = dirname(target);
  const temps = join(dir, tempPrefix(out));
  return [e.path, e.dest].some((p) => typeof p === 'string' && (resolve(p) === target || resolve(p) === dir || resolve(p).startsWith(temps)));
}

/**
 * Fill a directory under a temp name, then put it in place of `out` (its files and directories
 * fsynced first). An existing `out` is replaced only when `isReplaceable` says it is one of ours
 * (e.g. holds an `oci-layout` file): imgbuild never deletes a directory it did not write.
 */
export async function writeDirAtomically(
  out: string,
  isReplaceable: (dir: string) => Promise<boolean>,
  fill: (tempDir: string) => Promise<void>,
): Promise<void> {
  const existing = await checkDirTarget(out, isReplaceable);
  await removeStaleTemps(out);
  const temp = tempSibling(out, 'tmp');
  try {
    await mkdir(temp);
  } catch (err) {
    throw outputFailure(err, out);
  }
  let moved: string | undefined;
  try {
    await fill(temp);
    await syncTree(temp);
    const replace = async (): Promise<void> => {
      const old = tempSibling(out, 'old');
      await rename(out, old);
      moved = old;
      await rename(temp, out);
      moved = undefined;
      await syncDir(dirname(resolve(out)));
      await rm(old, { recursive: true, force: true });
    };
    if (existing) {
      await replace();
    } else {
      try {
        await rename(temp, out);
      } catch (err) {
        // Another writer put its output there since the check (two builds to one -o at once):
        // replaced as if it had been there, when it is one of ours; else the error stands.
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !(await isReplaceable(out).catch(() => false))) throw err;
        await replace();
        return;
      }
      await syncDir(dirname(resolve(out)));
    }
  } catch (err) {
    await rm(temp, { force: true, recursive: true });
    // The previous output was moved aside and the new one could not take its place: it goes back.
    if (moved) await rename(moved, out).catch(() => undefined);
    throw outputFailure(err, out);
  }
}
