import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { LayerContentError } from '../errors.js';

/** Read size: large enough to keep syscalls and per-chunk hashing cheap, small enough to keep memory flat. */
export const READ_CHUNK = 512 * 1024;

/**
 * The bytes of a regular file, which must be exactly `size` bytes long: the size already written
 * in the tar header. A file that shrinks or grows while it is read fails with LayerContentError
 * instead of producing a tar whose header and content disagree.
 *
 * Each chunk is a fresh buffer (consumers may hold on to it); at most one chunk is in flight.
 */
export async function* readFileExactly(fsPath: string, size: number, signal?: AbortSignal): AsyncGenerator<Buffer> {
  // A store holds tens of thousands of small files: a thread-pool round trip for each of open,
  // stat, read and close cost more than the reads (bench/build-speed.ts), so a file that fits in
  // one chunk is read with synchronous calls; big files stream with async reads.
  if (size < READ_CHUNK) {
    const data = readSmallFile(fsPath, size);
    if (data.length > 0) yield data;
    return;
  }
  // O_NONBLOCK: if the path was swapped for a fifo since it was listed, open must not hang.
  const fh = await open(fsPath, constants.O_RDONLY | constants.O_NONBLOCK).catch((err: unknown) => {
    throw new LayerContentError(`cannot open ${fsPath}: ${errText(err)}`, fsPath);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new LayerContentError(`${fsPath} is no longer a regular file`, fsPath);
    let remaining = size;
    for (;;) {
      signal?.throwIfAborted();
      // Asking for one byte more than expected detects growth without an extra read at the end.
      const want = Math.min(READ_CHUNK, remaining + 1);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, null).catch((err: unknown) => {
        throw new LayerContentError(`cannot read ${fsPath}: ${errText(err)}`, fsPath);
      });
      if (bytesRead > remaining) {
        throw new LayerContentError(`${fsPath} grew while it was being read (expected ${size} bytes)`, fsPath, 'do not modify the inputs during a build');
      }
      if (bytesRead === 0) {
        if (remaining > 0) {
          throw new LayerContentError(
            `${fsPath} shrank while it was being read (expected ${size} bytes, got ${size - remaining})`,
            fsPath,
            'do not modify the inputs during a build',
          );
        }
        return;
      }
      remaining -= bytesRead;
      yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
      // A short read of a regular file means end of file: done if it ended where expected.
      if (remaining === 0 && bytesRead < want) return;
    }
  } finally {
    await fh.close();
  }
}

/** The whole of a file smaller than READ_CHUNK, synchronously, with the same checks as the streaming path. */
function readSmallFile(fsPath: string, size: number): Buffer {
  let fd: number;
  try {
    fd = openSync(fsPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new LayerContentError(`cannot open ${fsPath}: ${errText(err)}`, fsPath);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new LayerContentError(`${fsPath} is no longer a regular file`, fsPath);
    // One byte more than expected detects growth.
    const buf = Buffer.allocUnsafe(size + 1);
    let got = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, got, buf.length - got, null);
      } catch (err) {
        throw new LayerContentError(`cannot read ${fsPath}: ${errText(err)}`, fsPath);
      }
      if (n === 0) break;
      got += n;
      if (got > size) {
        throw new LayerContentError(`${fsPath} grew while it was being read (expected ${size} bytes)`, fsPath, 'do not modify the inputs during a build');
      }
    }
    if (got < size) {
      throw new LayerContentError(
        `${fsPath} shrank while it was being read (expected ${size} bytes, got ${got})`,
        fsPath,
        'do not modify the inputs during a build',
      );
    }
    return buf.subarray(0, size);
  } finally {
    closeSync(fd);
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
