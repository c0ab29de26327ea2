/**
 * Worker thread entry (started by threaded-sink.ts): the sha256 of an uncompressed layer's bytes,
 * while the thread that started it makes the tar and writes it. It imports only Node's modules:
 * started in ~20 ms.
 *
 * Messages in: `{ buf, length }` (a SharedArrayBuffer: the next `length` bytes of the blob, left
 * alone until answered), then `{ end: true }`. Out: `{ hashed: true }` for each buffer, in order,
 * then `{ digest }` (hex).
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const hash = createHash('sha256');

parentPort!.on('message', (m: { buf: SharedArrayBuffer; length: number } | { end: true }) => {
  if ('end' in m) {
    parentPort!.postMessage({ digest: hash.digest('hex') });
    return;
  }
  hash.update(new Uint8Array(m.buf, 0, m.length));
  parentPort!.postMessage({ hashed: true });
});
