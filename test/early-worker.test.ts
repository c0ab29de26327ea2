// The build's first worker, started by the executable before the build command loads
// (commands/early-worker.ts): started only for a build that would start one, handed over once,
// taken by the build's pool as its first worker, and terminated when no build takes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { dropEarlyBuildWorker, startEarlyBuildWorker, takeEarlyBuildWorker } from '../builder/commands/early-worker.js';
import { buildImage } from '../builder/build/build-image.js';
import { loadSpec } from '../builder/spec/load.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';

test('no worker is started for another command, --help, -h, one core, or IMGBUILD_WORKERS=0', () => {
  assert.equal(startEarlyBuildWorker(['push', 'oci:x', 'r/x:1'], {}, 2), undefined);
  assert.equal(startEarlyBuildWorker([], {}, 2), undefined);
  assert.equal(startEarlyBuildWorker(['build', '--help'], {}, 2), undefined);
  assert.equal(startEarlyBuildWorker(['build', 'image.json', '-h'], {}, 2), undefined);
  assert.equal(startEarlyBuildWorker(['build', 'image.json'], {}, 1), undefined);
  assert.equal(startEarlyBuildWorker(['build', 'image.json'], { IMGBUILD_WORKERS: '0' }, 2), undefined);
  assert.equal(startEarlyBuildWorker(['build', 'image.json'], { IMGBUILD_WORKERS: 'off' }, 2), undefined);
  assert.equal(takeEarlyBuildWorker(), undefined);
});

test('a build gets one worker, handed over once; asking again while it is held starts no second one', async () => {
  const worker = startEarlyBuildWorker(['build', 'image.json', '-o', 'out.oci'], {}, 2);
  try {
    assert.ok(worker);
    assert.equal(startEarlyBuildWorker(['build', 'image.json'], {}, 2), worker);
    assert.equal(takeEarlyBuildWorker(), worker);
    assert.equal(takeEarlyBuildWorker(), undefined, 'given once');
  } finally {
    await worker?.terminate();
  }
});

test('a started worker no build took is terminated by dropEarlyBuildWorker', async () => {
  const worker = startEarlyBuildWorker(['build', 'image.json'], {}, 2)!;
  const exited = once(worker, 'exit');
  await dropEarlyBuildWorker();
  await exited;
  assert.equal(takeEarlyBuildWorker(), undefined);
});

test('a worker that dies before it is taken leaves nothing to take, and the next start makes a new one', async () => {
  const worker = startEarlyBuildWorker(['build', 'image.json'], {}, 2)!;
  const exited = once(worker, 'exit');
  await worker.terminate();
  await exited;
  assert.equal(takeEarlyBuildWorker(), undefined);
  const next = startEarlyBuildWorker(['build', 'image.json'], {}, 2);
  assert.ok(next && next !== worker);
  await dropEarlyBuildWorker();
});

test('the build\'s pool takes the started worker as its first, ends it with the build, and the image is the one built without workers', async () => {
  const dir = join(await tempDir('imgbuild-early-worker-'), 'store');
  const paths: string[] = [];
  for (const [i, c] of ['a', 'b', 'c'].entries()) {
    const base = `${c.repeat(32)}-p${i}`;
    mkdirSync(join(dir, base, 'share'), { recursive: true });
    // Over the hand-over's inline size, so that the layers are written by a worker too.
    writeFileSync(join(dir, base, 'share', 'data'), Buffer.alloc(64 * 1024 + i, i + 1));
    paths.push(`${SD}/${base}`);
  }
  const specFile = join(dir, '..', 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'early-worker/test', tag: 'v1', architecture: 'amd64', store: { dir, storeDir: SD }, contents: paths }));
  const spec = await loadSpec(specFile, {});

  const started = startEarlyBuildWorker(['build', specFile], {}, 2)!;
  assert.equal(takeEarlyBuildWorker(), started);
  const exited = once(started, 'exit');
  let asked = 0;
  let given = 0;
  const startedWorker = () => {
    asked++;
    if (given > 0) return undefined;
    given++;
    return started;
  };
  const store = new DirectoryStoreSource(dir, SD, { cacheDir: false });
  const withStarted = await buildImage(spec, { workers: 1, store, cacheDir: await tempDir(), startedWorker });
  assert.equal(given, 1, 'the pool took the started worker');
  assert.equal(asked >= 1, true);
  // The build's pool closed: the worker it took is terminated with it.
  await exited;
  const alone = await buildImage(spec, { workers: false, store: new DirectoryStoreSource(dir, SD, { cacheDir: false }), cacheDir: await tempDir() });
  assert.equal(withStarted.image.descriptor.digest, alone.image.descriptor.digest);
});
