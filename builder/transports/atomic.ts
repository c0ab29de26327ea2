import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { OutputError } from '../errors.js';
import { isNoSpace, isStaleTemp, syncDir, syncTree, tempSibling, writeAtomically } from '../fs/atomic-write.js';

async function requireParent(out: string): Promise<void> {
  const parent = dirname(resolve(out));
  let st;
  try {
    st = await stat(parent);
  } catch {
    throw new OutputError(`cannot write ${out}: its parent directory ${parent} does not exist`, out, `create it first (mkdir -p ${parent})`);
  }
  if (!st.isDirectory()) throw new OutputError(`cannot write ${out}: ${parent} is not a directory`, out);
}

/**
 * Temp files and directories of this output left by a process that was killed (SIGKILL, power
 * loss: no chance to clean up): `.<name>.tmp-<pid>-*` / `.old-` whose pid no longer runs. Removed
 * before the output is written again, so they never pile up beside it.
 */
async function removeStaleTemps(out: string): Promise<void> {
  const dir = dirname(resolve(out));
  const prefix = `.${basename(out)}.`;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(prefix) && isStaleTemp(name)) await rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Write a file under a temp name and rename it to `out` only when `write` succeeded (after an
 * fsync: fs/atomic-write.ts), so an interrupted or failed build (an abort, ENOSPC) never leaves a
 * half-written file under the output name, nor a temp file beside it.
 */
export async function writeFileAtomically(out: string, write: (tempPath: string) => Promise<void>): Promise<void> {
  await requireParent(out);
  const existing = await lstat(out).catch(() => undefined);
  if (existing?.isDirectory()) throw new OutputError(`cannot write ${out}: a directory is in the way`, out);
  await removeStaleTemps(out);
  await writeAtomically(out, write).catch((err: unknown) => {
    throw noSpaceError(err, out);
  });
}

/** A full disk while writing `out`, said as such (the temp file is gone already); any other error as it is. */
function noSpaceError(err: unknown, out: string): unknown {
  if (!isNoSpace(err)) return err;
  return new OutputError(`no space left on the device writing ${out}: nothing was written (the partial file was removed)`, out, `free space on ${dirname(resolve(out))}, or write the output elsewhere with -o`, { cause: err });
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
  await requireParent(out);
  const existing = await lstat(out).catch(() => undefined);
  if (existing && !(existing.isDirectory() && (await isReplaceable(out)))) {
    throw new OutputError(`refusing to replace ${out}: it exists and is not an image this tool wrote`, out, 'remove it or choose another --output');
  }
  await removeStaleTemps(out);
  const temp = tempSibling(out, 'tmp');
  await mkdir(temp);
  try {
    await fill(temp);
    await syncTree(temp);
    if (existing) {
      const old = tempSibling(out, 'old');
      await rename(out, old);
      await rename(temp, out);
      await syncDir(dirname(resolve(out)));
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(temp, out);
      await syncDir(dirname(resolve(out)));
    }
  } catch (err) {
    await rm(temp, { force: true, recursive: true });
    throw noSpaceError(err, out);
  }
}
