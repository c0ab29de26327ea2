// Multi-platform images: one spec with `platforms` builds an image per platform and an OCI index
// over them; outputs, pushes and readers all handle the index.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { uploadsByDigest } from './helpers/fault-proxy.js';
import { repoRoot } from './helpers/paths.js';
import { proxiedRegistryFixture } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { needTool } from './helpers/tools.js';

const HELLO = '/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1';
const GREETING = '/nix/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0';
let work: string;
let env: NodeJS.ProcessEnv;
let spec: string;

before(async () => {
  work = await tempDir('imgbuild-multi-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  // Two platforms over one store: amd64 holds hello's closure, arm64 only the greeting data
  // (which hello's closure holds too: a layer both images share).
  spec = join(work, 'image.json');
  await writeFile(spec, JSON.stringify({
    name: 'multi/hello',
    tag: '1',
    store: { dir: join(repoRoot, 'examples/hello/store') },
    platforms: [
      { architecture: 'amd64', contents: [HELLO] },
      { architecture: 'arm64', variant: 'v8', contents: [GREETING] },
    ],
    config: { Cmd: ['/bin/hello'] },
  }));
});

/** docker-registry with a fault proxy in front, started by the first test that needs it. */
const registryFixture = proxiedRegistryFixture();

async function cli(args: string[]) {
  const r = await runCli(args, { env });
  assert.equal(r.code, 0, r.stderr);
  return r;
}

async function buildJson(args: string[]) {
  return JSON.parse((await cli(['build', spec, ...args, '--json'])).stdout.toString()) as {
    digest: string;
    mediaType: string;
    platforms: { platform: string; digest: string; layers: { digest: string; reason: string }[] }[];
  };
}

test('a spec with platforms builds an OCI index over one image per platform, which skopeo reads and copies', async (t) => {
  if (!needTool(t, 'skopeo')) return;
  const out = join(work, 'multi.oci');
  const built = await buildJson(['-o', out]);
  assert.equal(built.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(built.platforms.map((p) => p.platform), ['linux/amd64', 'linux/arm64/v8']);
  const raw = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${out}:1`]));
  assert.deepEqual(raw.manifests.map((m: { digest: string; platform: unknown }) => [m.digest, m.platform]), [
    [built.platforms[0]!.digest, { architecture: 'amd64', os: 'linux' }],
    [built.platforms[1]!.digest, { architecture: 'arm64', os: 'linux', variant: 'v8' }],
  ]);
  const arm = JSON.parse(await tool('skopeo', ['inspect', '--override-arch', 'arm64', '--override-variant', 'v8', `oci:${out}:1`]));
  assert.equal(arm.Architecture, 'arm64');
  await tool('skopeo', ['copy', '--all', `oci:${out}:1`, `oci:${join(work, 'copied.oci')}:1`]);
  const again = await runCli(['diff', out, join(work, 'copied.oci')], { env });
  assert.equal(again.code, 0, again.stdout.toString());
});

test('inspect of an index lists its platforms; --platform shows one image', async () => {
  const out = join(work, 'inspect.oci');
  const built = await buildJson(['-o', out]);
  const listed = JSON.parse((await cli(['inspect', out, '--json'])).stdout.toString());
  assert.equal(listed.digest, built.digest);
  assert.deepEqual(listed.platforms.map((p: { platform: string; digest: string }) => [p.platform, p.digest]), built.platforms.map((p) => [p.platform, p.digest]));
  const one = JSON.parse((await cli(['inspect', out, '--platform', 'linux/arm64', '--json'])).stdout.toString());
  assert.equal(one.digest, built.platforms[1]!.digest);
  assert.equal(one.config.architecture, 'arm64');
});

test('--platform builds a subset; a docker-archive of several platforms is refused before any layer is made', async () => {
  const arm = await buildJson(['--platform', 'linux/arm64', '-o', join(work, 'arm.oci')]);
  assert.deepEqual(arm.platforms.map((p) => p.platform), ['linux/arm64/v8']);
  const r = await runCli(['build', spec, '-f', 'docker-archive', '-o', join(work, 'x.tar')], { env });
  assert.equal(r.code, 2, 'a usage error');
  assert.match(r.stderr, /error\[usage\]: a docker-archive holds one platform, and this spec builds linux\/amd64, linux\/arm64\/v8\nhint: pick one with --platform/);
  assert.doesNotMatch(r.stderr, /layer \d/);
  const one = await runCli(['build', spec, '-f', 'docker-archive', '--platform', 'linux/amd64', '-o', join(work, 'amd.tar')], { env });
  assert.equal(one.code, 0, one.stderr);
  const bad = await runCli(['build', spec, '--platform', 'linux/s390x', '-o', join(work, 'y.oci')], { env });
  assert.equal(bad.code, 2, 'a usage error');
  assert.match(bad.stderr, /error\[usage\]: --platform linux\/s390x: the spec builds linux\/amd64, linux\/arm64\/v8/);
});

test('a push of the index uploads each distinct blob once, then the images and the index; a second push uploads nothing', async (t) => {
  if (!(await registryFixture.need(t, 'skopeo'))) return;
  registryFixture.proxy.clearLog();
  const ref = `${registryFixture.proxy.host}/multi/hello:1`;
  const built = await buildJson(['--push', ref, '--insecure-registry', registryFixture.proxy.host]);
  const uploads = uploadsByDigest(registryFixture.proxy.requests());
  const distinct = new Set(built.platforms.flatMap((p) => p.layers.map((l) => l.digest)));
  assert.ok(distinct.size < built.platforms.reduce((n, p) => n + p.layers.length, 0), 'the two images share a layer');
  for (const d of distinct) assert.equal(uploads[d], 1, d);
  const raw = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]));
  assert.equal(raw.manifests.length, 2);
  registryFixture.proxy.clearLog();
  const again = await buildJson(['--push', ref, '--insecure-registry', registryFixture.proxy.host]);
  assert.equal(again.digest, built.digest);
  assert.deepEqual(uploadsByDigest(registryFixture.proxy.requests()), {});
});

test('index create over two images pushed by separate builds gives the one-spec index digest, and reads no blob', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const host = registryFixture.proxy.host;
  const whole = await buildJson(['-o', join(work, 'whole.oci')]);
  await cli(['build', spec, '--platform', 'linux/amd64', '--push', `${host}/multi/parts:amd64`, '--insecure-registry', host]);
  await cli(['build', spec, '--platform', 'linux/arm64', '--push', `${host}/multi/parts:arm64`, '--insecure-registry', host]);
  registryFixture.proxy.clearLog();
  const r = await cli(['index', 'create', `${host}/multi/parts:1`, `docker://${host}/multi/parts:amd64`, `docker://${host}/multi/parts:arm64`, '--insecure-registry', host, '--tag', 'latest', '--json']);
  const created = JSON.parse(r.stdout.toString());
  assert.equal(created.digest, whole.digest);
  assert.deepEqual([created.reference, created.tags], [`${host}/multi/parts@${whole.digest}`, ['1', 'latest']]);
  assert.deepEqual(created.platforms.map((p: { platform: string; digest: string }) => [p.platform, p.digest]), whole.platforms.map((p) => [p.platform, p.digest]));
  const blobReads = registryFixture.proxy.requests().filter((q) => q.method === 'GET' && q.path.includes('/blobs/sha256:') && !q.path.includes(whole.platforms[0]!.digest));
  // Only the two configs are read (each image's platform is in its config); no layer moves.
  const layerDigests = new Set(whole.platforms.flatMap((p) => p.layers.map((l) => l.digest)));
  assert.deepEqual(blobReads.filter((q) => [...layerDigests].some((d) => q.path.includes(d))), []);
  assert.deepEqual(uploadsByDigest(registryFixture.proxy.requests()), {});
});

test('push of a two-platform layout pushes both images and the index', async (t) => {
  if (!(await registryFixture.need(t, 'skopeo'))) return;
  const out = join(work, 'topush.oci');
  const built = await buildJson(['-o', out]);
  const ref = `${registryFixture.registry.host}/multi/pushed:1`;
  const r = JSON.parse((await cli(['push', out, ref, '--insecure-registry', registryFixture.registry.host, '--json'])).stdout.toString());
  assert.equal(r.digest, built.digest);
  assert.deepEqual(r.platforms.map((p: { platform: string; digest: string }) => [p.platform, p.digest]), built.platforms.map((p) => [p.platform, p.digest]));
  const raw = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]));
  assert.deepEqual(raw.manifests.map((m: { digest: string }) => m.digest), built.platforms.map((p) => p.digest));
  for (const arch of ['amd64', 'arm64']) {
    const info = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', '--override-arch', arch, '--override-variant', 'v8', `docker://${ref}`]));
    assert.equal(info.Architecture, arch);
  }
});

test('fromImage naming a local two-platform layout takes the spec platform\'s image', async () => {
  const base = join(work, 'base.oci');
  const built = await buildJson(['-o', base]);
  const onTop = join(work, 'on-top.json');
  for (const [arch, expected] of [['amd64', built.platforms[0]!], ['arm64', built.platforms[1]!]] as const) {
    await writeFile(onTop, JSON.stringify({ name: 'multi/on-top', architecture: arch, ...(arch === 'arm64' ? { variant: 'v8' } : {}), fromImage: `oci:${base}` }));
    const r = JSON.parse((await cli(['build', onTop, '-o', join(work, `on-top-${arch}.oci`), '--json'])).stdout.toString());
    assert.deepEqual(r.layers.filter((l: { reason: string }) => l.reason === 'base').map((l: { digest: string }) => l.digest), expected.layers.map((l) => l.digest), arch);
  }
});

test('a spec naming one platform twice, or an architecture beside platforms, is refused naming the field', async () => {
  const bad = join(work, 'bad.json');
  await writeFile(bad, JSON.stringify({ name: 'multi/bad', architecture: 'amd64', platforms: [{ architecture: 'arm64' }, { architecture: 'arm64' }] }));
  const r = await runCli(['build', bad, '-o', join(work, 'bad.oci')], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /architecture: a spec with `platforms` names the architecture in each platform, not here/);
  assert.match(r.stderr, /platforms\[1\]: linux\/arm64 is also platforms\[0\]/);
});

test('diff of two indexes compares platform by platform, naming the one that differs', async () => {
  const a = join(work, 'diff-a.oci');
  const b = join(work, 'diff-b.oci');
  await buildJson(['-o', a]);
  const other = join(work, 'other.json');
  const spec2 = JSON.parse(await readFile(spec, 'utf8'));
  await writeFile(other, JSON.stringify({ ...spec2, platforms: [spec2.platforms[0], { ...spec2.platforms[1], contents: [HELLO] }] }));
  const r1 = await runCli(['build', other, '-o', b], { env });
  assert.equal(r1.code, 0, r1.stderr);
  const r = await runCli(['diff', a, b], { env });
  assert.equal(r.code, 1);
  const out = r.stdout.toString();
  assert.match(out, /^platform linux\/amd64: identical$/m);
  assert.match(out, /^platform linux\/arm64\/v8:$/m);
  const json = JSON.parse((await runCli(['diff', a, b, '--json'], { env })).stdout.toString());
  assert.deepEqual(json.platforms.map((p: { platform: string; diff: { identical: boolean } }) => [p.platform, p.diff.identical]), [['linux/amd64', true], ['linux/arm64/v8', false]]);
});

test('plan and closure of a multi-platform spec: --platform picks one platform, as sbom does; without it a usage error lists the platforms', async () => {
  for (const command of ['plan', 'closure']) {
    const r = await runCli([command, spec, '--json'], { env });
    assert.equal(r.code, 2, `${command}: ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout.toString()).error, {
      code: 'usage',
      message: `${spec} builds linux/amd64, linux/arm64/v8: a ${command} describes one image`,
      hint: 'pick one with --platform linux/amd64',
    });
    const other = await runCli([command, spec, '--platform', 'linux/s390x'], { env });
    assert.equal(other.code, 2);
    assert.match(other.stderr, /^error\[usage\]: --platform linux\/s390x: the spec builds linux\/amd64, linux\/arm64\/v8$/m);
  }
  const arm = JSON.parse((await cli(['closure', spec, '--platform', 'linux/arm64', '--json'])).stdout.toString());
  assert.deepEqual(arm.paths.map((p: { path: string }) => p.path), [GREETING]);
  const amd = JSON.parse((await cli(['closure', spec, '--platform', 'amd64', '--json'])).stdout.toString());
  assert.equal(amd.paths.length, 4);
  assert.ok(amd.roots.includes(HELLO));
  // The plan is the one build follows for that platform: its layers are the platform image's.
  const plan = JSON.parse((await cli(['plan', spec, '--platform', 'linux/arm64/v8', '--json'])).stdout.toString());
  assert.deepEqual(plan.layers.map((l: { paths: string[] }) => l.paths), [[GREETING]]);
  const built = await buildJson(['-o', join(work, 'plan-arm.oci'), '--platform', 'linux/arm64']);
  assert.deepEqual(built.platforms[0]!.layers.filter((l) => l.reason !== 'customisation').length, plan.layers.length);
});

test('build --plan of a multi-platform spec follows the plan of the one platform --platform picks: the digest of the build without it', async () => {
  const planFile = join(work, 'plan-arm.json');
  await writeFile(planFile, (await cli(['plan', spec, '--platform', 'linux/arm64', '--json'])).stdout);
  const planned = await buildJson(['-o', join(work, 'planned-arm.oci'), '--platform', 'linux/arm64', '--plan', planFile]);
  const unplanned = await buildJson(['-o', join(work, 'unplanned-arm.oci'), '--platform', 'linux/arm64']);
  assert.equal(planned.digest, unplanned.digest);
});

test('build --plan of a multi-platform spec without one --platform is a usage error naming the platforms; the other platform is refused by its closure', async () => {
  const planFile = join(work, 'plan-arm-2.json');
  await writeFile(planFile, (await cli(['plan', spec, '--platform', 'linux/arm64', '--json'])).stdout);
  const all = await runCli(['build', spec, '-o', join(work, 'all-planned.oci'), '--plan', planFile], { env });
  assert.equal(all.code, 2);
  assert.match(all.stderr, /^error\[usage\]: --plan follows the plan of one platform, and this spec builds linux\/amd64, linux\/arm64\/v8$/m);
  const amd = await runCli(['build', spec, '-o', join(work, 'amd-planned.oci'), '--platform', 'linux/amd64', '--plan', planFile], { env });
  assert.equal(amd.code, 1);
  assert.match(amd.stderr, /^error\[plan\]: .*plan-arm-2\.json: the plan was made for another closure/m);
});
