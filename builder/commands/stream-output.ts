import { ImgbuildError, OutputError } from '../errors.js';
import { fsProblem } from '../fs/errno.js';
import { isNoSpace } from '../fs/atomic-write.js';

/**
 * An error writing `--stream` to stdout, said as such: a full disk behind a redirect (`> file`,
 * `/dev/full`), or a reader that went away (EPIPE). What stdout got is not a whole archive.
 */
export function streamOutputError(err: unknown): unknown {
  if (isNoSpace(err)) return new OutputError('no space left on the device writing the archive to stdout (--stream): what was written is incomplete', undefined, 'free space where stdout goes, or write a file with -o (written whole or not at all)', { cause: err });
  if ((err as { code?: unknown }).code === 'EPIPE') return new OutputError('stdout was closed while the archive was streamed to it (--stream): the reader stopped early', undefined, 'check the command reading the stream (e.g. `docker load`) for its own error', { cause: err });
  // stdout's errors name no path (a failure reading a layer names its file, and is the layer's).
  const found = fsProblem(err);
  if (found && found.error.path === undefined && !(err instanceof ImgbuildError)) {
    return new OutputError(`cannot write the archive to stdout (--stream): ${found.problem.what}: what was written is incomplete`, undefined, found.problem.hint('-o'), { cause: err });
  }
  return err;
}
