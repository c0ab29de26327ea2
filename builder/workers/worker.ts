/**
 * Worker thread entry (started by pool.ts): runs build jobs, one message per job, with exactly
 * the main thread's code paths, so the results (and a layer's bytes) are the same.
 */
import { parentPort } from 'node:worker_threads';
import { BlobStore } from '../blobs/blob-store.js';
import { storeLayerNarEntries } from '../layer/nar-entries.js';
import { storeLayerEntries } from '../layer/tree-entries.js';
import { verifiedNar } from '../store/binary-cache/source.js';
import { withPerms, withPermsAsync } from '../layer/perms.js';
import { measureLayer, writeLayer } from '../layer/write-layer.js';
import { runStorePathScanJob } from '../store/path-scan.js';
import { HandoverReader } from '../store/handover-arena.js';
import type { JobKind, Jobs } from './jobs.js';
import { SHARED_KEY } from '../store/shared-value.js';
import type { FromWorker, ToWorker } from './pool.js';
import { toWireError } from './wire-error.js';

const port = parentPort;
if (!port) throw new Error('worker.js must run in a worker thread (see pool.ts)');

/** A job's progress reports, sent to the main thread; undefined when the caller asked for none. */
type Progress = ((value: number) => void) | undefined;

type Handlers = { [K in JobKind]: (job: Jobs[K]['job'], signal: AbortSignal, progress: Progress) => Promise<Jobs[K]['result']> };

const handlers: Handlers = {
  'write-store-layer': (job, signal, progress) => {
    const handover = job.handover;
    const reader = handover ? new HandoverReader(handover.buffers) : undefined;
    const handoverOf = reader ? (_: string, k: number) => reader.record(handover!.at[k]!) : undefined;
    const entries = withPerms(storeLayerEntries(job.paths, storeLayerFsPaths(job), job.storeDir, handoverOf), job.perms ?? []);
    // The writer throttles its reports (10 a second), so a message per report is cheap.
    const options = { header: job.header, compressor: job.compressor, signal, ...(progress ? { onProgress: progress } : {}) };
    return job.blobRoot === undefined ? measureLayer(entries, options) : writeLayer(entries, options, new BlobStore(job.blobRoot));
  },
  'write-nar-layer': (job, signal, progress) => {
    const base = new URL(job.nars.cacheUrl);
    const entries = withPermsAsync(storeLayerNarEntries(job.paths, (p) => verifiedNar(p, job.nars.infos[p]!, base, { ...job.nars.fetch, signal }), job.storeDir), job.perms ?? []);
    const options = { header: job.header, compressor: job.compressor, signal, ...(progress ? { onProgress: progress } : {}) };
    return job.blobRoot === undefined ? measureLayer(entries, options) : writeLayer(entries, options, new BlobStore(job.blobRoot));
  },
  // One after the other: a job queued behind another (pool.ts runQueued) starts when it ends,
  // rather than sharing the thread with it and answering only when both do.
  'scan-store-path': (job) => {
    const scan = scans.then(() => runStorePathScanJob(job));
    scans = scan.catch(() => undefined);
    return scan;
  },
};

/** The scan jobs given so far, settled when the last has. */
let scans: Promise<unknown> = Promise.resolve();

/** Where a store layer job's paths are: each one's fsPath given, or `<fsDir>/<base name>` (jobs.ts). */
function storeLayerFsPaths(job: Jobs['write-store-layer']['job']): (storePath: string) => string {
  if (job.fsDir !== undefined) {
    const dir = job.fsDir === '/' ? '/' : `${job.fsDir}/`;
    const skip = job.storeDir === '/' ? 1 : job.storeDir.length + 1;
    return (p) => dir + p.slice(skip);
  }
  const where = new Map<string, string>();
  job.paths.forEach((p, i) => where.set(p, job.fsPaths![i]!));
  return (p) => where.get(p)!;
}

/** The signal of a job that cannot be stopped early (its handler does not read it). */
const NEVER = new AbortController();

/** Jobs in progress, by id, so that an abort message reaches the right one. */
const running = new Map<number, AbortController>();

/** SharedValues' values by key (pool.ts sends each once, before the first job naming it). */
const shared = new Map<string, unknown>();

port.on('message', (m: ToWorker) => {
  if (m.type === 'abort') running.get(m.id)?.abort();
  else if (m.type === 'share') shared.set(m.key, m.value);
  else void run(m.id, m.kind, withShared(m.job), m.progress === true);
});

/** The job with each shared value's stand-in replaced by the value (the same object every time). */
function withShared(job: Jobs[JobKind]['job']): Jobs[JobKind]['job'] {
  const out: Record<string, unknown> = job as unknown as Record<string, unknown>;
  for (const [field, v] of Object.entries(out)) {
    if (typeof v === 'object' && v !== null && SHARED_KEY in v) out[field] = shared.get((v as Record<string, string>)[SHARED_KEY]!);
  }
  return job;
}

async function run(id: number, kind: JobKind, job: Jobs[JobKind]['job'], wantsProgress: boolean): Promise<void> {
  // Only the jobs that can stop early get a controller: a scan job per store path made one each
  // for nothing (50,000 of them in a closure of 50,000 paths).
  const abort = kind === 'scan-store-path' ? undefined : new AbortController();
  if (abort) running.set(id, abort);
  let reply: FromWorker;
  const progress: Progress = wantsProgress ? (value) => port!.postMessage({ type: 'progress', id, value } satisfies FromWorker) : undefined;
  try {
    const handler = handlers[kind] as (job: Jobs[JobKind]['job'], signal: AbortSignal, progress: Progress) => Promise<Jobs[JobKind]['result']>;
    reply = { type: 'done', id, result: await handler(job, (abort ?? NEVER).signal, progress) };
  } catch (err) {
    // A job cleans up (temp files) before rejecting.
    reply = { type: 'failed', id, error: toWireError(err) };
  } finally {
    running.delete(id);
  }
  port!.postMessage(reply);
}
