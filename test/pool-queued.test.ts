// Jobs queued in a busy worker (BuildWorkerPool.runQueued): a directory store's scan batches wait
// in the worker behind the one it is doing, so it never waits for the main thread to send the
// next; the results are those of the main thread, answered in the order given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildWorkerPool } from '../builder/workers/pool.js';
import { WORKER_OPTIONS } from '../builder/workers/options.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { runStorePathScanJob, type StorePathScanJob } from '../builder/store/path-scan.js';
import { SharedValue } from '../builder/store/shared-value.js';
import { readScanRecords } from '../builder/store/scan-cache.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';

/** A store of `n` paths, each a bin/ and one small file: the first references all the others, each other one the next. */
async function chainStore(n: number): Promise<{ dir: string; paths: string[] }> {
  const dir = join(await tempDir('imgbuild-pool-queued-'), 'store');
  const b32 = '0123456789abcdfghijklmnpqrsvwxyz';
  const bases = Array.from({ length: n }, (_, i) => `${b32[i % 32]!.repeat(31)}${b32[Math.floor(i / 32)]}-p${i}`);
  for (let i = 0; i < n; i++) {
    await mkdir(join(dir, bases[i]!, 'bin'), { recursive: true });
    const refs = i === 0 ? bases.slice(1) : bases.slice(i + 1, i + 2);
    await writeFile(join(dir, bases[i]!, 'bin', `p${i}`), refs.map((b) => `uses ${SD}/${b}/bin\n`).join(''));
  }
  await pastRacyWindow(); // a scan within a clock tick of the files makes no record
  return { dir, paths: bases.map((b) => `${SD}/${b}`) };
}

function scanJob(dir: string, paths: string[], all: string[]): StorePathScanJob {
  return {
    fsPaths: paths.map((p) => join(dir, p.slice(SD.length + 1))),
    targets: new SharedValue(`pool-queued-test:${dir}`, { hashParts: all.map((p) => p.slice(SD.length + 1, SD.length + 33)) }),
    keepRecord: true,
    storeDir: SD,
  };
}

test('runQueued: a second job waits in the busy worker, a third is refused, the answers come in order and equal the in-process scans', async () => {
  const store = await chainStore(6);
  const jobs = [store.paths.slice(0, 2), store.paths.slice(2, 4), store.paths.slice(4)].map((p) => scanJob(store.dir, p, store.paths));
  const expected = [];
  for (const job of jobs) expected.push(await runStorePathScanJob(job));
  const pool = new BuildWorkerPool(1);
  try {
    const order: number[] = [];
    const first = pool.runQueued('scan-store-path', jobs[0]!);
    const second = pool.runQueued('scan-store-path', jobs[1]!);
    assert.ok(first && second, 'the free worker takes one job and keeps one waiting');
    assert.equal(pool.runQueued('scan-store-path', jobs[2]!), undefined, 'a third job is left to the caller');
    assert.equal(pool.hasFreeWorker, false);
    const got = await Promise.all([first.then((r) => (order.push(0), r)), second.then((r) => (order.push(1), r))]);
    assert.deepEqual(order, [0, 1]);
    assert.deepEqual(got, expected.slice(0, 2));
    assert.equal(pool.started, 1);
    // Both answered: the worker is free for any job again.
    assert.equal(pool.hasFreeWorker, true);
    const third = pool.runQueued('scan-store-path', jobs[2]!);
    assert.ok(third);
    assert.deepEqual(await third, expected[2]);
  } finally {
    await pool.close();
  }
  assert.equal(pool.runQueued('scan-store-path', jobs[0]!), undefined, 'a closed pool takes nothing');
});

test('a closure scanned with batches queued in the worker gives the in-process closure, content ids and scan records', async () => {
  const store = await chainStore(100);
  const results: unknown[] = [];
  for (const queued of [false, true]) {
    const cacheDir = await tempDir();
    const source = new DirectoryStoreSource(store.dir, SD, { cacheDir });
    const pool = new BuildWorkerPool(1);
    let offloaded = 0;
    let inflight = 0;
    let most = 0;
    if (queued) {
      // As a build does: small batches may wait in the worker (these are: tiny paths).
      source.scanWith((job, mayWait) => {
        const p = mayWait ? pool.runQueued('scan-store-path', job) : pool.hasFreeWorker ? pool.run('scan-store-path', job) : undefined;
        if (!p) return undefined;
        most = Math.max(most, ++inflight);
        offloaded += job.fsPaths.length;
        return p.finally(() => inflight--);
      });
    }
    try {
      const closure = await source.closure([store.paths[0]!]);
      const ids = await source.pathContentIds(closure.paths.map((p) => p.path));
      const records = readScanRecords(cacheDir)
        .map((r) => JSON.stringify(r))
        .sort();
      results.push({ closure, ids, stats: { ...source.stats }, records });
      if (queued) assert.ok(offloaded > 0 && most === 2, `paths were scanned in the worker, two batches at once (${offloaded}, ${most})`);
    } finally {
      await pool.close();
    }
  }
  assert.equal((results[0] as { closure: { paths: unknown[] } }).closure.paths.length, 100);
  assert.deepEqual(results[1], results[0]);
});

test('the pool starts its workers with a capped young generation (WORKER_OPTIONS): the scan results are the same', async () => {
  const store = await chainStore(3);
  const job = scanJob(store.dir, store.paths, store.paths);
  const pool = new BuildWorkerPool(1);
  try {
    assert.deepEqual(await pool.run('scan-store-path', job), await runStorePathScanJob(job));
    // The worker's own view of its limits (pool.ts keeps its workers to itself).
    const [worker] = [...(pool as unknown as { all: Set<import('node:worker_threads').Worker> }).all];
    assert.equal(worker?.resourceLimits?.maxYoungGenerationSizeMb, WORKER_OPTIONS.resourceLimits.maxYoungGenerationSizeMb);
  } finally {
    await pool.close();
  }
});

test('runQueued with a signal already aborted rejects (as run does) without starting a worker', async () => {
  const store = await chainStore(1);
  const pool = new BuildWorkerPool(1);
  try {
    const controller = new AbortController();
    controller.abort();
    const p = pool.runQueued('scan-store-path', scanJob(store.dir, store.paths, store.paths), controller.signal);
    assert.ok(p, 'a promise, not a throw');
    await assert.rejects(p, { name: 'AbortError' });
    assert.equal(pool.started, 0);
    assert.equal(pool.hasFreeWorker, true);
  } finally {
    await pool.close();
  }
});
