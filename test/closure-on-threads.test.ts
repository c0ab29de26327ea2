// `imgbuild closure` and `plan` scan a directory store as a build does, on worker threads as well
// as the main thread (closureOnThreads): the same closure as one thread finds, the workers ended.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { closureOnThreads, specClosure } from '../builder/build/build-image.js';
import { loadSpec } from '../builder/spec/load.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { BuildWorkerPool } from '../builder/workers/pool.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
/** A distinct 32-character hash part for `i` (digits of Nix's base32). */
const hashOf = (i: number) => [...i.toString(32).padStart(32, '0')].map((d) => NIX32[parseInt(d, 32)]).join('');

/** A store of `n` paths, each referring to the next two (a closure of all from the first). */
async function chainStore(n: number): Promise<{ dir: string; root: string; specFile: string }> {
  const dir = join(await tempDir('imgbuild-closure-threads-'), 'store');
  const name = (i: number) => `${hashOf(i)}-p${i}`;
  for (let i = 0; i < n; i++) {
    mkdirSync(join(dir, name(i), 'bin'), { recursive: true });
    const refs = [i + 1, i + 2].filter((j) => j < n).map((j) => `${SD}/${name(j)}/bin/tool`);
    writeFileSync(join(dir, name(i), 'bin', 'tool'), `#!/bin/sh\n${refs.join('\n')}\n${'x'.repeat(i * 97)}\n`);
  }
  const root = `${SD}/${name(0)}`;
  const specFile = join(dir, '..', 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'closure/threads', tag: 'v1', architecture: 'amd64', store: { dir, storeDir: SD }, contents: [root] }));
  return { dir, root, specFile };
}

test('closureOnThreads finds the closure one thread finds, with the scans on the workers too', async () => {
  const { dir, specFile } = await chainStore(60);
  const spec = await loadSpec(specFile, {});
  const jobs: string[] = [];
  const { run, runQueued } = BuildWorkerPool.prototype;
  BuildWorkerPool.prototype.run = function (this: BuildWorkerPool, ...args: Parameters<typeof run>) {
    jobs.push(args[0]);
    return run.apply(this, args);
  } as typeof run;
  BuildWorkerPool.prototype.runQueued = function (this: BuildWorkerPool, ...args: Parameters<typeof runQueued>) {
    jobs.push(args[0]);
    return runQueued.apply(this, args);
  } as typeof runQueued;
  let threaded;
  try {
    threaded = await closureOnThreads(spec, new DirectoryStoreSource(dir, SD, { cacheDir: false }), { workers: 1 });
  } finally {
    Object.assign(BuildWorkerPool.prototype, { run, runQueued });
  }
  const alone = await specClosure(spec, new DirectoryStoreSource(dir, SD, { cacheDir: false }));
  assert.ok(jobs.length > 0 && jobs.every((k) => k === 'scan-store-path'), `jobs sent to the workers: ${jobs.join(', ')}`);
  assert.equal(threaded.paths.length, 60);
  assert.deepEqual(
    threaded.paths.map((p) => [p.path, p.narSize, p.references]),
    alone.paths.map((p) => [p.path, p.narSize, p.references]),
  );
});

test('closureOnThreads without workers (workers: false) scans on this thread alone', async () => {
  const { dir, specFile } = await chainStore(5);
  const spec = await loadSpec(specFile, {});
  const closure = await closureOnThreads(spec, new DirectoryStoreSource(dir, SD, { cacheDir: false }), { workers: false });
  assert.equal(closure.paths.length, 5);
});
