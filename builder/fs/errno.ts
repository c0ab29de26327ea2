/**
 * The file system's errors that a user or the system causes (a read-only disk, a name too long,
 * a full quota, a failing disk), in words, with what to do. One table for the CLI's last resort
 * (commands/failure.ts) and for the places that know what was being written (outputs, the cache,
 * `--digest-file`) and say it with their own flag; none of them is a bug in imgbuild.
 */
export interface FsProblem {
  /** The errno code: `EROFS`. */
  code: string;
  /** What went wrong, in words: `read-only file system`. */
  what: string;
  /**
   * What to do. `flag`, when the caller knows which flag or variable named the path (`-o`,
   * `--digest-file`, `IMGBUILD_CACHE_DIR`), is offered for the problems another path solves.
   */
  hint(flag?: string): string;
}

type Entry = Omit<FsProblem, 'code'>;

const or = (flag: string | undefined, fix: string): string => (flag ? `${fix}, or name another path with ${flag}` : fix);

const PROBLEMS: Readonly<Record<string, Entry>> = {
  EACCES: { what: 'permission denied', hint: (f) => or(f, 'check the permissions of the file and of its directory (ls -ld)') },
  EPERM: { what: 'operation not permitted', hint: (f) => or(f, 'check the permissions of the file and of its directory (ls -ld), and its attributes (lsattr)') },
  ENOSPC: { what: 'no space left on the device', hint: (f) => or(f, 'free space') },
  EDQUOT: { what: 'disk quota exceeded', hint: (f) => or(f, 'free space within your quota') },
  EROFS: { what: 'read-only file system', hint: (f) => (f ? `name a path on a writable file system with ${f}` : 'write to a writable file system (or remount this one read-write)') },
  ENAMETOOLONG: { what: 'file name too long (a name holds at most 255 bytes, a path 4095)', hint: (f) => (f ? `name a shorter path with ${f}` : 'use a shorter file name') },
  ELOOP: { what: 'too many levels of symbolic links (a symlink loop on the path?)', hint: (f) => or(f, 'check the symbolic links on the path (ls -l each directory)') },
  EMFILE: { what: 'too many open files in this process', hint: () => 'raise the limit of open files (ulimit -n 4096) and run it again' },
  ENFILE: { what: 'too many open files on this system', hint: () => 'close programs holding many files, or raise the system limit (sysctl fs.file-max), and run it again' },
  EBUSY: { what: 'device or resource busy (a mount point, or a file in use)', hint: (f) => or(f, 'wait until it is no longer in use') },
  ETXTBSY: { what: 'text file busy (a program running from that file)', hint: (f) => or(f, 'stop the program running from it') },
  EXDEV: { what: 'cross-device link (a rename or hard link between two file systems)', hint: (f) => or(f, 'keep the file and its directory on one file system (is it a mount point or a bind mount?)') },
  EFBIG: { what: 'file too large for this file system or for the file size limit', hint: (f) => or(f, 'write to a file system that holds large files (FAT32 holds at most 4 GiB), or raise the limit (ulimit -f unlimited)') },
  EIO: { what: 'input/output error (the disk or the file system failed)', hint: (f) => or(f, 'check the disk and the system log (dmesg), then run it again') },
  ENXIO: { what: 'no such device or address (a device that is not there, a socket, or a fifo no one reads)', hint: (f) => (f ? `name a regular file with ${f}` : 'name a regular file') },
  ENODEV: { what: 'no such device (this file system or device cannot do that)', hint: (f) => (f ? `name a regular file on an ordinary file system with ${f}` : 'name a regular file on an ordinary file system') },
  ENOTSUP: { what: 'operation not supported by this file system', hint: (f) => (f ? `name a path on another file system with ${f}` : 'use a file on another file system') },
  EOPNOTSUPP: { what: 'operation not supported by this file system', hint: (f) => (f ? `name a path on another file system with ${f}` : 'use a file on another file system') },
  ESTALE: { what: 'stale file handle (a network file system changed underneath)', hint: () => 'run it again' },
};

/** The problem an errno code is, when it is one of the table's. */
export function fsProblemOfCode(code: unknown): FsProblem | undefined {
  const entry = typeof code === 'string' ? PROBLEMS[code] : undefined;
  return entry ? { code: code as string, ...entry } : undefined;
}

/**
 * The first file system error of the table down `err`'s cause chain (a few levels: streams and
 * our own errors wrap), with the error that carried it (its `path`, `dest`, `syscall`).
 */
export function fsProblem(err: unknown): { problem: FsProblem; error: NodeJS.ErrnoException & { dest?: string } } | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const problem = fsProblemOfCode((e as { code?: unknown }).code);
    if (problem && e instanceof Error) return { problem, error: e as NodeJS.ErrnoException & { dest?: string } };
  }
  return undefined;
}
