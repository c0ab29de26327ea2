// The spine's acceptance tests: every example builds, and real clients (skopeo,
// oci-image-tool, umoci, runc) accept what we write.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { needTool } from './helpers/tools.js';
import { runImage } from './helpers/runc.js';

let work: string;

before(async () => {
  work = await tempDir('imgbuild-examples-');
});

/** Build an example; each build has a fresh cache of its own (runCli's). */
async function build(example: string, args: string[]): Promise<{ digest: string; json: any }> {
  const r = await runCli(['build', join(repoRoot, 'examples', example), '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout.toString());
  return { digest: json.digest, json };
}

/** examples/busybox/store, made by its script (which copies the busybox binary: ask for busybox first). */
async function makeBusyboxStore(): Promise<void> {
  await tool('bash', [join(repoRoot, 'examples/busybox/make-store.sh')]);
}

test('examples/hello builds an OCI layout that skopeo inspects with the same digest', async (t) => {
  if (!needTool(t, 'skopeo')) return;
  const out = join(work, 'hello.oci');
  const { digest, json } = await build('hello', ['-o', out]);
  const inspected = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${out}:2.12.1`]));
  assert.equal(inspected.config.digest, json.configDigest);
  const info = JSON.parse(await tool('skopeo', ['inspect', `oci:${out}:2.12.1`]));
  assert.equal(info.Digest, digest);
  assert.deepEqual(info.Layers, json.layers.map((l: { digest: string }) => l.digest));
});

test('examples/hello passes oci-image-tool validate --type image', async (t) => {
  if (!needTool(t, 'oci-image-tool')) return;
  const out = join(work, 'hello-validate.oci');
  await build('hello', ['-o', out]);
  const stdout = await tool('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=2.12.1', out]);
  assert.match(stdout, /reference \[name=2\.12\.1\]: OK/);
  assert.match(stdout, /Validation succeeded/);
});

test('examples/hello unpacks with umoci (diff_ids checked) and holds the store and customisation files', async (t) => {
  if (!needTool(t, 'umoci')) return;
  const out = join(work, 'hello-umoci.oci');
  await build('hello', ['-o', out]);
  const bundle = join(work, 'hello-bundle');
  await tool('umoci', ['unpack', '--image', `${out}:2.12.1`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  const store = join(repoRoot, 'examples/hello/store');
  const greeting = 'mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0/share/greeting/text';
  assert.equal(await readFile(join(rootfs, 'nix/store', greeting), 'utf8'), await readFile(join(store, greeting), 'utf8'));
  const passwd = await readFile(join(rootfs, 'etc/passwd'), 'utf8');
  assert.match(passwd, /^nobody:x:65534:65534:/m);
  // copyToRoot links /bin/hello into the store, as buildEnv does.
  const helloPath = '/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1/bin/hello';
  assert.equal(await readlink(join(rootfs, 'bin/hello')), helloPath);
  assert.equal(await readFile(join(rootfs, helloPath), 'utf8'), await readFile(join(store, helloPath.slice('/nix/store/'.length)), 'utf8'));
});

test('examples/busybox runs under runc and prints its greeting', async (t) => {
  if (!needTool(t, 'umoci', 'runc', 'busybox')) return;
  await makeBusyboxStore();
  const out = join(work, 'busybox.oci');
  await build('busybox', ['-o', out]);
  assert.equal(await runImage(out, '1.35.0', work), 'hello from busybox\n');
});

test('skopeo copies the docker-archive to an OCI layout keeping config and layer contents', async (t) => {
  if (!needTool(t, 'skopeo')) return;
  const archive = join(work, 'hello.docker.tar');
  const { json } = await build('hello', ['-f', 'docker-archive', '-o', archive]);
  const copy = join(work, 'hello-from-docker-archive.oci');
  await tool('skopeo', ['copy', `docker-archive:${archive}`, `oci:${copy}:x`]);
  const raw = JSON.parse(await tool('skopeo', ['inspect', '--config', '--raw', `oci:${copy}:x`]));
  assert.deepEqual(raw.rootfs.diff_ids, json.layers.map((l: { diffId: string }) => l.diffId));
});

test('skopeo reads the OCI archive with the same manifest digest', async (t) => {
  if (!needTool(t, 'skopeo')) return;
  const archive = join(work, 'hello.oci.tar');
  const { digest } = await build('hello', ['-f', 'oci-archive', '-o', archive]);
  const info = JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${archive}`]));
  assert.equal(info.Digest, digest);
});

test('--stream writes the same bytes as the docker-archive file', async () => {
  const archive = join(work, 'hello-stream-ref.docker.tar');
  await build('hello', ['-f', 'docker-archive', '-o', archive]);
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '--stream']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.equals(await readFile(archive)), 'stream and file differ');
});

test('imgbuild inspect lists the layers with the store paths each holds', async () => {
  const out = join(work, 'hello-inspect.oci');
  const { json } = await build('hello', ['-o', out]);
  const r = await runCli(['inspect', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const inspected = JSON.parse(r.stdout.toString());
  assert.equal(inspected.digest, json.digest);
  assert.deepEqual(
    inspected.layers.map((l: { storePaths: string[] }) => l.storePaths),
    json.layers.map((l: { storePaths: string[] }) => l.storePaths),
  );
  assert.deepEqual(inspected.config.config.Cmd, ['/bin/hello']);
});
