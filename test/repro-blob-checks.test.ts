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
import { gzipSync } from 'node:zlib';
import { Layout, rawEntries } from './fixtures/repro/plant.js';
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

/** A copy of the layout with layer `i` replaced by `blob`; the config's diff_id left as it was. */
async function replacedLayer(i: number, blob: (tar: Buffer) => Buffer, mediaType?: string): Promise<Layout> {
  const copy = await Layout.copy(layout, join(await scratch('replaced'), 'replaced.oci'));
  const diffIds = [...copy.config.rootfs.diff_ids];
  const { digest, size } = await copy.writeBlob(blob(await copy.layerTar(i)));
  copy.manifest.layers[i] = { ...copy.manifest.layers[i], digest, size, ...(mediaType ? { mediaType } : {}) };
  copy.config.rootfs.diff_ids = diffIds;
  await copy.save();
  return copy;
}

test('diff: a layer whose content changed but whose config kept the old diff_id is "content differs", the wrong diff_id noted', async () => {
  const copy = await replacedLayer(1, (tar) => {
    const changed = Buffer.from(tar);
    const e = rawEntries(changed).find((r) => r.size > 0)!;
    changed[e.data]! ^= 1;
    return gzipSync(changed);
  });
  const r = await runCli(['diff', layout, copy.dir, '--json'], { env });
  assert.equal(r.code, 1, r.stderr);
  const diff = JSON.parse(r.stdout.toString()) as ImageDiff;
  assert.equal(diff.layers.length, 1);
  const l = diff.layers[0]!;
  assert.equal(l.change, 'content');
  if (l.change !== 'content') return;
  assert.equal(l.files.length, 1);
  assert.deepEqual(l.files[0]!.change === 'changed' && l.files[0]!.fields.map((f) => f.path), ['content']);
  assert.equal(l.notes.length, 1);
  assert.match(l.notes[0]!, new RegExp(`^oci:${copy.dir.replace(/[.]/g, '\\.')} layer 2: the config says diff_id ${copy.config.rootfs.diff_ids[1]} but the tar's sha256 is sha256:[0-9a-f]{64}$`));
});

test('a layer labelled tar+gzip whose bytes are an uncompressed tar: diff is an error naming the layer and both compressions, exit 2', async () => {
  const copy = await replacedLayer(1, (tar) => tar);
  const d = copy.manifest.layers[1];
  const r = await runCli(['diff', layout, copy.dir], { env });
  assert.equal(r.code, 2, r.stdout.toString());
  assert.match(r.stderr, new RegExp(`^error\\[image-read\\]: oci:${copy.dir.replace(/[.]/g, '\\.')}: layer ${d.digest} is labelled application/vnd\\.oci\\.image\\.layer\\.v1\\.tar\\+gzip \\(gzip-compressed\\) but its bytes are an uncompressed tar$`, 'm'));
});

test('build with fromImage naming a layout whose layer is mislabelled: refused, exit 1, nothing written', async () => {
  const copy = await replacedLayer(1, (tar) => tar);
  const dir = await scratch('from-mislabelled');
  const specFile = join(dir, 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'on-mislabelled', tag: '1', architecture: 'amd64', fromImage: `oci:${copy.dir}`, files: [{ path: '/etc/motd', content: 'on top\n' }] }));
  const out = join(dir, 'out.oci');
  const r = await runCli(['build', specFile, '-o', out], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error\[image-read\]: .* is labelled application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip \(gzip-compressed\) but its bytes are an uncompressed tar$/m);
  await assert.rejects(readFile(join(out, 'index.json')), { code: 'ENOENT' });
});

for (const value of ['-1', 'abc', '1.5']) {
  test(`diff --max-files ${value}: error[usage], exit 2, nothing compared`, async () => {
    const r = await runCli(['diff', layout, layout, '--max-files', value], { env });
    assert.equal(r.code, 2);
    assert.equal(r.stdout.toString(), '');
    assert.equal(r.stderr, `error[usage]: --max-files ${JSON.stringify(value)} is not a number of files (a whole number, 0 or more)\nhint: give a count, e.g. --max-files 20 (0 lists none, only how many there are)\n`);
  });
}

test('diff --max-files 0: no file listed, how many there are said', async () => {
  const copy = await replacedLayer(1, (tar) => {
    const changed = Buffer.from(tar);
    changed[rawEntries(changed).find((r) => r.size > 0)!.data]! ^= 1;
    return gzipSync(changed);
  });
  const r = await runCli(['diff', layout, copy.dir, '--max-files', '0'], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout.toString(), /^ {6}\.\.\. and 1 more file\(s\)$/m);
  assert.doesNotMatch(r.stdout.toString(), /^ {6}~ /m);
});

test('diff of a layout and a docker-archive: the SBOM section says the docker-archive side has no store-path annotations, lists no package', async () => {
  const r = await runCli(['diff', layout, dockerArchive, '--json'], { env });
  assert.equal(r.code, 1, r.stderr);
  const doc = JSON.parse(r.stdout.toString()) as { sbom: unknown };
  assert.deepEqual(doc.sbom, {
    from: { a: 'image', b: 'none' },
    added: [],
    removed: [],
    changed: [],
    note: `packages not compared: docker-archive:${dockerArchive} has no SBOM attached and no store-path annotations (a docker-archive holds no layer annotations)`,
  });
  const text = await runCli(['diff', layout, dockerArchive], { env });
  assert.match(text.stdout.toString(), new RegExp(`^sbom: packages not compared: docker-archive:${dockerArchive.replace(/[.]/g, '\\.')} has no SBOM attached`, 'm'));
  assert.doesNotMatch(text.stdout.toString(), /layer annotations, b: layer annotations/);
});
