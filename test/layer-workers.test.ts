// A build's work in worker threads (store layers, a directory store's path scans): the same
// bytes and results as on the main thread, the same error classes and messages, a clean abort,
// and no thread left behind.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../builder/build/build-image.js';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { LayerContentError, StoreError } from '../builder/errors.js';
import { LayerEntryError } from '../builder/layer/errors.js';
import { storeLayerEntries } from '../builder/layer/tree-entries.js';
import type { Compressor, LayerWriteOptions } from '../builder/layer/types.js';
import type { StoreLayerJob } from '../builder/workers/jobs.js';
import { workersWanted, BuildWorkerPool } from '../builder/workers/pool.js';
import { writeLayer } from '../builder/layer/write-layer.js';
import { loadSpec } from '../builder/spec/load.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { readScanRecords } from '../builder/store/scan-cache.js';
import type { ClosureGraph } from '../layering/types.js';
import { runCli } from './helpers/cli.js';
import { committedBlobs, interruptMidLayer } from './helpers/interrupt.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';
import { payload } from './helpers/payload.js';

const SD = '/nix/store';
const header = { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' };
let storeDir: string;
const a = `${SD}/${'a'.repeat(32)}-alpha-1`;
const b = `${SD}/${'b'.repeat(32)}-beta-2`;
const fsPathOf = (p: string) => join(storeDir, p.slice(SD.length + 1));

before(async () => {
  storeDir = join(await tempDir('imgbuild-workers-'), 'store');
  await mkdir(join(fsPathOf(a), 'bin'), { recursive: true });
  await writeFile(join(fsPathOf(a), 'bin', 'alpha'), payload(700_000, 1), { mode: 0o555 });
  await writeFile(join(fsPathOf(a), 'README'), 'alpha\n');
  await symlink('bin/alpha', join(fsPathOf(a), 'run'));
  await mkdir(join(fsPathOf(b), 'lib'), { recursive: true });
  await writeFile(join(fsPathOf(b), 'lib', 'libbeta.so'), payload(300_000, 2));
});

function job(paths: string[], compressor: Compressor, blobRoot: string): StoreLayerJob {
  return { paths, fsPaths: paths.map(fsPathOf), storeDir: SD, header, compressor, blobRoot };
}

async function tempFiles(root: string): Promise<string[]> {
  return (await readdir(join(root, 'sha256')).catch(() => [] as string[])).filter((f) => f.startsWith('.tmp'));
}

test('workersWanted: the option wins, IMGBUILD_WORKERS=0 disables, one job or one core stays in process', () => {
  assert.equal(workersWanted(undefined, 5, {}, 2), true);
  assert.equal(workersWanted(undefined, 5, { IMGBUILD_WORKERS: '0' }, 2), false);
  assert.equal(workersWanted(undefined, 5, { IMGBUILD_WORKERS: 'false' }, 2), false);
  assert.equal(workersWanted(undefined, 5, { IMGBUILD_WORKERS: '1' }, 2), true);
  assert.equal(workersWanted(undefined, 1, {}, 2), false);
  assert.equal(workersWanted(undefined, 5, {}, 1), false);
  assert.equal(workersWanted(true, 1, { IMGBUILD_WORKERS: '0' }, 1), true);
  assert.equal(workersWanted(false, 5, {}, 8), false);
});

for (const compressor of ['gzip', 'none'] as const) {
  test(`a ${compressor} store layer written by a worker has the main thread's digest, diff_id, size and bytes`, async () => {
    const root = await tempDir();
    const main = new BlobStore(join(root, 'main'));
    const inWorker = new BlobStore(join(root, 'worker'));
    const options: LayerWriteOptions = { header, compressor };
    const expected = await writeLayer(storeLayerEntries([b, a], fsPathOf, SD), options, main);
    const pool = new BuildWorkerPool(2);
    try {
      const got = await pool.writeStoreLayer(job([b, a], compressor, inWorker.root));
      assert.deepEqual(got, expected);
      assert.deepEqual(await readFile(inWorker.path(got.digest)), await readFile(main.path(expected.digest)));
      assert.deepEqual(await tempFiles(inWorker.root), []);
    } finally {
      await pool.close();
    }
  });
}

test('a store layer job naming the store directory (fsDir) writes the bytes of one listing each fsPath', async () => {
  const root = await tempDir();
  const blobs = new BlobStore(root);
  const expected = await writeLayer(storeLayerEntries([b, a], fsPathOf, SD), { header, compressor: 'gzip' }, blobs);
  const pool = new BuildWorkerPool(1);
  try {
    const { fsPaths: _, ...byDir } = job([b, a], 'gzip', root);
    const got = await pool.writeStoreLayer({ ...byDir, fsDir: storeDir });
    assert.deepEqual(got, expected);
  } finally {
    await pool.close();
  }
});

test('a pool of one worker runs three layers queued behind each other, each with its in-process digest', async () => {
  const root = await tempDir();
  const blobs = new BlobStore(root);
  const layers = [[a], [b], [a, b]];
  const expected = [];
  for (const paths of layers) expected.push(await writeLayer(storeLayerEntries(paths, fsPathOf, SD), { header, compressor: 'gzip' }, blobs));
  const pool = new BuildWorkerPool(1);
  try {
    const got = await Promise.all(layers.map((paths) => pool.writeStoreLayer(job(paths, 'gzip', root))));
    assert.deepEqual(got, expected);
    assert.equal(pool.started, 1);
  } finally {
    await pool.close();
  }
  assert.equal(pool.started, 0);
});

/** What writeLayer on the main thread rejects with, for comparison. */
async function inProcessError(paths: string[], fsPaths: (p: string) => string, options: LayerWriteOptions): Promise<Error> {
  const root = await tempDir();
  try {
    await writeLayer(storeLayerEntries(paths, fsPaths, SD), options, new BlobStore(root));
  } catch (err) {
    return err as Error;
  }
  assert.fail('the in-process write succeeded');
}

test('a fifo in a store path: the worker rejects with a LayerContentError with the in-process message, fsPath and code', async () => {
  const odd = `${SD}/${'c'.repeat(32)}-odd-1`;
  await mkdir(fsPathOf(odd), { recursive: true });
  execFileSync('mkfifo', [join(fsPathOf(odd), 'control')]);
  const expected = await inProcessError([odd], fsPathOf, { header, compressor: 'none' });
  assert.ok(expected instanceof LayerContentError);
  const root = await tempDir();
  const pool = new BuildWorkerPool(1);
  try {
    const err = await pool.writeStoreLayer(job([odd], 'none', root)).then(
      () => assert.fail('the worker wrote a layer with a fifo'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LayerContentError, String(err));
    assert.equal(err.message, expected.message);
    assert.equal(err.fsPath, join(fsPathOf(odd), 'control'));
    assert.equal(err.code, 'layer-content');
    assert.equal(err.hint, expected.hint);
    assert.deepEqual(await tempFiles(root), []);
  } finally {
    await pool.close();
  }
});

test('a store path missing on disk: the worker rejects with a StoreError naming the path, with its hint', async () => {
  const gone = `${SD}/${'d'.repeat(32)}-gone-1`;
  const expected = await inProcessError([gone], fsPathOf, { header, compressor: 'gzip' });
  assert.ok(expected instanceof StoreError);
  const pool = new BuildWorkerPool(1);
  try {
    const err = await pool.writeStoreLayer(job([gone], 'gzip', await tempDir())).then(
      () => assert.fail('the worker wrote a layer of a missing path'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof StoreError, String(err));
    assert.equal(err.message, expected.message);
    assert.deepEqual(err.paths, [gone]);
    assert.equal(err.hint, expected.hint);
  } finally {
    await pool.close();
  }
});

test('a uid out of range: the worker rejects with a LayerEntryError with the in-process message', async () => {
  const bad = { ...header, uid: 2 ** 40 };
  const expected = await inProcessError([a], fsPathOf, { header: bad, compressor: 'gzip' });
  assert.ok(expected instanceof LayerEntryError);
  const pool = new BuildWorkerPool(1);
  try {
    const err = await pool.writeStoreLayer({ ...job([a], 'gzip', await tempDir()), header: bad }).then(
      () => assert.fail('the worker accepted the uid'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LayerEntryError, String(err));
    assert.equal(err.message, expected.message);
    assert.equal(err.code, 'layer-entry');
  } finally {
    await pool.close();
  }
});

test('an abort reaches the worker: the write rejects with an AbortError only after its temp blob is gone', async () => {
  // A sparse 2 GiB file reads fast but takes seconds to hash and deflate: the abort lands mid-layer.
  const big = `${SD}/${'e'.repeat(32)}-big-1`;
  await mkdir(fsPathOf(big), { recursive: true });
  execFileSync('truncate', ['-s', '2G', join(fsPathOf(big), 'zeros')]);
  const root = await tempDir();
  const pool = new BuildWorkerPool(1);
  const abort = new AbortController();
  try {
    const writing = pool.writeStoreLayer(job([big], 'gzip', root), abort.signal);
    writing.catch(() => undefined);
    // Abort once the worker has its temp file open.
    while ((await tempFiles(root)).length === 0) await new Promise((r) => setTimeout(r, 10));
    abort.abort();
    await assert.rejects(writing, { name: 'AbortError' });
    assert.deepEqual(await tempFiles(root), [], 'the temp blob was removed before the promise settled');
    assert.deepEqual((await readdir(join(root, 'sha256'))).length, 0, 'nothing committed');
  } finally {
    await pool.close();
  }
});

test('a signal aborted before the call rejects at once without starting a worker', async () => {
  const pool = new BuildWorkerPool(1);
  await assert.rejects(pool.writeStoreLayer(job([a], 'gzip', await tempDir()), AbortSignal.abort()), { name: 'AbortError' });
  assert.equal(pool.started, 0);
  await pool.close();
});

test('examples/hello built with workers and without gives the same manifest, for gzip and for none', async () => {
  for (const compressor of ['gzip', 'none'] as const) {
    const spec = { ...(await loadSpec(join(repoRoot, 'examples/hello/image.ts'), {})), compressor };
    const store = new DirectoryStoreSource(join(repoRoot, 'examples/hello/store'), SD, { cacheDir: false });
    const digests = [];
    for (const workers of [true, false]) {
      const { image, plan } = await buildImage(spec, { workers, store, cacheDir: await tempDir() });
      assert.ok(plan.layers.length > 1, 'several store layers, so the workers write more than one');
      digests.push(image.descriptor.digest);
    }
    assert.equal(digests[0], digests[1], compressor);
  }
});

test('the CLI with IMGBUILD_WORKERS=0 and with workers gives one digest and exits by itself', async () => {
  const digests = [];
  for (const workers of ['0', '1']) {
    const root = await tempDir();
    const env = { ...process.env, IMGBUILD_CACHE_DIR: join(root, 'cache'), IMGBUILD_WORKERS: workers };
    const r = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', join(root, 'out.oci'), '--json'], { env, cwd: root });
    assert.equal(r.code, 0, r.stderr.toString());
    digests.push(JSON.parse(r.stdout.toString()).digest as string);
  }
  assert.equal(digests[0], digests[1]);
});

test('SIGINT while a worker and the main thread each write a big layer: exit 130, no output, no temp blob', async () => {
  const root = await tempDir();
  const store = join(root, 'store');
  const names = [`${'f'.repeat(32)}-big-1`, `${'g'.repeat(32)}-big-2`];
  for (const name of names) {
    await mkdir(join(store, name), { recursive: true });
    // 64 MiB of incompressible data each: 256 deflate blocks, of which the interrupt lets 4 be written.
    const file = await open(join(store, name, 'data'), 'w');
    for (let i = 0; i < 8; i++) await file.write(randomBytes(8 << 20));
    await file.close();
  }
  const specFile = join(root, 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'workers/sigint', architecture: 'amd64', store: { dir: store }, contents: names.map((n) => `${SD}/${n}`)}));
  const out = join(root, 'out.oci');
  const blobDir = join(root, 'cache', 'blobs');
  const child = spawn(process.execPath, [cliPath, 'build', specFile, '-o', out], {
    env: { ...process.env, IMGBUILD_CACHE_DIR: join(root, 'cache'), IMGBUILD_WORKERS: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  // Both layers part-written and unfinished when the SIGINT lands: one in the worker, one on the
  // main thread (two cores; one layer at a time on one core). See interruptMidLayer.
  const writing = Math.min(2, availableParallelism());
  await interruptMidLayer(child, blobDir, { layers: writing, minBytes: 1 << 20, stderr: () => stderr });
  assert.equal(await closed, 130, stderr);
  assert.match(stderr, /interrupted/);
  assert.deepEqual(await tempFiles(blobDir), []);
  assert.deepEqual((await committedBlobs(blobDir)).filter((b) => b.size >= 1 << 20), [], 'no big layer was finished');
  await assert.rejects(readdir(out), { code: 'ENOENT' });
});

/** A directory store of five paths: app -> lib1 -> base, app -> lib2 -> base, and tool (nothing refers to it). */
async function scanStore(): Promise<{ dir: string; app: string; tool: string; all: string[] }> {
  const dir = join(await tempDir('imgbuild-workers-scan-'), 'store');
  const name = (c: string, n: string) => `${c.repeat(32)}-${n}-1`;
  const [base, lib1, lib2, app, tool] = [name('h', 'base'), name('i', 'lib1'), name('j', 'lib2'), name('k', 'app'), name('l', 'tool')];
  const files: [string, string, string][] = [
    [base, 'lib/libbase.so', 'base\n'],
    [lib1, 'lib/lib1.so', `needs ${SD}/${base}/lib\n`],
    [lib2, 'lib/lib2.so', `rpath=${SD}/${base}/lib\n`],
    [app, 'bin/app', `#!${SD}/${lib1}/x ${SD}/${lib2}/y\n`],
    [tool, 'bin/tool', 'standalone\n'],
  ];
  for (const [path, file, text] of files) {
    await mkdir(join(dir, path, file, '..'), { recursive: true });
    await writeFile(join(dir, path, file), text);
  }
  await pastRacyWindow(); // a scan within a clock tick of the files makes no record
  return { dir, app: `${SD}/${app}`, tool: `${SD}/${tool}`, all: [base, lib1, lib2, app, tool].map((n) => `${SD}/${n}`) };
}

test('a directory store scanned on workers gives the in-process closure, content ids, stats and scan records', async () => {
  const store = await scanStore();
  const results: { closure: ClosureGraph; fingerprints: string[]; stats: unknown; records: string[] }[] = [];
  for (const onWorkers of [false, true]) {
    const cacheDir = await tempDir();
    const source = new DirectoryStoreSource(store.dir, SD, { cacheDir });
    const pool = new BuildWorkerPool(1);
    let offloaded = 0;
    if (onWorkers) source.scanWith((job) => (pool.hasFreeWorker ? (offloaded++, pool.run('scan-store-path', job)) : undefined));
    try {
      const closure = await source.closure([store.app, store.tool]);
      const fingerprints = await Promise.all(closure.paths.map((p) => source.pathContentId(p.path)));
      const records = readScanRecords(cacheDir)
        .map((r) => JSON.stringify(r))
        .sort();
      results.push({ closure, fingerprints, stats: { ...source.stats }, records });
      if (onWorkers) assert.ok(offloaded > 0 && pool.started === 1, 'some paths were scanned in the worker');
    } finally {
      await pool.close();
    }
  }
  assert.deepEqual(results[0]!.closure.paths.map((p) => p.path), [...store.all].sort());
  assert.deepEqual(results[1], results[0]);
});

test('a store path holding a fifo: the scan in a worker rejects with the in-process StoreError message', async () => {
  const store = await scanStore();
  execFileSync('mkfifo', [join(store.dir, store.tool.slice(SD.length + 1), 'control')]);
  const errors: unknown[] = [];
  for (const onWorkers of [false, true]) {
    const source = new DirectoryStoreSource(store.dir, SD, { cacheDir: false });
    const pool = new BuildWorkerPool(1);
    // Every path to the worker (when free), so the fifo's path is scanned there.
    if (onWorkers) source.scanWith((job) => pool.run('scan-store-path', job));
    try {
      errors.push(await source.closure([store.tool]).then(() => assert.fail('a fifo was scanned'), (e: unknown) => e));
    } finally {
      await pool.close();
    }
  }
  const [inProcess, inWorker] = errors as [StoreError, StoreError];
  assert.ok(inProcess instanceof StoreError && inWorker instanceof StoreError, String(inWorker));
  assert.match(inWorker.message, /control is neither a regular file, a directory nor a symlink/);
  assert.equal(inWorker.message, inProcess.message);
  assert.deepEqual(inWorker.paths, inProcess.paths);
});
