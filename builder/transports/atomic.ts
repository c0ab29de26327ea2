import { randomBytes } from 'node:crypto';
import { lstat, mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { OutputError } from '../errors.js';

/** Temp names live next to the output so the final rename never crosses file systems. */
function tempSibling(out: string, kind: string): string {
  return join(dirname(out), `.${basename(out)}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

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
 * Write a file under a temp name and rename it to `out` only when `write` succeeded, so an
 * interrupted or failed build never leaves a half-written file under the output name.
 */
export async function writeFileAtomically(out: string, write: (tempPath: string) => Promise<void>): Promise<void> {
  await requireParent(out);
  const existing = await lstat(out).catch(() => undefined);
  if (existing?.isDirectory()) throw new OutputError(`cannot write ${out}: a directory is in the way`, out);
  const temp = tempSibling(out, 'tmp');
  try {
    await write(temp);
    await rename(temp, out);
  } catch (err) {
    await rm(temp, { force: true, recursive: true });
    throw err;
  }
}

/**
 * Fill a directory under a temp name, then put it in place of `out`. An existing `out` is
 * replaced only when `isReplaceable` says it is one of ours (e.g. holds an `oci-layout` file):
 * imgbuild never deletes a directory it did not write.
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
  const temp = tempSibling(out, 'tmp');
  await mkdir(temp);
  try {
    await fill(temp);
    if (existing) {
      const old = tempSibling(out, 'old');
      await rename(out, old);
      await rename(temp, out);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(temp, out);
    }
  } catch (err) {
    await rm(temp, { force: true, recursive: true });
    throw err;
  }
}
