// `podman load` accepts the docker-archive, the --stream output and an OCI archive with SBOMs (no
// daemon: a temp vfs root).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { needTool } from './helpers/tools.js';

function podmanArgs(root: string): string[] {
  return ['--root', join(root, 'storage'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];
}

async function loadedImage(root: string): Promise<{ id: string; layers: string[] }> {
  const [image] = JSON.parse(await tool('podman', [...podmanArgs(root), 'image', 'inspect', 'imgbuild-examples/hello:2.12.1']));
  return { id: image.Id, layers: image.RootFS.Layers };
}

test('podman load reads the docker-archive: same config digest and diff_ids', async (t) => {
  if (!needTool(t, 'podman')) return;
  const dir = await tempDir();
  const archive = join(dir, 'hello.docker.tar');
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '-f', 'docker-archive', '-o', archive, '--json'], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  const built = JSON.parse(r.stdout.toString());
  await tool('podman', [...podmanArgs(join(dir, 'podman')), 'load', '-i', archive]);
  const loaded = await loadedImage(join(dir, 'podman'));
  assert.equal(`sha256:${loaded.id}`, built.configDigest);
  assert.deepEqual(loaded.layers, built.layers.map((l: { diffId: string }) => l.diffId));
});

test('imgbuild build --stream | podman load', async (t) => {
  if (!needTool(t, 'podman')) return;
  const dir = await tempDir();
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') };
  const build = spawn(process.execPath, [cliPath, 'build', join(repoRoot, 'examples/hello'), '--stream'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const load = spawn('podman', [...podmanArgs(join(dir, 'podman')), 'load'], { stdio: ['pipe', 'pipe', 'pipe'] });
  build.stdout.pipe(load.stdin);
  let out = '';
  load.stdout.on('data', (c: Buffer) => (out += c.toString()));
  load.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const [buildCode, loadCode] = await Promise.all([
    new Promise((resolve) => build.on('close', resolve)),
    new Promise((resolve) => load.on('close', resolve)),
  ]);
  assert.deepEqual([buildCode, loadCode], [0, 0], out);
  assert.match(out, /Loaded image: localhost\/imgbuild-examples\/hello:2\.12\.1/);
  assert.equal((await loadedImage(join(dir, 'podman'))).layers.length, 5);
});

test('podman load reads an OCI archive built with --sbom: the image alone (its SBOMs stay in the archive)', async (t) => {
  if (!needTool(t, 'podman')) return;
  const dir = await tempDir();
  const archive = join(dir, 'hello.oci.tar');
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '--sbom', 'spdx,cyclonedx', '-o', archive, '--json'], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  const built = JSON.parse(r.stdout.toString());
  assert.equal(built.sboms.length, 2);
  // It was "more than one image in oci, choose an image", exit 125: index.json listed the SBOMs' index too.
  const out = await tool('podman', [...podmanArgs(join(dir, 'podman')), 'load', '-i', archive]);
  assert.match(out, /Loaded image: localhost\/imgbuild-examples\/hello:2\.12\.1/);
  const loaded = await loadedImage(join(dir, 'podman'));
  assert.equal(`sha256:${loaded.id}`, built.configDigest);
  assert.deepEqual(loaded.layers, built.layers.map((l: { diffId: string }) => l.diffId));
});
