// Two builds at once sharing one cache directory (two CLI processes, as two CI jobs on one runner
// would): both succeed with the same image, the cache holds whole records and blobs only, and a
// third build takes everything from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImage } from '../builder/build/build-image.js';
import type { BuildEvent } from '../builder/build/context.js';
import { loadSpec } from '../builder/spec/load.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { payload } from './helpers/payload.js';

const SD = '/nix/store';

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

test('two builds at once sharing a cache both succeed with one digest; the cache holds no torn file; a third build hits for every layer', async () => {
  const root = await tempDir('imgbuild-cache-concurrent-');
  const storeDir = join(root, 'store');
  const names = [`${'f'.repeat(32)}-big-1`, `${'g'.repeat(32)}-big-2`, `${'h'.repeat(32)}-small`];
  for (const [i, name] of names.entries()) {
    await mkdir(join(storeDir, name, 'share'), { recursive: true });
    await writeFile(join(storeDir, name, 'share', 'data'), payload(i < 2 ? 6 << 20 : 1000, i + 1));
  }
  const specFile = join(root, 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'cache-test/concurrent', architecture: 'amd64', tag: 'v1', store: { dir: storeDir, storeDir: SD }, contents: names.map((n) => `${SD}/${n}`) }));
  const cacheDir = join(root, 'cache');
  const env = { ...process.env, IMGBUILD_CACHE_DIR: cacheDir };

  const [a, b] = await Promise.all(
    ['a', 'b'].map((x) => runCli(['build', specFile, '-o', join(root, `${x}.oci`), '--json'], { env, cwd: root })),
  );
  assert.equal(a!.code, 0, a!.stderr);
  assert.equal(b!.code, 0, b!.stderr);
  const digestA = JSON.parse(a!.stdout.toString()).digest as string;
  assert.equal(JSON.parse(b!.stdout.toString()).digest, digestA);

  const files = await allFiles(cacheDir);
  assert.deepEqual(files.filter((f) => /\.tmp|\/\.tmp-/.test(f)), [], 'no temp file left');
  const records = files.filter((f) => f.startsWith(join(cacheDir, 'layers')));
  assert.equal(records.length, 4, 'three store layers and the customisation layer');

  const events: BuildEvent[] = [];
  const { image } = await buildImage(await loadSpec(specFile, {}), {
    store: new DirectoryStoreSource(storeDir, SD, { cacheDir: join(cacheDir, 'scan') }),
    cacheDir,
    onEvent: (e) => events.push(e),
  });
  const origins = events.flatMap((e) => (e.phase === 'layer-done' ? [e.origin] : []));
  assert.deepEqual(origins, ['cached', 'cached', 'cached', 'cached']);
  assert.equal(image.descriptor.digest, digestA);
});
