// The OCI layout writer puts a few blobs at once (one is hashed while another's reads wait): a
// blob that fails still leaves no output and no temp directory, once the others have settled,
// and the error is that blob's; when none fails, the layout holds every blob, each its own bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { buildImage } from '../builder/build/build-image.js';
import type { Image } from '../builder/model/image.js';
import { loadSpec } from '../builder/spec/load.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { writeOciLayout } from '../builder/transports/oci-layout.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';

/** An image of six store layers and the customisation layer, built into a cache (its layers are files there). */
async function sixLayerImage(): Promise<{ image: Image; root: string }> {
  const root = await tempDir('imgbuild-layout-at-once-');
  const store = join(root, 'store');
  const paths: string[] = [];
  for (const [i, c] of ['a', 'b', 'c', 'd', 'f', 'g'].entries()) {
    const base = `${c.repeat(32)}-p${i}`;
    const file = join(store, base, 'share', 'data');
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, Buffer.alloc(2 * 1024 * 1024 + i * 999, i + 1));
    paths.push(`${SD}/${base}`);
  }
  const specFile = join(root, 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'layout/at-once', tag: 'v1', architecture: 'amd64', store: { dir: store, storeDir: SD }, contents: paths, maxLayers: 10 }));
  const spec = await loadSpec(specFile, {});
  const { image } = await buildImage(spec, { store: new DirectoryStoreSource(store, SD, { cacheDir: false }), cacheDir: join(root, 'cache'), workers: false });
  return { image, root };
}

test('a layout of many blobs holds each blob, its bytes hashing to its name', async () => {
  const { image, root } = await sixLayerImage();
  assert.equal(image.layers.length, 7);
  const out = join(root, 'out.oci');
  await writeOciLayout(image, out);
  const names = (await readdir(join(out, 'blobs', 'sha256'))).sort();
  const expected = [...image.layers.map((l) => l.digest), image.configDescriptor.digest, image.descriptor.digest].map((d) => d.slice('sha256:'.length)).sort();
  assert.deepEqual(names, [...new Set(expected)]);
  for (const name of names) assert.equal(createHash('sha256').update(await readFile(join(out, 'blobs', 'sha256', name))).digest('hex'), name);
});

test('one blob failing while others are written: its error, no output directory, no temp directory', async () => {
  const { image, root } = await sixLayerImage();
  const broken = image.layers[2]!;
  const failing: Image = {
    ...image,
    layers: image.layers.map((l) =>
      l === broken
        ? {
            digest: l.digest,
            diffId: l.diffId,
            size: l.size,
            mediaType: l.mediaType,
            open: () =>
              Readable.from(
                (async function* () {
                  yield Buffer.alloc(1000);
                  throw new Error('the store went away');
                })(),
              ),
          }
        : l,
    ),
  };
  const outDir = join(root, 'outs');
  await mkdir(outDir);
  await assert.rejects(writeOciLayout(failing, join(outDir, 'out.oci')), /the store went away/);
  assert.deepEqual(await readdir(outDir), [], 'neither the layout nor a temp directory is left');
});
