import { realpath, stat, writeFile } from 'node:fs/promises';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { OutputError } from '../errors.js';

/**
 * `--digest-file`: the digest and a newline, written atomically and durably (fs/atomic-write.ts):
 * on a full disk or a crash the file holds the old digest or the new one, never nothing.
 */
export async function writeDigestFile(file: string, digest: string): Promise<void> {
  const st = await stat(file).catch(() => undefined);
  try {
    // A device or a pipe (`--digest-file /dev/stdout`) is written to as it is; a regular file (or
    // a symlink to one, whose target is replaced) atomically.
    if (st && !st.isFile()) await writeFile(file, `${digest}\n`);
    else await writeFileAtomic(st ? await realpath(file) : file, `${digest}\n`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new OutputError(`no space left on the device writing --digest-file ${file} (it was left as it was)`, file, 'free space and push again: the registry already holds the image, so nothing is uploaded twice', { cause: err });
    }
    throw err;
  }
}
