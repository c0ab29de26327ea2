// Push through the CLI to Debian's docker-registry on 127.0.0.1, checked with skopeo, umoci and runc.
import { test, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recordSum, type LayerRecord } from '../builder/cache/layer-cache.js';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { proxiedRegistryFixture } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { runImage } from './helpers/runc.js';

let work: string;
/** This test's cache dir (each test has its own) and the CLI's environment. */
let cacheDir: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  work = await tempDir('imgbuild-push-');
});

beforeEach(async () => {
  cacheDir = await tempDir('imgbuild-push-cache-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: cacheDir, DOCKER_CONFIG: join(work, 'docker') };
});

/** docker-registry with a fault proxy in front, started by the first test that needs it. */
const registryFixture = proxiedRegistryFixture();

const hello = join(repoRoot, 'examples/hello');

function pushArgs(host: string): string[] {
  return ['--insecure-registry', host];
}

async function cli(args: string[]) {
  const r = await runCli(args, { env });
  assert.equal(r.code, 0, r.stderr);
  return r;
}

test('build --push puts the image in the registry with the digest of the local build', async (t) => {
  if (!(await registryFixture.need(t, 'skopeo'))) return;
  const ref = `${registryFixture.registry.host}/examples/hello:2.12.1`;
  const digestFile = join(work, 'digest');
  const r = await cli(['build', hello, '--push', ref, ...pushArgs(registryFixture.registry.host), '--digest-file', digestFile, '--json']);
  const built = JSON.parse(r.stdout.toString());
  assert.equal((await readFile(digestFile, 'utf8')).trim(), built.digest);
  const info = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]));
  assert.equal(info.Digest, built.digest);
  const copy = join(work, 'copied.oci');
  await tool('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${copy}:x`]);
  const copied = JSON.parse(await tool('skopeo', ['inspect', `oci:${copy}:x`]));
  assert.equal(copied.Digest, built.digest);
});

test('a second push of the same build uploads no blob', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const ref = `${registryFixture.proxy.host}/examples/hello-again:1`;
  await cli(['build', hello, '--push', ref, ...pushArgs(registryFixture.proxy.host)]);
  registryFixture.proxy.clearLog();
  const r = await cli(['build', hello, '--push', ref, ...pushArgs(registryFixture.proxy.host), '--json']);
  assert.deepEqual(JSON.parse(r.stdout.toString()).pushed.uploaded, 0);
  const uploads = registryFixture.proxy.requests().filter((q) => q.path.includes('/blobs/uploads'));
  assert.deepEqual(uploads, []);
});

test('build --push and push print <registry>/<repository>@<digest> alone on stdout; --json names it reference, with every tag pushed', async (t) => {
  if (!(await registryFixture.need(t, 'skopeo'))) return;
  const host = registryFixture.registry.host;
  const r = await cli(['build', hello, '--push', `${host}/examples/contract:1`, '--tag', 'latest', '--tag', 'stable', ...pushArgs(host)]);
  const pinned = r.stdout.toString();
  assert.match(pinned, new RegExp(`^${host}/examples/contract@sha256:[0-9a-f]{64}\n$`), 'one line: the pushed image, pinned');
  assert.match(r.stderr, new RegExp(`^pushed ${host}/examples/contract@sha256:[0-9a-f]{64} \\(tags 1, latest, stable\\)$`, 'm'));
  assert.match(r.stderr, /^blobs: \d+ uploaded/m);
  // The line is a reference other tools take as it is.
  const info = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${pinned.trim()}`]));
  assert.equal(`${host}/examples/contract@${info.Digest}`, pinned.trim());
  const tags = JSON.parse(await tool('skopeo', ['list-tags', '--tls-verify=false', `docker://${host}/examples/contract`])).Tags as string[];
  assert.deepEqual(tags.sort(), ['1', 'latest', 'stable']);

  const j = JSON.parse((await cli(['build', hello, '--push', `${host}/examples/contract:2`, '--tag', 'extra', ...pushArgs(host), '--json'])).stdout.toString());
  assert.deepEqual([j.reference, j.tags, j.digest], [pinned.trim(), ['2', 'extra'], info.Digest]);
  assert.equal(j.output, undefined, 'no file written');

  const out = join(work, 'contract.oci');
  await cli(['build', hello, '-o', out]);
  const p = await cli(['push', out, `docker://${host}/examples/contract-copy`, ...pushArgs(host)]);
  assert.equal(p.stdout.toString(), `${host}/examples/contract-copy@${info.Digest}\n`);
  const pj = JSON.parse((await cli(['push', `docker://${host}/examples/contract:1`, `${host}/examples/contract-copy@${info.Digest}`, ...pushArgs(host), '--json'])).stdout.toString());
  assert.deepEqual([pj.source, pj.reference, pj.tags, pj.pushed.alreadyThere], [`docker://${host}/examples/contract:1`, `${host}/examples/contract-copy@${info.Digest}`, [], true]);
});

test('imgbuild push sends an OCI layout with its digest unchanged', async (t) => {
  if (!(await registryFixture.need(t, 'skopeo'))) return;
  const out = join(work, 'hello-push.oci');
  const built = JSON.parse((await cli(['build', hello, '-o', out, '--json'])).stdout.toString());
  const ref = `${registryFixture.registry.host}/examples/pushed:v1`;
  const r = await cli(['push', out, ref, ...pushArgs(registryFixture.registry.host), '--tag', 'latest', '--json']);
  assert.equal(JSON.parse(r.stdout.toString()).digest, built.digest);
  const latest = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${registryFixture.registry.host}/examples/pushed:latest`]));
  assert.equal(latest.Digest, built.digest);
});

test('build --push and push with a bad --tag or a --digest-file in a missing directory: exit 2 naming the flag, and nothing reaches the registry', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const host = registryFixture.proxy.host;
  const layout = join(work, 'refused.oci');
  await cli(['build', hello, '-o', layout]);
  const nodir = join(work, 'nodir', 'd.txt');
  registryFixture.proxy.clearLog();
  for (const [command, flags, line] of [
    [['build', hello, '--push', `${host}/examples/refused:1`], ['--tag', 'bad tag'], 'error[usage]: --tag "bad tag" is not a tag'],
    [['build', hello, '--push', `${host}/examples/refused:1`], ['--digest-file', nodir], `error[usage]: --digest-file ${nodir}: the directory ${join(work, 'nodir')} does not exist`],
    [['push', layout, `${host}/examples/refused:1`], ['--tag', 'bad tag'], 'error[usage]: --tag "bad tag" is not a tag'],
    [['push', layout, `${host}/examples/refused:1`], ['--digest-file', nodir], `error[usage]: --digest-file ${nodir}: the directory ${join(work, 'nodir')} does not exist`],
  ] as const) {
    const r = await runCli([...command, ...flags, ...pushArgs(host)], { env });
    assert.equal(r.code, 2, `${command[0]} ${flags.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.split('\n')[0], line);
    assert.doesNotMatch(r.stderr, /layer \d|pushed|\.tmp-/);
    assert.equal(r.stdout.toString(), '');
  }
  // Not a request, so no tag moved and no blob was sent.
  assert.deepEqual(registryFixture.proxy.requests(), []);
});

test('an image built on a pulled base mounts the base layers, inherits its Env and runs under runc', async (t) => {
  if (!(await registryFixture.need(t, 'skopeo', 'umoci', 'runc', 'busybox'))) return;
  await tool('bash', [join(repoRoot, 'examples/busybox/make-store.sh')]);
  const baseRef = `${registryFixture.registry.host}/base/busybox:1.35.0`;
  await cli(['build', join(repoRoot, 'examples/busybox'), '--push', baseRef, ...pushArgs(registryFixture.registry.host)]);

  const dir = join(work, 'on-base');
  await mkdir(dir);
  const spec = join(dir, 'image.json');
  await writeFile(spec, JSON.stringify({
    name: 'examples/greeter', architecture: 'amd64',
    fromImage: baseRef,
    store: { dir: join(repoRoot, 'examples/hello/store') },
    contents: ['/nix/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0'],
    config: {
      Env: ['GREETING_FILE=/nix/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0/share/greeting/text'],
      Cmd: ['/bin/sh', '-c', 'echo "$PATH"; cat "$GREETING_FILE"'],
    },
  }));
  const ref = `${registryFixture.registry.host}/examples/greeter:1`;
  const r = await cli(['build', spec, '--push', ref, ...pushArgs(registryFixture.registry.host), '--json']);
  const built = JSON.parse(r.stdout.toString());
  assert.equal(built.layers[0].reason, 'base');
  assert.ok(built.pushed.mounted >= 1, `expected base layers to be mounted: ${JSON.stringify(built.pushed)}`);

  const layout = join(work, 'greeter.oci');
  await tool('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:1`]);
  // PATH=/bin comes from the base's Env, GREETING_FILE from ours.
  assert.equal(await runImage(layout, '1', work), '/bin\nHello, world!\n');
});

test('plan --previous reads the previous image from the registry and carries every layer over', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const ref = `${registryFixture.registry.host}/examples/previous:1`;
  const pushed = JSON.parse((await cli(['build', hello, '--push', ref, ...pushArgs(registryFixture.registry.host), '--json'])).stdout.toString());
  const plan = JSON.parse((await cli(['plan', hello, '--previous', ref, ...pushArgs(registryFixture.registry.host), '--json'])).stdout.toString());
  assert.deepEqual(
    plan.layers.map((l: { paths: string[]; reason: string }) => [l.reason, l.paths]),
    pushed.layers.filter((l: { storePaths: string[] }) => l.storePaths.length > 0).map((l: { storePaths: string[] }) => ['carried-over', l.storePaths]),
  );
});

test('a push of cached layers the registry already holds needs no local blob and writes none', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const ref = `${registryFixture.proxy.host}/examples/no-blobs:1`;
  const first = JSON.parse((await cli(['build', hello, '--push', ref, ...pushArgs(registryFixture.proxy.host), '--json'])).stdout.toString());
  // A CI cache that keeps the small layer records but not the blobs.
  const blobDir = join(cacheDir, 'blobs', 'sha256');
  await rm(blobDir, { recursive: true, force: true });
  registryFixture.proxy.clearLog();
  const second = JSON.parse((await cli(['build', hello, '--push', ref, ...pushArgs(registryFixture.proxy.host), '--json'])).stdout.toString());
  assert.equal(second.digest, first.digest);
  assert.equal(second.pushed.uploaded, 0);
  assert.deepEqual(registryFixture.proxy.requests().filter((q) => q.path.includes('/blobs/uploads')), []);
  // No layer was written again (the build keeps no config or manifest blob either: the dir may stay absent).
  const local = new Set((await readdir(blobDir).catch(() => [] as string[])).filter((f) => !f.startsWith('.')).map((hex) => `sha256:${hex}`));
  assert.deepEqual(second.layers.filter((l: { digest: string }) => local.has(l.digest)), []);
});

/** Layer records of the test's cache: file and record. */
async function layerRecords(): Promise<{ file: string; record: LayerRecord }[]> {
  const dir = join(cacheDir, 'layers');
  const out = [];
  for (const sub of await readdir(dir)) {
    for (const name of (await readdir(join(dir, sub))).filter((n) => n.endsWith('.json'))) {
      const file = join(dir, sub, name);
      out.push({ file, record: JSON.parse(await readFile(file, 'utf8')) });
    }
  }
  return out;
}

test('a push of cached layers held nowhere makes them again from the store as they are sent, writing no blob', async (t) => {
  if (!(await registryFixture.need(t, 'skopeo'))) return;
  const first = JSON.parse((await cli(['build', hello, '--push', `${registryFixture.proxy.host}/examples/remade-a:1`, ...pushArgs(registryFixture.proxy.host), '--json'])).stdout.toString());
  const blobDir = join(cacheDir, 'blobs', 'sha256');
  await rm(blobDir, { recursive: true, force: true });
  // Another repository holds none of the blobs, and the cache does not say where they went (no
  // mount from remade-a): every layer must be uploaded.
  await rm(join(cacheDir, 'blob-locations'), { recursive: true, force: true });
  const ref = `${registryFixture.proxy.host}/examples/remade-b:1`;
  const r = await cli(['build', hello, '--push', ref, ...pushArgs(registryFixture.proxy.host), '--json']);
  const second = JSON.parse(r.stdout.toString());
  assert.equal(second.digest, first.digest);
  const storeLayers = second.layers.filter((l: { storePaths: string[] }) => l.storePaths.length > 0);
  assert.ok(storeLayers.length > 0);
  assert.equal(second.pushed.uploaded, second.layers.length + 1, 'every layer and the config');
  for (const l of storeLayers) assert.match(r.stderr.toString(), new RegExp(`${l.digest} .*\\(cached record; made from the store if an output needs its bytes\\)`));
  // No store layer was written here; the registry checked each digest as it took the bytes.
  const local = new Set((await readdir(blobDir).catch(() => [] as string[])).filter((f) => !f.startsWith('.')).map((hex) => `sha256:${hex}`));
  assert.deepEqual(storeLayers.filter((l: { digest: string }) => local.has(l.digest)), []);
  const copy = join(work, 'remade.oci');
  await tool('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${copy}:x`]);
  assert.equal(JSON.parse(await tool('skopeo', ['inspect', `oci:${copy}:x`])).Digest, first.digest);
  // In PATCH chunks of 200 bytes (as to GHCR, whose chunks are 4 MiB) the streams serve too.
  const chunkedRef = `${registryFixture.proxy.host}/examples/remade-c:1`;
  await rm(join(cacheDir, 'blob-locations'), { recursive: true, force: true });
  registryFixture.proxy.clearLog();
  const third = JSON.parse((await cli(['build', hello, '--push', chunkedRef, ...pushArgs(registryFixture.proxy.host), '--chunk-size', '200', '--json'])).stdout.toString());
  assert.equal(third.pushed.uploaded, third.layers.length + 1);
  assert.ok(registryFixture.proxy.requests().some((q) => q.method === 'PATCH'), 'chunked uploads');
  assert.equal(JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${chunkedRef}`])).Digest, first.digest);
});

test('a cached layer whose record no longer matches the store fails the push before its last byte, and no tag moves', async (t) => {
  if (!(await registryFixture.need(t, 'skopeo'))) return;
  const first = JSON.parse((await cli(['build', hello, '--push', `${registryFixture.proxy.host}/examples/stale-a:1`, ...pushArgs(registryFixture.proxy.host), '--json'])).stdout.toString());
  await rm(join(cacheDir, 'blobs', 'sha256'), { recursive: true, force: true });
  // The record of one store layer claims other bytes than the store gives.
  const storeDigests = new Set(first.layers.filter((l: { storePaths: string[] }) => l.storePaths.length > 0).map((l: { digest: string }) => l.digest));
  const { file, record } = (await layerRecords()).find((x) => storeDigests.has(x.record.blob.digest))!;
  const real = record.blob.digest;
  const claimed = `sha256:${'1'.repeat(64)}` as const;
  record.blob.digest = claimed;
  // A consistent record (its checksum recomputed): a damaged one would only be a cache miss.
  record.sum = recordSum(record.key, record.blob);
  await writeFile(file, JSON.stringify(record));
  const ref = `${registryFixture.proxy.host}/examples/stale-b:1`;
  const r = await runCli(['build', hello, '--push', ref, ...pushArgs(registryFixture.proxy.host)], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr.toString(), new RegExp(`the layer's bytes are no longer the ones cached as ${claimed} \\(${record.blob.size} bytes\\): they give ${real} \\(${record.blob.size} bytes\\)`));
  assert.match(r.stderr.toString(), /\nhint: the store paths changed since the layer was cached; run `imgbuild cache prune --older-than 0s` \(empties the cache\) and build again\n/);
  await assert.rejects(tool('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]));
});

/**
 * The examples/github-actions flow with its own cache: push hello from one checkout of the
 * example, let `between` change the cache as a CI run would (restore only the records, prune),
 * then push from a second checkout to the same reference.
 */
async function ciFlow(name: string, between: (cacheDir: string, env: NodeJS.ProcessEnv) => Promise<void>) {
  const ciCache = join(work, `${name}-cache`);
  const ciEnv = { ...env, IMGBUILD_CACHE_DIR: ciCache };
  const ref = `${registryFixture.proxy.host}/examples/${name}:main`;
  const push = async (n: number) => {
    const dir = join(work, `${name}-checkout-${n}`);
    await cp(hello, dir, { recursive: true });
    const r = await runCli(['build', dir, '--push', ref, ...pushArgs(registryFixture.proxy.host), '--json'], { env: ciEnv });
    assert.equal(r.code, 0, r.stderr);
    return { out: JSON.parse(r.stdout.toString()), stderr: r.stderr.toString() };
  };
  const first = await push(1);
  await between(ciCache, ciEnv);
  registryFixture.proxy.clearLog();
  const next = await push(2);
  return { ciCache, first, next, uploads: registryFixture.proxy.requests().filter((q) => q.path.includes('/blobs/uploads')) };
}

/**
 * Every store layer of the second push came from its kept record (made from the store only if
 * an output needed it), none written again: what the kept records buy. Returns those layers.
 */
function assertStoreLayersFromRecords(next: { out: { layers: { digest: string; storePaths: string[] }[] }; stderr: string }) {
  const storeLayers = next.out.layers.filter((l) => l.storePaths.length > 0);
  assert.ok(storeLayers.length > 0);
  for (const l of storeLayers) assert.match(next.stderr, new RegExp(`${l.digest} \\S+ \\S+ \\(cached record; made from the store if an output needs its bytes\\)`));
  return storeLayers;
}

/** What a CI cache of ~/.cache/imgbuild/layers restores on the next run: the records alone. */
async function keepOnlyRecords(cacheDir: string): Promise<void> {
  await rm(join(cacheDir, 'blobs'), { recursive: true, force: true });
  await rm(join(cacheDir, 'scan'), { recursive: true, force: true });
}

test('the CI flow: a fresh checkout with only the layer records kept writes no store layer and uploads nothing again', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const { ciCache, first, next, uploads } = await ciFlow('ci', keepOnlyRecords);
  assert.equal(next.out.digest, first.out.digest);
  assert.equal(next.out.pushed.uploaded, 0);
  assert.deepEqual(uploads, []);
  const storeLayers = assertStoreLayersFromRecords(next);
  const written = await readdir(join(ciCache, 'blobs', 'sha256')).catch(() => [] as string[]);
  assert.deepEqual(storeLayers.filter((l: { digest: string }) => written.includes(l.digest.slice('sha256:'.length))), []);
});

test('the CI flow after `imgbuild cache prune` with its defaults: the records survive the prune, and the next push sends 0 blobs', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const { first, next, uploads } = await ciFlow('ci-pruned', async (cacheDir, ciEnv) => {
    await keepOnlyRecords(cacheDir);
    const prune = await runCli(['cache', 'prune'], { env: ciEnv });
    assert.equal(prune.code, 0, prune.stderr);
  });
  assert.equal(next.out.digest, first.out.digest);
  assert.equal(next.out.pushed.uploaded, 0);
  assert.deepEqual(uploads, []);
  // Sending nothing would hold without records too (the registry has every blob): that every
  // store layer came from its record, not written again, is what the kept records buy.
  assertStoreLayersFromRecords(next);
});
