/**
 * Worker thread entry (started by worker-pool.ts): writes store layers into a blob store, one
 * message per layer, with exactly the main thread's code path, so the bytes are the same.
 */
import { parentPort } from 'node:worker_threads';
import { BlobStore } from '../blobs/blob-store.js';
import { storeLayerEntries } from './tree-entries.js';
import { toWireError, type FromWorker, type StoreLayerJob, type ToWorker } from './worker-pool.js';
import { writeLayer } from './write-layer.js';

const port = parentPort;
if (!port) throw new Error('layer-worker.js must run in a worker thread (see worker-pool.ts)');

/** Writes in progress, by job id, so that an abort message reaches the right one. */
const running = new Map<number, AbortController>();

port.on('message', (m: ToWorker) => {
  if (m.type === 'abort') running.get(m.id)?.abort();
  else void write(m.id, m.job);
});

async function write(id: number, job: StoreLayerJob): Promise<void> {
  const abort = new AbortController();
  running.set(id, abort);
  let reply: FromWorker;
  try {
    const where = new Map<string, string>();
    job.paths.forEach((p, i) => where.set(p, job.fsPaths[i]!));
    const entries = storeLayerEntries(job.paths, (p) => where.get(p)!, job.storeDir);
    const blob = await writeLayer(entries, { header: job.header, compressor: job.compressor, signal: abort.signal }, new BlobStore(job.blobRoot));
    reply = { type: 'done', id, blob };
  } catch (err) {
    // writeLayer has removed its temp file before rejecting.
    reply = { type: 'failed', id, error: toWireError(err) };
  } finally {
    running.delete(id);
  }
  port!.postMessage(reply);
}
