// A push remembers, in the cache, which repositories it pushed each blob to, and a later push of
// the same blobs to another repository of that registry mounts them from there instead of
// uploading them again (as skopeo's blob-info cache does). The record is a hint: a stale, foreign
// or garbage one costs an upload, never the push.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobLocationStore, formatRecord } from '../builder/cache/blob-locations.js';
import { openArtifact } from '../builder/transports/open.js';
import { pushImage } from '../builder/transports/registry.js';
import { parseReference, RegistryClient } from '../registry-client/index.js';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { startRegistry, type RunningRegistry } from './helpers/registry.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

let work: string;
let layout: string;
let digest: string;
let blobs: string[];
let reg: RunningRegistry | undefined;

before(async () => {
  work = await tempDir('imgbuild-push-locations-');
  layout = join(work, 'hello.oci');
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', layout], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'build-cache') } });
  assert.equal(r.code, 0, r.stderr);
  digest = r.stdout.toString().trim();
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
});

const registry = toolFixture(['docker-registry'], async () => {
  reg = await startRegistry();
});

after(async () => {
  await reg?.stop();
});

/** `imgbuild push <layout> <host>/<repository>:1 --json` with `cache` as the cache dir: what it pushed. */
async function push(repository: string, cache: string) {
  const r = await runCli(['push', layout, `${reg!.host}/${repository}:1`, '--insecure-registry', reg!.host, '--json'], { env: { ...process.env, IMGBUILD_CACHE_DIR: cache } });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout.toString()) as { digest: string; pushed: { uploaded: number; mounted: number; skipped: number } };
  return { digest: doc.digest, uploaded: doc.pushed.uploaded, mounted: doc.pushed.mounted };
}

/** The digest the registry serves for `<repository>:1`. */
async function servedDigest(repository: string): Promise<string | null> {
  const res = await fetch(`http://${reg!.host}/v2/${repository}/manifests/1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return res.headers.get('docker-content-digest');
}

/** A cache dir of the test's own. */
async function cacheDir(): Promise<string> {
  return tempDir('imgbuild-push-locations-cache-');
}

test('a push to a second repository mounts every blob from the repository the first push went to', async (t) => {
  if (!(await registry.need(t))) return;
  const cache = await cacheDir();
  assert.deepEqual(await push('a/hello', cache), { digest, uploaded: 6, mounted: 0 });
  assert.deepEqual(await push('b/hello', cache), { digest, uploaded: 0, mounted: 6 });
  assert.equal(await servedDigest('b/hello'), digest);
});

test('after a push, the cache records every blob of the image under the target repository, newest first', async (t) => {
  if (!(await registry.need(t))) return;
  const cache = await cacheDir();
  await push('c1/hello', cache);
  await push('c2/hello', cache);
  const store = BlobLocationStore.inCache(cache);
  assert.deepEqual(blobs.map((d) => store.lookup(reg!.host, d)), blobs.map(() => ['c2/hello', 'c1/hello']));
});

test('a record naming a repository that does not hold the blob costs an upload, not the push', async (t) => {
  if (!(await registry.need(t))) return;
  const cache = await cacheDir();
  BlobLocationStore.inCache(cache).record(reg!.host, 'never/pushed', blobs);
  assert.deepEqual(await push('d/hello', cache), { digest, uploaded: 6, mounted: 0 });
  assert.equal(await servedDigest('d/hello'), digest);
});

test('a record of another registry is not used, even one holding the blobs', async (t) => {
  if (!(await registry.need(t))) return;
  const cache = await cacheDir();
  await push('e1/hello', cache);
  const other = await cacheDir();
  // The same repository under another registry's name, and a file at this registry's place that names another registry.
  BlobLocationStore.inCache(other).record('127.0.0.1:1', 'e1/hello', blobs);
  const store = BlobLocationStore.inCache(cache);
  const [regDir] = readdirSync(store.dir);
  for (const d of blobs) writeFileSync(join(store.dir, regDir!, d.slice(7)), formatRecord('127.0.0.1:1', ['e1/hello']));
  assert.deepEqual(await push('e2/hello', other), { digest, uploaded: 6, mounted: 0 });
  assert.deepEqual(await push('e3/hello', cache), { digest, uploaded: 6, mounted: 0 });
});

test('a garbage record file is ignored, and replaced by the push\'s own record', async (t) => {
  if (!(await registry.need(t))) return;
  const cache = await cacheDir();
  await push('f1/hello', cache);
  const store = BlobLocationStore.inCache(cache);
  const [regDir] = readdirSync(store.dir);
  for (const d of blobs) writeFileSync(join(store.dir, regDir!, d.slice(7)), Buffer.from([0xff, 0xfe, 0x00, 0x0a]));
  assert.deepEqual(await push('f2/hello', cache), { digest, uploaded: 6, mounted: 0 });
  assert.deepEqual(blobs.map((d) => store.lookup(reg!.host, d)), blobs.map(() => ['f2/hello']));
});

test('build --push and index create record their blobs and mount from earlier pushes', async (t) => {
  if (!(await registry.need(t))) return;
  const cache = await cacheDir();
  await push('g1/hello', cache);
  const env = { ...process.env, IMGBUILD_CACHE_DIR: cache };
  const built = await runCli(['build', join(repoRoot, 'examples/hello'), '--push', `${reg!.host}/g2/hello:1`, '--insecure-registry', reg!.host, '--json'], { env });
  assert.equal(built.code, 0, built.stderr);
  assert.deepEqual(JSON.parse(built.stdout.toString()).pushed, { uploaded: 0, mounted: 6, skipped: 0, bytesSent: 0, alreadyThere: false });
  const index = await runCli(['index', 'create', `${reg!.host}/g3/hello:1`, layout, '--insecure-registry', reg!.host, '--json'], { env });
  assert.equal(index.code, 0, index.stderr);
  assert.deepEqual(JSON.parse(index.stdout.toString()).pushed, { uploaded: 0, mounted: 6, skipped: 0, bytesSent: 0, alreadyThere: false });
  const store = BlobLocationStore.inCache(cache);
  assert.deepEqual(blobs.map((d) => store.lookup(reg!.host, d)), blobs.map(() => ['g3/hello', 'g2/hello', 'g1/hello']));
});

test('the library without a store records nothing and mounts nothing', async (t) => {
  if (!(await registry.need(t))) return;
  const client = new RegistryClient({ insecureRegistries: [reg!.host], credentials: async () => undefined });
  try {
    const image = await openArtifact(layout);
    const first = await pushImage(client, parseReference(`${reg!.host}/h1/hello:1`), image);
    const second = await pushImage(client, parseReference(`${reg!.host}/h2/hello:1`), image);
    assert.deepEqual([first.digest, first.uploaded, first.mounted], [digest, 6, 0]);
    assert.deepEqual([second.digest, second.uploaded, second.mounted], [digest, 6, 0]);
    assert.equal(existsSync(join(work, 'build-cache', 'blob-locations')), false);
  } finally {
    await client.close();
  }
});

test('a mount refused for want of access (403: a source the credential may not read) falls back to an upload', async (t) => {
  if (!(await registry.need(t))) return;
  const proxy = await startFaultProxy(reg!.port);
  const client = new RegistryClient({ insecureRegistries: [proxy.host], credentials: async () => undefined });
  try {
    const store = BlobLocationStore.inCache(await cacheDir());
    const image = await openArtifact(layout);
    await pushImage(client, parseReference(`${proxy.host}/i1/hello:1`), image, { blobLocations: store });
    proxy.inject({ match: (r) => r.method === 'POST' && r.query.includes('mount='), times: 6, fault: { kind: 'status', status: 403 } });
    const r = await pushImage(client, parseReference(`${proxy.host}/i2/hello:1`), image, { blobLocations: store });
    assert.deepEqual([r.digest, r.uploaded, r.mounted], [digest, 6, 0]);
    assert.equal(proxy.requests().filter((q) => q.status === 403).length, 6);
  } finally {
    await client.close();
    await proxy.stop();
  }
});
