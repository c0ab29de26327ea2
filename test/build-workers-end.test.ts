// A build ends its workers once its closure is found when no store layer can use one: a
// directory store whose scans handed over every path's files whole has each layer written on
// the main thread, and an idle worker's heap only adds to peak RSS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImage, storeLayersMayUseWorkers } from '../builder/build/build-image.js';
import { loadSpec } from '../builder/spec/load.js';
import { BuildWorkerPool } from '../builder/workers/pool.js';
import { EmptyStoreSource } from '../builder/store/empty-source.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { INLINE_FILE_MAX } from '../builder/store/handover.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const SMALL = `${SD}/${'a'.repeat(32)}-small`;
const BIG = `${SD}/${'b'.repeat(32)}-big`;

async function store(): Promise<string> {
  const dir = join(await tempDir('imgbuild-workers-end-'), 'store');
  mkdirSync(join(dir, SMALL.slice(SD.length + 1), 'bin'), { recursive: true });
  writeFileSync(join(dir, SMALL.slice(SD.length + 1), 'bin', 'small'), 'tiny\n');
  mkdirSync(join(dir, BIG.slice(SD.length + 1)), { recursive: true });
  writeFileSync(join(dir, BIG.slice(SD.length + 1), 'blob'), Buffer.alloc(INLINE_FILE_MAX + 1, 1));
  return dir;
}

test('no store layer can use a worker when every path of the closure was handed over whole', async () => {
  const src = new DirectoryStoreSource(await store(), SD);
  src.keepHandovers(1 << 20);
  const closure = await src.closure([SMALL]);
  assert.equal(storeLayersMayUseWorkers(src, closure.paths.map((p) => p.path)), false);
});

test('a path with a file over INLINE_FILE_MAX (read from disk by its layer writer) keeps the workers', async () => {
  const src = new DirectoryStoreSource(await store(), SD);
  src.keepHandovers(1 << 20);
  const closure = await src.closure([SMALL, BIG]);
  assert.equal(storeLayersMayUseWorkers(src, closure.paths.map((p) => p.path)), true);
});

test('without hand-over records (or past their budget) the layers walk the files: the workers are kept', async () => {
  const dir = await store();
  const plain = new DirectoryStoreSource(dir, SD);
  await plain.closure([SMALL]);
  assert.equal(storeLayersMayUseWorkers(plain, [SMALL]), true);
  const tight = new DirectoryStoreSource(dir, SD);
  tight.keepHandovers(8);
  assert.equal(storeLayersMayUseWorkers(tight, (await tight.closure([SMALL])).paths.map((p) => p.path)), true);
});

test('a store that is not a directory (here: empty) keeps the workers it has', async () => {
  const src = new EmptyStoreSource(SD);
  assert.equal(storeLayersMayUseWorkers(src, []), true);
});

test('scansDone hears the closure\'s paths once, when all are scanned and before the closure returns; not without offload', async () => {
  const dir = await store();
  const src = new DirectoryStoreSource(dir, SD);
  const pool = new BuildWorkerPool(1);
  const heard: string[][] = [];
  let returned = false;
  try {
    src.scanWith(
      (job) => pool.runQueued('scan-store-path', job),
      (paths) => heard.push(returned ? ['after the closure'] : [...paths].sort()),
    );
    const closure = await src.closure([SMALL, BIG]);
    returned = true;
    assert.deepEqual(heard, [closure.paths.map((p) => p.path)]);
  } finally {
    await pool.close();
  }
  const alone = new DirectoryStoreSource(dir, SD);
  alone.scanWith(undefined, () => heard.push(['without offload']));
  await alone.closure([SMALL]);
  assert.equal(heard.length, 1);
});

test('a build of tiny paths with a worker (ended after the scans) gives the image built without workers', async () => {
  const dir = await store();
  const specFile = join(dir, '..', 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'workers-end/test', tag: 'v1', architecture: 'amd64', store: { dir, storeDir: SD }, contents: [SMALL] }));
  const spec = await loadSpec(specFile, {});
  const digests: string[] = [];
  for (const workers of [1, false] as const) {
    const store = new DirectoryStoreSource(dir, SD, { cacheDir: false });
    const { image } = await buildImage(spec, { workers, store, cacheDir: await tempDir() });
    digests.push(image.descriptor.digest);
  }
  assert.equal(digests[0], digests[1]);
});
