// zstd images through real clients: zstd(1) reads our layers; skopeo reads the OCI layout and
// converts it to gzip, which umoci unpacks (checking every diff_id) and runc runs; podman loads the
// OCI archive and the docker-archive, with our diff_ids. (umoci 0.4.7 itself refuses tar+zstd.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { runCli, runCommand, tool } from './helpers/cli.js';
import { runImage } from './helpers/runc.js';
import { tempDir } from './helpers/tmp.js';
import { needTool } from './helpers/tools.js';
import { zstdExample as copyExampleZstd } from './helpers/zstd-example.js';

/**
 * examples/hello with `compressor: 'zstd'`: only text files, so its digest is the same on every
 * host (as the gzip one's, sha256:81ff4a65…), on Node 20 (WebAssembly encoder), 22 and 24.
 */
const HELLO_ZSTD_DIGEST = 'sha256:4b7e3045157fdc1f42ff516858579e952326b27d5819c5e49fa3c29213545168';

const work = await tempDir('imgbuild-zstd-tools-');

const examples = new Map<string, Promise<string>>();

/** A copy of examples/<name> whose spec says `compressor: zstd` (made once per file). */
function zstdExample(name: 'hello' | 'busybox'): Promise<string> {
  if (!examples.has(name)) examples.set(name, copyExampleZstd(name, join(work, `${name}-src`)));
  return examples.get(name)!;
}


async function build(dir: string, args: string[]): Promise<{ digest: string; configDigest: string; layers: { digest: string; diffId: string; mediaType: string }[] }> {
  const r = await runCli(['build', dir, ...args, '--json'], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString());
}

test('examples/hello as zstd: the pinned digest, every layer tar+zstd, and zstd(1) decompresses each layer to its diff_id', async (t) => {
  if (!needTool(t, 'zstd')) return;
  const out = join(work, 'hello.oci');
  const built = await build(await zstdExample('hello'), ['-o', out]);
  assert.equal(built.digest, HELLO_ZSTD_DIGEST);
  for (const l of built.layers) {
    assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    const blob = join(out, 'blobs/sha256', l.digest.slice('sha256:'.length));
    execFileSync('zstd', ['-q', '-t', blob]);
    const tar = execFileSync('zstd', ['-q', '-dc', blob], { maxBuffer: 64 << 20 });
    assert.equal(`sha256:${createHash('sha256').update(tar).digest('hex')}`, l.diffId);
  }
});

test('skopeo reads a zstd layout and converts it to gzip (same config); umoci unpacks that and runc runs busybox', async (t) => {
  if (!needTool(t, 'busybox', 'skopeo', 'umoci', 'runc')) return;
  const out = join(work, 'busybox.oci');
  const built = await build(await zstdExample('busybox'), ['-o', out]);
  const info = JSON.parse(await tool('skopeo', ['inspect', `oci:${out}:1.35.0`]));
  assert.equal(info.Digest, built.digest);
  assert.deepEqual(info.Layers, built.layers.map((l) => l.digest));
  const gzip = join(work, 'busybox-gzip.oci');
  await tool('skopeo', ['copy', '--dest-compress-format', 'gzip', `oci:${out}:1.35.0`, `oci:${gzip}:1.35.0`]);
  const converted = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${gzip}:1.35.0`]));
  // skopeo decompressed our layers to recompress them: the config (and so every diff_id) is ours.
  assert.equal(converted.config.digest, built.configDigest);
  assert.deepEqual(converted.layers.map((l: { mediaType: string }) => l.mediaType), built.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+gzip'));
  assert.equal((await runImage(gzip, '1.35.0', work)).trim(), 'hello from busybox');
});

function podmanArgs(root: string): string[] {
  return ['--root', join(root, 'storage'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];
}

test('podman loads the zstd OCI archive and the zstd docker-archive: our config digest and diff_ids', async (t) => {
  if (!needTool(t, 'podman')) return;
  const dir = await zstdExample('hello');
  const ociArchive = join(work, 'hello.oci.tar');
  const built = await build(dir, ['-f', 'oci-archive', '-o', ociArchive]);
  const dockerArchive = join(work, 'hello.docker.tar');
  assert.equal((await build(dir, ['-f', 'docker-archive', '-o', dockerArchive])).configDigest, built.configDigest);
  for (const [how, args, root] of [
    ['oci-archive', ['load', '-i', ociArchive], join(work, 'p1')],
    ['docker-archive', ['load', '-i', dockerArchive], join(work, 'p2')], // podman's runroot must be under 50 characters
  ] as const) {
    await tool('podman', [...podmanArgs(root), ...args]);
    const [image] = JSON.parse(await tool('podman', [...podmanArgs(root), 'image', 'inspect', built.configDigest.slice('sha256:'.length)]));
    assert.equal(`sha256:${image.Id}`, built.configDigest, how);
    assert.deepEqual(image.RootFS.Layers, built.layers.map((l) => l.diffId), how);
  }
});
