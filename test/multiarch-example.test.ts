// examples/multiarch: one spec, linux/amd64 and linux/arm64 from Debian's static busybox for
// each, in one OCI image index that skopeo, umoci, runc and qemu-user accept.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { makeMultiarchStores, multiarch, multiarchDir, multiarchOutput, writeSinglePlatformSpec } from './helpers/multiarch.js';
import { repoRoot } from './helpers/paths.js';
import { runBundleUnderQemu } from './helpers/qemu.js';
import { startRegistry, uploadsInRegistryLog, type RunningRegistry } from './helpers/registry.js';
import { runImage, unpackImage } from './helpers/runc.js';
import { tempDir } from './helpers/tmp.js';
import { needTool, toolFixture } from './helpers/tools.js';

/**
 * The example's index digest, for the busybox binaries below (Debian 12's busybox-static
 * 1:1.35.0-4+deb12u1+b1 for amd64 and arm64). A new Debian build of busybox changes the bytes:
 * then the hashes and this digest are updated together, on purpose.
 */
const GOLDEN_INDEX = 'sha256:466d00d99f4b7d522035a3eeb9298737b89cf4f36c284f81f6d30c59408db862';
const BUSYBOX_SHA256 = {
  amd64: '3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6',
  arm64: '61781806ad3650b0b9d2b3fc6971e2bffdca967af1a95375abd0578bafff14fb',
};

let work: string;
let env: NodeJS.ProcessEnv;
let layout: string;
let built: { digest: string; platforms: { platform: string; digest: string; layers: { digest: string }[] }[] } | undefined;
let registry: RunningRegistry | undefined;

/** docker-registry, started by the first test that needs it. */
const registryFixture = toolFixture(['docker-registry'], async () => {
  registry = await startRegistry();
});

before(async () => {
  work = await tempDir('imgbuild-multiarch-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  layout = join(work, 'multiarch.oci');
});

after(async () => {
  await registry?.stop();
});

/** The example built once into an OCI layout (the stores made by its script first). */
async function build(t: import('node:test').TestContext): Promise<NonNullable<typeof built> | undefined> {
  if (!(await makeMultiarchStores(t))) return undefined;
  if (!built) {
    const r = await runCli(['build', multiarchDir, '-o', layout, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    built = JSON.parse(r.stdout.toString());
  }
  return built;
}

test('the example\'s index digest is the golden one for the pinned busybox binaries', async (t) => {
  const b = await build(t);
  if (!b) return;
  for (const arch of ['amd64', 'arm64'] as const) {
    const bytes = await readFile(join(multiarch[arch].storeDir, multiarch[arch].storePath.slice('/nix/store/'.length), 'bin/busybox'));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), BUSYBOX_SHA256[arch], `Debian's busybox-static for ${arch} changed: update BUSYBOX_SHA256 and GOLDEN_INDEX together`);
  }
  assert.equal(b.digest, GOLDEN_INDEX);
});

test('skopeo reads the index, copies it with --all, and picks the arm64 image with --override-arch', async (t) => {
  const b = await build(t);
  if (!b || !needTool(t, 'skopeo')) return;
  const raw = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${layout}:1.35.0`]));
  assert.equal(raw.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(raw.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture), ['amd64', 'arm64']);
  await tool('skopeo', ['copy', '--all', `oci:${layout}:1.35.0`, `oci:${join(work, 'all.oci')}:1.35.0`]);
  assert.equal((await runCli(['diff', layout, join(work, 'all.oci')], { env })).code, 0);
  const arm = JSON.parse(await tool('skopeo', ['inspect', '--override-arch', 'arm64', `oci:${layout}:1.35.0`]));
  assert.equal(arm.Architecture, 'arm64');
});

/** One platform's image copied out of the index into a layout of its own (what umoci unpacks). */
async function platformLayout(arch: string): Promise<string> {
  const out = join(work, `${arch}.oci`);
  await tool('skopeo', ['copy', '--override-arch', arch, `oci:${layout}:1.35.0`, `oci:${out}:${arch}`]);
  return out;
}

test('the amd64 image unpacks with umoci and runs under runc', async (t) => {
  const b = await build(t);
  if (!b || !needTool(t, 'skopeo') || !needTool(t, 'umoci') || !needTool(t, 'runc')) return;
  assert.equal(await runImage(await platformLayout('amd64'), 'amd64', work), multiarchOutput);
});

test('the arm64 image unpacks with umoci and its busybox runs under qemu-aarch64-static', async (t) => {
  const b = await build(t);
  if (!b || !needTool(t, 'skopeo') || !needTool(t, 'umoci') || !needTool(t, 'qemu-aarch64-static')) return;
  const bundle = await unpackImage(await platformLayout('arm64'), 'arm64', work);
  assert.equal(await runBundleUnderQemu(bundle), multiarchOutput);
});

test('a push of the index uploads each distinct layer once (the registry\'s own log); a second push uploads nothing', async (t) => {
  const b = await build(t);
  if (!b || !(await registryFixture.need(t))) return;
  const ref = `${registry!.host}/examples/multiarch:1.35.0`;
  const push = async () => {
    const r = await runCli(['push', layout, ref, '--insecure-registry', registry!.host, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout.toString()) as { digest: string; pushed: { uploaded: number } };
    return { digest: doc.digest, uploaded: doc.pushed.uploaded };
  };
  const first = await push();
  assert.equal(first.digest, b.digest);
  const layers = b.platforms.flatMap((p) => p.layers.map((l) => l.digest));
  const distinct = [...new Set(layers)];
  assert.ok(distinct.length < layers.length, 'the motd layer is shared');
  const uploads = uploadsInRegistryLog(registry!.log());
  for (const d of distinct) assert.equal(uploads[d], 1, d);
  const before = Object.values(uploadsInRegistryLog(registry!.log())).reduce((a, n) => a + n, 0);
  const second = await push();
  assert.equal(second.uploaded, 0);
  assert.equal(Object.values(uploadsInRegistryLog(registry!.log())).reduce((a, n) => a + n, 0), before);
});

/** Build a single-platform spec over one of the example's stores; the CLI's exit, stdout and stderr. */
async function buildSingle(arch: 'amd64' | 'arm64', architecture: string | null, name: string) {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  const spec = await writeSinglePlatformSpec(dir, arch, { architecture });
  return runCli(['build', spec, '-o', join(dir, 'out.oci'), '--json'], { env });
}

test('with no architecture named, the arm64 store gives an arm64 image: the digest of the build naming arm64', async (t) => {
  if (!(await makeMultiarchStores(t))) return;
  const [found, named] = await Promise.all([buildSingle('arm64', null, 'arm-found'), buildSingle('arm64', 'arm64', 'arm-named')]);
  assert.equal(found.code, 0, found.stderr);
  assert.equal(named.code, 0, named.stderr);
  assert.equal(JSON.parse(found.stdout.toString()).digest, JSON.parse(named.stdout.toString()).digest);
  const config = JSON.parse((await runCli(['inspect', join(work, 'arm-found', 'out.oci'), '--json'], { env })).stdout.toString()).config;
  assert.equal(config.architecture, 'arm64');
});

test('architecture: amd64 over the arm64 store is refused, naming the file and both architectures', async (t) => {
  if (!(await makeMultiarchStores(t))) return;
  const r = await buildSingle('arm64', 'amd64', 'arm-as-amd');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[store\]: /);
  assert.match(r.stderr, new RegExp(`${multiarch.arm64.storePath}/bin/busybox`));
  assert.match(r.stderr, /arm64/);
  assert.match(r.stderr, /amd64/);
});

test('a spec whose closure holds no ELF file and that names no architecture is refused, saying so', async () => {
  const dir = join(work, 'no-elf');
  await mkdir(dir, { recursive: true });
  const spec = join(dir, 'image.json');
  await writeFile(spec, JSON.stringify({ name: 'no-elf/hello', store: { dir: join(repoRoot, 'examples/hello/store') }, contents: ['/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1'] }));
  const r = await runCli(['build', spec, '-o', join(dir, 'out.oci')], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[store\]: no ELF file was found in the closure/);
  assert.match(r.stderr, /hint: .*`architecture: amd64`/);
});
