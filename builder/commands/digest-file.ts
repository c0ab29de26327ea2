import { constants } from 'node:fs';
import { access, realpath, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { ImgbuildError, OutputError } from '../errors.js';

/**
 * `--digest-file <file>` checked before a command builds or pushes anything: a digest file that
 * cannot be written is a usage error said first, not an error after the image was pushed and its
 * tags moved. A device or a pipe (`/dev/stdout`) is written to as it is; a file (existing or
 * not) is written atomically, by a temp file in its directory, which must exist and be writable.
 */
export async function checkDigestFile(file: string): Promise<void> {
  const st = await stat(file).catch(() => undefined);
  if (st?.isDirectory()) throw new ImgbuildError('usage', `--digest-file ${file} is a directory`, `name a file, e.g. --digest-file ${join(file, 'digest.txt')}`);
  if (st && !st.isFile()) return;
  const dir = dirname(st ? await realpath(file) : resolve(file));
  const dirStat = await stat(dir).catch(() => undefined);
  if (!dirStat) throw new ImgbuildError('usage', `--digest-file ${file}: the directory ${dir} does not exist`, `create it first (mkdir -p ${dir}), or name a file in a directory that exists`);
  if (!dirStat.isDirectory()) throw new ImgbuildError('usage', `--digest-file ${file}: ${dir} is not a directory`, 'name a file in a directory, e.g. --digest-file digest.txt');
  await access(dir, constants.W_OK).catch(() => {
    throw new ImgbuildError('usage', `--digest-file ${file}: cannot write in ${dir} (permission denied)`, 'name a file in a directory you may write to, e.g. --digest-file digest.txt');
  });
}

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
    // Said of the user's path, not of the temp file beside it that failed to open.
    const why = code === 'ENOENT' ? `the directory ${dirname(resolve(file))} does not exist`
      : code === 'ENOTDIR' ? `${dirname(resolve(file))} is not a directory`
      : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
      : code === 'EISDIR' ? 'it is a directory'
      : undefined;
    if (why) throw new OutputError(`cannot write --digest-file ${file}: ${why}`, file, `the digest is ${digest}; name a file that can be written with --digest-file`, { cause: err });
    throw err;
  }
}
