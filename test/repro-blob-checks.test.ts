// What verify --against and diff check before they call two images the same: a docker-archive's
// reconstructed manifest is not compared byte for byte (its config and layers are), and a local
// image's blobs are read and hashed (a flipped byte in a layer blob is not "reproducible").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { Layout } from './fixtures/repro/plant.js';
import type { VerifyResult } from '../builder/repro/verify.js';
import type { ImageDiff } from '../builder/repro/diff.js';

const spec = join(repoRoot, 'test/fixtures/repro/base');
const work = await tempDir('imgbuild-repro-blob-checks-');
const env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
const scratch = (name: string) => mkdtemp(join(work, `${name}-`));

const layout = join(work, 'base.oci');
const dockerArchive = join(work, 'base.docker.tar');
for (const out of [layout, dockerArchive]) {
  const r = await runCli(['build', spec, '-o', out], { env });
  assert.equal(r.code, 0, r.stderr);
}

/** A copy of the layout with one bit of layer `i`'s blob flipped (the manifest untouched). */
async function flippedCopy(i: number): Promise<{ dir: string; blob: string }> {
  const copy = await Layout.copy(layout, join(await scratch('flipped'), 'flipped.oci'));
  const blob = join(copy.dir, 'blobs/sha256', (copy.manifest.layers[i].digest as string).slice(7));
  const bytes = await readFile(blob);
  bytes[bytes.length - 20]! ^= 1;
  await writeFile(blob, bytes);
  return { dir: copy.dir, blob };
}

test('verify --against the docker-archive a build of the same spec wrote: reproducible, exit 0, the comparison said', async () => {
  const r = await runCli(['verify', spec, '--against', dockerArchive, '--json'], { env });
  assert.equal(r.code, 0, r.stdout.toString() + r.stderr);
  const result = JSON.parse(r.stdout.toString()) as VerifyResult;
  assert.equal(result.reproducible, true);
  assert.equal(result.diff, undefined);
  assert.deepEqual(result.notes, [
    `docker-archive:${dockerArchive}: a docker-archive holds no manifest (the one read is reconstructed): compared its config digest and its layers' digests, sizes and diff_ids; layer annotations are not comparable`,
    `docker-archive:${dockerArchive}: every layer blob read and hashed (2 layer(s))`,
  ]);
});

test('verify --against a docker-archive of another config: NOT reproducible, exit 1, the config field named', async () => {
  const other = join(await scratch('other'), 'other.docker.tar');
  const r = await runCli(['build', spec, '-o', other, '--label', 'x=y'], { env });
  assert.equal(r.code, 0, r.stderr);
  const v = await runCli(['verify', spec, '--against', other, '--json'], { env });
  assert.equal(v.code, 1, v.stderr);
  const result = JSON.parse(v.stdout.toString()) as VerifyResult;
  assert.equal(result.reproducible, false);
  assert.deepEqual((result.diff as ImageDiff).config, [{ path: 'config.Labels', a: { x: 'y' } }]);
});

test('verify --against a layout with a flipped byte in a layer blob: an error naming the blob file, exit 2, never "reproducible"', async () => {
  const { dir, blob } = await flippedCopy(0);
  const r = await runCli(['verify', spec, '--against', dir], { env });
  assert.equal(r.code, 2, r.stdout.toString());
  assert.doesNotMatch(r.stdout.toString(), /reproducible/);
  assert.match(r.stderr, new RegExp(`^error\\[blob-mismatch\\]: ${blob.replace(/[.]/g, '\\.')} is damaged: `, 'm'));
});

test('diff of a layout and a copy with a flipped byte in a layer blob: an error naming the blob file, exit 2, never "identical"', async () => {
  const { blob, dir } = await flippedCopy(1);
  const r = await runCli(['diff', layout, dir], { env });
  assert.equal(r.code, 2, r.stdout.toString());
  assert.equal(r.stdout.toString(), '');
  assert.match(r.stderr, new RegExp(`^error\\[blob-mismatch\\]: ${blob.replace(/[.]/g, '\\.')} is damaged: `, 'm'));
});

test('diff of two copies of one layout: identical, each side\'s blobs said to be read and hashed', async () => {
  const r = await runCli(['diff', layout, `oci:${layout}`], { env });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.toString().split('\n');
  assert.deepEqual(lines.slice(2), ['identical: same manifest digest', `note: oci:${layout}: every layer blob read and hashed (2 layer(s))`, `note: oci:${layout}: every layer blob read and hashed (2 layer(s))`, '']);
});
