// An OCI layout's metadata is checked before its image is read (builder/transports/layout-checks.ts):
// oci-layout there and of version 1.0.0 (as umoci and skopeo require), index.json listing an
// image, of a bounded size, whose descriptors' sizes are the blobs' own; and a blob path that is
// not a regular file is said to be what it is, never "missing", never opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, runCommand } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { Layout } from './fixtures/repro/plant.js';

const work = await tempDir('imgbuild-layout-metadata-');
const env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
const layout = join(work, 'base.oci');
{
  const r = await runCli(['build', join(repoRoot, 'test/fixtures/repro/base'), '-o', layout], { env });
  assert.equal(r.code, 0, r.stderr);
}

/** A copy of the layout, changed by `change`. */
async function changed(change: (dir: string, l: Layout) => Promise<void>): Promise<string> {
  const copy = await Layout.copy(layout, join(await mkdtemp(join(work, 'copy-')), 'copy.oci'));
  await change(copy.dir, copy);
  return copy.dir;
}

async function refused(dir: string, message: string, command = 'inspect'): Promise<void> {
  const r = await runCli([command, dir], { env });
  assert.equal(r.code, 1, r.stdout.toString());
  assert.equal(r.stdout.toString(), '');
  assert.equal(r.stderr.split('\n')[0], `error[image-read]: ${message}`);
}

test('a layout without oci-layout is refused', async () => {
  const dir = await changed((d) => rm(join(d, 'oci-layout')));
  await refused(dir, `oci:${dir}: oci-layout is missing: not an OCI layout (every layout has one, saying its imageLayoutVersion)`);
});

test('a layout whose oci-layout is not JSON is refused', async () => {
  const dir = await changed((d) => writeFile(join(d, 'oci-layout'), 'garbage'));
  await refused(dir, `oci:${dir}: oci-layout is not JSON: Unexpected token 'g', "garbage" is not valid JSON`);
});

test('a layout whose oci-layout says imageLayoutVersion 2.0.0 is refused', async () => {
  const dir = await changed((d) => writeFile(join(d, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}'));
  await refused(dir, `oci:${dir}: oci-layout says imageLayoutVersion "2.0.0"; only 1.0.0 is read`);
});

test('a layout whose index.json lists no manifest holds no image: inspect, digest, config and sbom refuse it', async () => {
  const dir = await changed((d) => writeFile(join(d, 'index.json'), '{"schemaVersion":2,"manifests":[]}'));
  for (const command of ['inspect', 'digest', 'config', 'sbom']) await refused(dir, `oci:${dir} holds no image: its index.json lists no manifest`, command);
});

test('index.json giving a manifest another size than its blob\'s is refused, both sizes named', async () => {
  let digest = '';
  const dir = await changed(async (d, l) => {
    digest = l.index.manifests[0].digest;
    l.index.manifests[0].size = 10;
    await writeFile(join(d, 'index.json'), JSON.stringify(l.index));
  });
  const size = (await readFile(join(dir, 'blobs/sha256', digest.slice(7)))).length;
  await refused(dir, `oci:${dir}: index.json manifests[0] says manifest ${digest} is 10 bytes, but its blob is ${size} bytes`);
});

test('an index.json over 16 MiB is refused before it is read', async () => {
  const dir = await changed((d) => writeFile(join(d, 'index.json'), `{"schemaVersion":2,"manifests":[],"x":"${'a'.repeat(17 * 1024 * 1024)}"}`));
  await refused(dir, `oci:${dir}: index.json is ${17 * 1024 * 1024 + 41} bytes; an image's JSON documents (index.json, manifests, configs) are read up to 16777216 bytes`);
});

for (const [what, make, kind] of [
  ['a directory', (p: string) => mkdir(p), 'a directory'],
  ['a FIFO', async (p: string) => assert.equal((await runCommand('mkfifo', [p])).code, 0), 'a pipe (FIFO)'],
  ['a symlink to /dev/zero', (p: string) => symlink('/dev/zero', p), 'a character device'],
] as const) {
  test(`a layer blob that is ${what}: said to be ${kind}, not "missing", and never read`, async () => {
    let blob = '';
    const dir = await changed(async (d, l) => {
      blob = join(d, 'blobs/sha256', (l.manifest.layers[0].digest as string).slice(7));
      await rm(blob);
      await make(blob);
    });
    await refused(dir, `${blob} is ${kind}, not a regular file`);
  });
}
