// An uncompressed layer's hash and writes on a thread of their own (layer/threaded-sink.ts): the
// same blob and digest as on one thread, no thread for a small layer, a write failure of the
// thread's thrown here, and no thread left running after a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { builderFile } from '../builder/install-paths.js';
import { hashThreads, THREAD_FROM, ThreadedPlainSink } from '../builder/layer/threaded-sink.js';
import { writeLayer } from '../builder/layer/write-layer.js';
import type { LayerEntry, LayerWriteOptions } from '../builder/layer/types.js';
import { tempDir } from './helpers/tmp.js';

const header = { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' };

/** Files of varied sizes and bytes, ~`mib` MiB in all. */
function* entries(mib: number, failAt?: number): Generator<LayerEntry> {
  yield { kind: 'directory', path: 'data', mode: 0o755 } as LayerEntry;
  for (let i = 0; i < mib * 4; i++) {
    if (i === failAt) throw new Error('the entries failed');
    yield { kind: 'file', path: `data/f${String(i).padStart(5, '0')}`, mode: 0o644, content: { from: 'bytes', data: Buffer.alloc(256 * 1024 - 1000 + (i % 7) * 300, i % 251) } } as LayerEntry;
  }
}

/** Starts the real thread, and keeps it for the test to look at. */
function counting(): { started: Worker[]; start: (fd: number) => Worker } {
  const started: Worker[] = [];
  return { started, start: (fd) => (started.push(new Worker(builderFile('layer/hash-thread.js'), { workerData: { fd } })), started.at(-1)!) };
}

async function sinkOf(pieces: Buffer[], start: (fd: number) => Worker, flags = 'wx'): Promise<{ path: string; result: Awaited<ReturnType<ThreadedPlainSink['finish']>> }> {
  const path = join(await tempDir('imgbuild-hash-thread-'), 'blob');
  if (flags === 'r') closeSync(openSync(path, 'w'));
  const fd = openSync(path, flags);
  try {
    const sink = new ThreadedPlainSink(fd, start);
    try {
      for (const piece of pieces) await sink.write(piece);
      return { path, result: await sink.finish() };
    } catch (e) {
      await sink.abandon();
      throw e;
    }
  } finally {
    closeSync(fd);
  }
}

const pieces = (count: number, size: number) => Array.from({ length: count }, (_, i) => Buffer.alloc(size + (i % 5) * 1000, i % 251));
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('past its first 8 MiB a layer is hashed and written by the thread: the file and digest of the bytes given', async () => {
  const { started, start } = counting();
  const all = pieces(120, 256 * 1024); // ~30 MiB
  const { path, result } = await sinkOf(all, start);
  const bytes = Buffer.concat(all);
  assert.equal(started.length, 1);
  assert.ok(bytes.length > THREAD_FROM);
  assert.deepEqual(readFileSync(path), bytes);
  assert.deepEqual(result, { digest: sha256(bytes), diffId: sha256(bytes), size: bytes.length, uncompressedSize: bytes.length });
  assert.equal(started[0]!.threadId, -1, 'the thread still runs');
});

test('a layer of at most 8 MiB starts no thread: hashed and written at its end, the same bytes', async () => {
  const { started, start } = counting();
  const all = pieces(30, 256 * 1024); // ~7.5 MiB
  const { path, result } = await sinkOf(all, start);
  const bytes = Buffer.concat(all);
  assert.ok(bytes.length <= THREAD_FROM);
  assert.equal(started.length, 0);
  assert.deepEqual(readFileSync(path), bytes);
  assert.equal(result.digest, sha256(bytes));
});

test('a write the thread cannot make (a read-only file) is its error, thrown here, and the thread ends', async () => {
  const { started, start } = counting();
  await assert.rejects(sinkOf(pieces(120, 256 * 1024), start, 'r'), (e: NodeJS.ErrnoException) => e.code === 'EBADF' && e.syscall === 'write');
  assert.equal(started.length, 1);
  assert.equal(started[0]!.threadId, -1, 'the thread still runs');
});

test('writeLayer with the hash thread gives the blob writeLayer gives without it', async () => {
  const options: LayerWriteOptions = { header, compressor: 'none' };
  const one = new BlobStore(await tempDir('imgbuild-hash-thread-'));
  const two = new BlobStore(await tempDir('imgbuild-hash-thread-'));
  const plain = await writeLayer(entries(24), options, one);
  const threaded = await writeLayer(entries(24), { ...options, hashThread: true }, two);
  assert.deepEqual(threaded, plain);
  const file = (s: BlobStore, d: string) => readFileSync(join(s.root, 'sha256', d.slice('sha256:'.length)));
  assert.ok(file(two, threaded.digest).equals(file(one, plain.digest)));
});

test('writeLayer failing past the thread\'s start leaves no temp file and no thread', async () => {
  const store = new BlobStore(await tempDir('imgbuild-hash-thread-'));
  const started = hashThreads.started;
  await assert.rejects(writeLayer(entries(24, 60), { header, compressor: 'none', hashThread: true }, store), /the entries failed/);
  assert.equal(hashThreads.started, started + 1);
  assert.equal(hashThreads.running, 0);
  assert.deepEqual(readdirSync(join(store.root, 'sha256')), []);
});
