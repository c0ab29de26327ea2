// One parser for image arguments, used by every command: oci:, oci-archive:, docker-archive:
// (gzipped too, and picking one image of several), docker://, and the bare forms.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseImageRef } from '../builder/transports/image-ref.js';
import { openImage } from '../builder/transports/open.js';
import { readLayerFile, layerFiles } from '../builder/transports/layer-files.js';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

const hello = join(repoRoot, 'examples/hello');
const HELLO = 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580';
let work: string;
let env: NodeJS.ProcessEnv;
let registry: RunningRegistry | undefined;

/** docker-registry, started by the first test that needs it. */
const registryFixture = toolFixture(['docker-registry'], async () => {
  registry = await startRegistry();
});

before(async () => {
  work = await tempDir('imgbuild-imgargs-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  for (const [format, out] of [['oci', 'hello.oci'], ['oci-archive', 'hello.oci.tar'], ['docker-archive', 'hello.docker.tar']]) {
    const r = await runCli(['build', hello, '-f', format!, '-o', join(work, out!)], { env });
    assert.equal(r.code, 0, r.stderr);
  }
  await writeFile(join(work, 'hello.docker.tar.gz'), gzipSync(await readFile(join(work, 'hello.docker.tar'))));
});

after(async () => {
  await registry?.stop();
});

async function inspect(arg: string, extra: string[] = []) {
  const r = await runCli(['inspect', arg, '--json', ...extra], { env });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString()) as { source: string; digest: string; refs: string[]; layers: { storePaths: string[] }[] };
}

test('inspect reads an OCI layout as oci:<dir>, oci:<dir>:<tag> and a bare path, with one digest', async () => {
  for (const arg of [`oci:${join(work, 'hello.oci')}`, `oci:${join(work, 'hello.oci')}:2.12.1`, join(work, 'hello.oci')]) {
    assert.equal((await inspect(arg)).digest, HELLO, arg);
  }
});

test('inspect reads an OCI archive as oci-archive:<file> with the layout\'s digest', async () => {
  const i = await inspect(`oci-archive:${join(work, 'hello.oci.tar')}`);
  assert.equal(i.digest, HELLO);
  assert.equal(i.source, `oci-archive:${join(work, 'hello.oci.tar')}`);
});

test('inspect reads a docker-archive, plain and gzipped (dockerTools\' .tar.gz), as the same image', async () => {
  const plain = await inspect(`docker-archive:${join(work, 'hello.docker.tar')}`);
  const gzipped = await inspect(`docker-archive:${join(work, 'hello.docker.tar.gz')}`);
  const bare = await inspect(join(work, 'hello.docker.tar.gz'));
  assert.deepEqual(plain.refs, ['imgbuild-examples/hello:2.12.1']);
  assert.equal(gzipped.digest, plain.digest);
  assert.equal(bare.digest, plain.digest);
  assert.deepEqual(gzipped.layers.map((l) => l.storePaths), plain.layers.map((l) => l.storePaths));
});

test('a gzipped docker-archive\'s layers read back with the bytes the OCI layout holds', async () => {
  const fromGzip = await openImage(`docker-archive:${join(work, 'hello.docker.tar.gz')}`);
  const fromLayout = await openImage(`oci:${join(work, 'hello.oci')}`);
  const top = (img: typeof fromGzip) => img.layers[img.layers.length - 1]!;
  assert.equal(top(fromGzip).digest, top(fromLayout).digest);
  assert.deepEqual(await layerFiles(top(fromGzip)), await layerFiles(top(fromLayout)));
  const hello = await readLayerFile(fromGzip.layers[3]!, '/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1/bin/hello');
  assert.ok(hello && hello.toString().startsWith('#!'), 'hello is a script in the example store');
});

/** A docker-archive holding two images, as `docker save a b` writes one. */
async function twoImageArchive(): Promise<string> {
  const dir = join(work, 'two');
  await mkdir(dir, { recursive: true });
  await tool('tar', ['-xf', join(work, 'hello.docker.tar'), '-C', dir]);
  const [entry] = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { Config: string; RepoTags: string[]; Layers: string[] }[];
  // The second image: the same layers without the top one, so the archive's files serve both.
  const second = { Config: entry!.Config, RepoTags: ['acme/base:1'], Layers: entry!.Layers.slice(0, -1) };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify([entry, second]));
  const out = join(work, 'two.docker.tar');
  await tool('tar', ['-cf', out, '-C', dir, '.']);
  return out;
}

test('a docker-archive of several images asks for name:tag and lists what it holds; name:tag picks one', async () => {
  const file = await twoImageArchive();
  const r = await runCli(['inspect', `docker-archive:${file}`], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[image-read\]: docker-archive:.*two\.docker\.tar: the archive holds 2 images: imgbuild-examples\/hello:2\.12\.1, acme\/base:1/);
  assert.match(r.stderr, /hint: pick one: docker-archive:.*two\.docker\.tar:<name>:<tag>/);
  const picked = await runCli(['inspect', `docker-archive:${file}:imgbuild-examples/hello:2.12.1`, '--json'], { env });
  assert.equal(picked.code, 0, picked.stderr);
  assert.deepEqual(JSON.parse(picked.stdout.toString()).refs, ['imgbuild-examples/hello:2.12.1']);
  const wrong = await runCli(['inspect', `docker-archive:${file}:acme/nope:1`], { env });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /no image named acme\/nope:1; the archive holds imgbuild-examples\/hello:2\.12\.1, acme\/base:1/);
});

test('inspect reads docker://<ref> from a registry without fetching a layer', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const ref = `${registry!.host}/imgargs/hello:2.12.1`;
  const p = await runCli(['push', join(work, 'hello.oci'), ref, '--insecure-registry', registry!.host], { env });
  assert.equal(p.code, 0, p.stderr);
  const i = await inspect(`docker://${ref}`, ['--insecure-registry', registry!.host]);
  assert.equal(i.digest, HELLO);
  assert.deepEqual(i.refs, [ref]);
});

const IMAGE_READERS = ['inspect', 'sbom', 'referrers', 'digest', 'manifest', 'config'];

test('--platform that a single-platform image is not for: error[platform], exit 1, from every command reading an image (inspect, sbom, referrers as digest, manifest, config)', async () => {
  for (const image of ['hello.oci', 'hello.docker.tar']) {
    const path = join(work, image);
    const source = image.endsWith('.oci') ? `oci:${path}` : `docker-archive:${path}`;
    for (const command of IMAGE_READERS) {
      for (const platform of ['linux/arm64', 'windows/amd64', 'linux/amd64/v3']) {
        const r = await runCli([command, path, '--platform', platform], { env });
        const what = `${command} ${image} --platform ${platform}`;
        assert.equal(r.code, 1, `${what}: ${r.stderr}`);
        assert.equal(r.stdout.toString(), '', what);
        assert.equal(r.stderr, `error[platform]: ${source} is an image for linux/amd64, not ${platform}\nhint: leave out --platform for a single-platform image\n`, what);
      }
    }
  }
});

test('--platform that a single-platform image is not for, with --json: the error document says code platform', async () => {
  for (const command of IMAGE_READERS.filter((c) => c !== 'sbom')) {
    const r = await runCli([command, join(work, 'hello.oci'), '--platform', 'linux/arm64', '--json'], { env });
    assert.equal(r.code, 1, `${command}: ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout.toString()).error, { code: 'platform', message: `oci:${join(work, 'hello.oci')} is an image for linux/amd64, not linux/arm64`, hint: 'leave out --platform for a single-platform image' }, command);
  }
});

test('--platform that a single-platform image is for: each command answers as without it', async () => {
  for (const command of IMAGE_READERS) {
    const without = await runCli([command, join(work, 'hello.oci')], { env });
    const withIt = await runCli([command, join(work, 'hello.oci'), '--platform', 'linux/amd64'], { env });
    assert.equal(withIt.code, 0, `${command}: ${withIt.stderr}`);
    assert.ok(withIt.stdout.equals(without.stdout), command);
  }
});

test('a mistyped local path says "no such file", never "invalid registry host"', async () => {
  for (const arg of ['./helo.oci', 'helo.oci', 'oci:./helo.oci', 'docker-archive:/nowhere/x.tar']) {
    const r = await runCli(['inspect', arg], { env, cwd: work });
    assert.equal(r.code, 1, arg);
    assert.match(r.stderr, /error\[image-ref\]: .*helo\.oci: no such file or directory|error\[image-ref\]: docker-archive:\/nowhere\/x\.tar: no such file or directory/, arg);
    assert.doesNotMatch(r.stderr, /invalid registry host|internal error/, arg);
  }
});

test('the parser: prefixes, tags after an existing path, bare registry references need a host', async () => {
  const layout = join(work, 'hello.oci');
  assert.deepEqual(parseImageRef(`oci:${layout}:v1`), { transport: 'oci', path: layout, tag: 'v1' });
  assert.deepEqual(parseImageRef(`docker-archive:${join(work, 'hello.docker.tar')}:localhost:5000/a/b:1`), { transport: 'docker-archive', path: join(work, 'hello.docker.tar'), name: 'localhost:5000/a/b:1' });
  assert.deepEqual(parseImageRef('docker://alpine'), { transport: 'docker', reference: 'alpine' });
  assert.deepEqual(parseImageRef('ghcr.io/acme/app:1'), { transport: 'docker', reference: 'ghcr.io/acme/app:1' });
  assert.deepEqual(parseImageRef('hello.oci', { cwd: work }), { transport: 'local', path: layout });
  assert.throws(() => parseImageRef('acme/app:1', { cwd: work }), /acme\/app:1: no such file or directory/);
});
