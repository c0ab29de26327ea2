// zstd images through imgbuild's own readers, on whatever Node runs the tests (node:zlib's zstd
// decoder from 22.15, fzstd before): `diff` of the same image in gzip and in zstd sees the same
// tars, `inspect` lists a zstd image, and a zstd image as `fromImage` keeps its layers' bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const work = await tempDir('imgbuild-zstd-readers-');
const env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };

/** examples/hello built as gzip (the example) and as zstd (the same spec with compressor zstd). */
async function helloBoth(): Promise<{ gzip: string; zstd: string; zstdJson: { digest: string; layers: { digest: string; mediaType: string }[] } }> {
  const src = join(work, 'hello-zstd');
  await cp(join(repoRoot, 'examples/hello'), src, { recursive: true });
  const spec = join(src, 'image.ts');
  await writeFile(spec, (await readFile(spec, 'utf8')).replace("architecture: 'amd64',", "architecture: 'amd64',\n  compressor: 'zstd',"));
  const gzip = join(work, 'hello-gzip.oci');
  const zstd = join(work, 'hello-zstd.oci');
  const g = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', gzip, '--json'], { env });
  assert.equal(g.code, 0, g.stderr);
  const z = await runCli(['build', src, '-o', zstd, '--json'], { env });
  assert.equal(z.code, 0, z.stderr);
  return { gzip, zstd, zstdJson: JSON.parse(z.stdout.toString()) };
}

const built = helloBoth();

test('diff of examples/hello in gzip and in zstd: every layer "only the compression differs", the same tars', async () => {
  const { gzip, zstd } = await built;
  const r = await runCli(['diff', `oci:${gzip}`, `oci:${zstd}`, '--json'], { env });
  assert.equal(r.code, 1, r.stderr); // differences found
  const doc = JSON.parse(r.stdout.toString());
  const layers = doc.layers.filter((l: { change: string }) => l.change === 'compression');
  assert.equal(layers.length, 5, r.stdout.toString());
  for (const l of layers) {
    assert.equal(l.a.diffId, l.b.diffId);
    assert.equal(l.b.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  }
});

test('a zstd image as fromImage: its layers are taken as they are (bytes and media type) under a gzip build', async () => {
  const { zstd, zstdJson } = await built;
  const onTop = join(work, 'on-top.json');
  await writeFile(onTop, JSON.stringify({ name: 'zstd/on-top', architecture: 'amd64', fromImage: `oci:${zstd}`, files: [{ path: '/etc/motd', content: 'on top\n' }] }));
  const r = await runCli(['build', onTop, '-o', join(work, 'on-top.oci'), '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const layers: { digest: string; mediaType: string }[] = JSON.parse(r.stdout.toString()).layers;
  assert.deepEqual(
    layers.slice(0, zstdJson.layers.length).map((l) => [l.digest, l.mediaType]),
    zstdJson.layers.map((l) => [l.digest, 'application/vnd.oci.image.layer.v1.tar+zstd']),
  );
  assert.equal(layers.at(-1)!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
});

test('inspect --json lists the zstd layers with their media type', async () => {
  const { zstd, zstdJson } = await built;
  const r = await runCli(['inspect', `oci:${zstd}`, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout.toString());
  assert.equal(doc.digest, zstdJson.digest);
  assert.deepEqual(
    doc.layers.map((l: { mediaType: string }) => l.mediaType),
    zstdJson.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+zstd'),
  );
});
