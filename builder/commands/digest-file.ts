import { constants } from 'node:fs';
import { access, lstat, open, readlink, realpath, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { fsProblem, fsProblemOfCode } from '../fs/errno.js';
import { fileKind } from '../fs/file-kind.js';
import { ImgbuildError, OutputError } from '../errors.js';
import { refuseEmpty } from './arguments.js';

/** Where a digest goes: a regular file (replaced atomically), or a pipe (written into). */
interface DigestTarget {
  path: string;
  pipe: boolean;
}

/**
 * What `--digest-file <file>` names, checked: nothing yet or a regular file (a symlink to one:
 * its target is replaced, the link stays), written atomically by a temp file in its directory,
 * which must exist and be writable; or a fifo (a pipe: `/dev/stdout` piped, `>(…)`), written
 * into. Anything else is refused: a device (a rename would put a file in place of /dev/null, and
 * writing into /dev/sda would destroy a disk), a socket, a directory, a symlink to one of those
 * or to nothing.
 */
async function digestTarget(file: string): Promise<DigestTarget> {
  const link = await lstat(file).catch((err: unknown) => {
    // A name too long, a symlink loop...: said as such (a path that does not exist yet is fine).
    const problem = fsProblemOfCode((err as NodeJS.ErrnoException).code);
    if (problem) throw new ImgbuildError('usage', `--digest-file ${file}: ${problem.what}`, problem.hint('--digest-file'), { cause: err });
    return undefined;
  });
  const st = link?.isSymbolicLink() ? await stat(file).catch(() => undefined) : link;
  const to = link?.isSymbolicLink() ? await readlink(file).catch(() => '?') : undefined;
  if (link && !st) throw new ImgbuildError('usage', `--digest-file ${file} is a symbolic link to ${to}, which does not exist`, 'create the file it points to first, or name a regular file, e.g. --digest-file digest.txt');
  if (st?.isDirectory()) throw new ImgbuildError('usage', `--digest-file ${file} is a directory`, `name a file, e.g. --digest-file ${join(file, 'digest.txt')}`);
  if (st?.isFIFO()) return { path: file, pipe: true };
  if (st && !st.isFile()) {
    const via = to === undefined ? '' : ` (through the symbolic link to ${to})`;
    throw new ImgbuildError('usage', `--digest-file ${file} is a ${fileKind(st)}${via}`, 'name a regular file, e.g. --digest-file digest.txt (the digest is on stdout as well)');
  }
  const path = st ? await realpath(file) : file;
  const dir = dirname(resolve(path));
  const dirStat = await stat(dir).catch(() => undefined);
  if (!dirStat) throw new ImgbuildError('usage', `--digest-file ${file}: the directory ${dir} does not exist`, `create it first (mkdir -p ${dir}), or name a file in a directory that exists`);
  if (!dirStat.isDirectory()) throw new ImgbuildError('usage', `--digest-file ${file}: ${dir} is not a directory`, 'name a file in a directory, e.g. --digest-file digest.txt');
  await access(dir, constants.W_OK).catch((err: unknown) => {
    // A read-only file system is said as such, not as a permission.
    const problem = fsProblemOfCode((err as NodeJS.ErrnoException).code);
    if (problem && problem.code !== 'EACCES' && problem.code !== 'EPERM') throw new ImgbuildError('usage', `--digest-file ${file}: cannot write in ${dir} (${problem.what})`, problem.hint('--digest-file'), { cause: err });
    throw new ImgbuildError('usage', `--digest-file ${file}: cannot write in ${dir} (permission denied)`, 'name a file in a directory you may write to, e.g. --digest-file digest.txt');
  });
  return { path, pipe: false };
}

/**
 * `--digest-file <file>` checked before a command builds or pushes anything: a digest file that
 * cannot be written is a usage error said first, not an error after the image was pushed and its
 * tags moved (digestTarget says what it may be).
 */
export async function checkDigestFile(file: string): Promise<void> {
  refuseEmpty(file, '--digest-file', 'a file');
  await digestTarget(file);
}

/**
 * `--digest-file`: the digest and a newline, written atomically and durably (fs/atomic-write.ts):
 * on a full disk or a crash the file holds the old digest or the new one, never nothing.
 */
export async function writeDigestFile(file: string, digest: string): Promise<void> {
  const target = await digestTarget(file);
  try {
    if (target.pipe) {
      // O_NONBLOCK: a fifo no one reads is an error (ENXIO), not a wait without end.
      const fh = await open(target.path, constants.O_WRONLY | constants.O_NONBLOCK);
      try {
        await fh.write(`${digest}\n`);
      } finally {
        await fh.close();
      }
    } else {
      await writeFileAtomic(target.path, `${digest}\n`);
    }
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
    // Any other file system error (EROFS, EIO, ENXIO: a fifo no one reads): in words (fs/errno.ts).
    const found = err instanceof ImgbuildError ? undefined : fsProblem(err);
    if (found) throw new OutputError(`cannot write --digest-file ${file}: ${found.problem.what}`, file, `the digest is ${digest}; ${found.problem.hint('--digest-file')}`, { cause: err });
    throw err;
  }
}
