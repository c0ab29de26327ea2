/**
 * Worker thread entry (started by threaded-sink.ts): hashes an uncompressed layer's bytes and
 * writes them to its temp file, while the thread that started it makes the tar. It imports only
 * Node's modules: started in ~20 ms.
 *
 * Messages in: `{ buf, length }` (an ArrayBuffer, transferred: the next `length` bytes of the
 * blob), then `{ end: true }`. Out: each buffer back once written (`{ buf }`, transferred), then
 * `{ digest }` (hex); or `{ error }` at the first failure, after which nothing is written.
 */
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { fd } = workerData as { fd: number };
const hash = createHash('sha256');
let position = 0;
let failed = false;

parentPort!.on('message', (m: { buf: ArrayBuffer; length: number } | { end: true }) => {
  if (failed) return;
  try {
    if ('end' in m) {
      parentPort!.postMessage({ digest: hash.digest('hex') });
      return;
    }
    const bytes = new Uint8Array(m.buf, 0, m.length);
    hash.update(bytes);
    let off = 0;
    while (off < m.length) {
      const n = writeSync(fd, bytes, off, m.length - off, position + off);
      if (n === 0) throw new Error('layer write: the file took no bytes');
      off += n;
    }
    position += m.length;
    parentPort!.postMessage({ buf: m.buf }, [m.buf]);
  } catch (e) {
    failed = true;
    const err = e as NodeJS.ErrnoException;
    parentPort!.postMessage({ error: { message: err.message, code: err.code, errno: err.errno, syscall: err.syscall } });
  }
});
