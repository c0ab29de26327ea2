import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DigestMismatchError, RegistryClient, RegistryError, RegistryHttpError, parseReference, pushImage, pushInputFromBlobDir, ManifestTooLargeError } from '../registry-client/index.js';
import { toolFixture } from './helpers/tools.js';
import { makeImage, makeLayer, noise, startProxiedRegistry, stopProxiedRegistry, type RunningRegistry } from './helpers/registry.js';
import type { FaultProxy } from './helpers/fault-proxy.js';


describe('push to a real registry (docker-registry 2.8, plain HTTP)', () => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  let client: RegistryClient;
  let tmp: string;

  const registry = toolFixture(['docker-registry'], async () => {
    ({ reg, proxy, client, tmp } = await startProxiedRegistry('imgbuild-push-'));
  });
  after(() => stopProxiedRegistry({ reg, proxy, client, tmp }));

  test('skopeo inspect and skopeo copy see exactly the pushed digests', async (t) => {
    if (!(await registry.need(t, 'skopeo'))) return;
    const img = await makeImage([await makeLayer({ 'etc/hello': 'hello\n' }), await makeLayer({ 'bin/tool': '#!/bin/sh\necho hi\n' })]);
    const ref = parseReference(`${proxy.host}/demo/app:v1`);
    const result = await pushImage(client, ref, { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.equal(result.digest, img.manifestDigest);
    assert.equal(result.uploaded, 3);
    assert.equal(result.skipped, 0);
    assert.equal(result.bytesSent, img.blobs.reduce((n, b) => n + b.size, 0));

    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/demo/app:v1`]).toString()) as { Digest: string; Layers: string[] };
    assert.equal(inspect.Digest, img.manifestDigest);
    assert.deepEqual(inspect.Layers, img.layers.map((l) => l.digest));

    const out = join(tmp, 'copied');
    execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/demo/app:v1`, `oci:${out}:v1`], { stdio: 'ignore' });
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]?.digest, img.manifestDigest);
    const copied = await readFile(join(out, 'blobs/sha256', img.manifestDigest.slice(7)));
    assert.deepEqual(copied, img.manifest);
  });

  test('a second push of the same image uploads no blob: one HEAD of the manifest it already holds, and the manifest PUT', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'data/a': 'same bytes twice\n' })]);
    const ref = parseReference(`${proxy.host}/demo/again:1`);
    const first = await pushImage(client, ref, { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.equal(first.alreadyThere, false);
    proxy.clearLog();
    const second = await pushImage(client, ref, { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.deepEqual(
      { uploaded: second.uploaded, skipped: second.skipped, mounted: second.mounted, bytesSent: second.bytesSent, alreadyThere: second.alreadyThere },
      { uploaded: 0, skipped: 2, mounted: 0, bytesSent: 0, alreadyThere: true },
    );
    assert.deepEqual(proxy.requests().map((r) => `${r.method} ${r.path} ${r.status}`), [
      `HEAD /v2/demo/again/manifests/${img.manifestDigest} 200`,
      'PUT /v2/demo/again/manifests/1 201',
    ]);
  });

  test('blobs already there under another manifest are each checked (HEAD), not uploaded: the registry lacks this manifest', async (t) => {
    if (!(await registry.need(t))) return;
    const layer = await makeLayer({ 'data/b': 'shared by two manifests\n' });
    const img = await makeImage([layer]);
    const ref = parseReference(`${proxy.host}/demo/other-manifest:1`);
    await pushImage(client, ref, { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    // The same blobs under a manifest with an annotation: another digest.
    const annotated = Buffer.from(JSON.stringify({ ...JSON.parse(img.manifest.toString()), annotations: { note: 'same blobs' } }));
    proxy.clearLog();
    const second = await pushImage(client, ref.withTag('2'), { manifest: { bytes: annotated, mediaType: img.mediaType }, blobs: img.blobs });
    assert.deepEqual({ uploaded: second.uploaded, skipped: second.skipped, alreadyThere: second.alreadyThere }, { uploaded: 0, skipped: 2, alreadyThere: false });
    const methods = proxy.requests().map((r) => `${r.method} ${r.status}`);
    assert.deepEqual(methods.sort(), ['HEAD 200', 'HEAD 200', 'HEAD 404', 'PUT 201']);
  });

  test('an index pushed again is found whole (the index and each child manifest held): no blob is checked', async (t) => {
    if (!(await registry.need(t))) return;
    const amd = await makeImage([await makeLayer({ 'arch': 'amd64 again\n' })], { architecture: 'amd64' });
    const arm = await makeImage([await makeLayer({ 'arch': 'arm64 again\n' })], { architecture: 'arm64' });
    const entry = (img: typeof amd, architecture: string) => ({ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifest.length, platform: { architecture, os: 'linux' } });
    const indexType = 'application/vnd.oci.image.index.v1+json';
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: indexType, manifests: [entry(amd, 'amd64'), entry(arm, 'arm64')] }));
    const input = {
      manifest: { bytes: index, mediaType: indexType },
      childManifests: [{ bytes: amd.manifest, mediaType: amd.mediaType }, { bytes: arm.manifest, mediaType: arm.mediaType }],
      blobs: [...amd.blobs, ...arm.blobs],
    };
    const ref = parseReference(`${proxy.host}/multi/again:1`);
    assert.equal((await pushImage(client, ref, input)).alreadyThere, false);
    proxy.clearLog();
    const again = await pushImage(client, ref, input);
    assert.deepEqual({ skipped: again.skipped, uploaded: again.uploaded, alreadyThere: again.alreadyThere }, { skipped: 4, uploaded: 0, alreadyThere: true });
    assert.ok(!proxy.requests().some((r) => r.path.includes('/blobs/')), 'no blob request');
    assert.deepEqual(proxy.requests().filter((r) => r.method === 'HEAD').length, 3);
  });

  test('a push sharing layers with another repository mounts them instead of uploading', async (t) => {
    if (!(await registry.need(t))) return;
    const shared = await makeLayer({ 'lib/shared.so': 'shared library bytes\n' });
    const base = await makeImage([shared]);
    await pushImage(client, parseReference(`${proxy.host}/team/base:1`), { manifest: { bytes: base.manifest, mediaType: base.mediaType }, blobs: base.blobs });
    const app = await makeImage([shared, await makeLayer({ 'app/main': 'app\n' })], { cmd: ['/app/main'] });
    proxy.clearLog();
    const blobs = app.blobs.map((b) => (b.digest === shared.digest ? { ...b, mountFrom: ['team/base'] } : b));
    const result = await pushImage(client, parseReference(`${proxy.host}/team/app:1`), { manifest: { bytes: app.manifest, mediaType: app.mediaType }, blobs });
    assert.equal(result.mounted, 1);
    assert.equal(result.uploaded, 2);
    const mounts = proxy.requests().filter((r) => r.method === 'POST' && r.query.includes('mount='));
    assert.equal(mounts.length, 1);
    assert.equal(mounts[0]?.status, 201);
    assert.ok(!proxy.requests().some((r) => r.method === 'PUT' && r.query.includes(shared.digest)), 'the shared layer was not uploaded');
  });

  test('chunked upload (PATCH with Content-Range) gives the same blob digest as a monolithic one', async (t) => {
    if (!(await registry.need(t))) return;
    const big = await makeLayer({ 'data/big': noise(300_000) });
    const img = await makeImage([big]);
    proxy.clearLog();
    const result = await pushImage(client, parseReference(`${proxy.host}/demo/chunked:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs }, { chunkSize: 64 * 1024 });
    assert.equal(result.digest, img.manifestDigest);
    const patches = proxy.requests().filter((r) => r.method === 'PATCH');
    assert.equal(patches.length, Math.ceil(big.size / (64 * 1024)));
    assert.ok(patches.length >= 5);
    const head = await client.blobExists({ registry: proxy.host, repository: 'demo/chunked' }, big.digest);
    assert.deepEqual(head, { exists: true, size: big.size });
  });

  test('listTags asks for pages of pageSize; docker-registry 2.8, which does not page tags, answers all at once', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'x': 'pages\n' })]);
    const tags = ['a', 'b', 'c', 'd', 'e'];
    await pushImage(client, parseReference(`${proxy.host}/demo/pages:${tags[0]}`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs, extraTags: tags.slice(1) });
    proxy.clearLog();
    const listed = await client.listTags({ registry: proxy.host, repository: 'demo/pages' }, { pageSize: 2 });
    assert.deepEqual([...listed].sort(), tags);
    const pages = proxy.requests().filter((r) => r.method === 'GET' && r.path.endsWith('/tags/list'));
    assert.deepEqual(pages.map((r) => r.query), ['n=2']);
  });

  test('extra tags point at the same manifest', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'x': 'tags\n' })]);
    await pushImage(client, parseReference(`${proxy.host}/demo/tags:1.0`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs, extraTags: ['1', 'latest'] });
    assert.deepEqual((await client.listTags({ registry: proxy.host, repository: 'demo/tags' })).sort(), ['1', '1.0', 'latest']);
    for (const tag of ['1', 'latest']) {
      const m = await client.getManifest({ registry: proxy.host, repository: 'demo/tags' }, tag);
      assert.equal(m.digest, img.manifestDigest);
    }
  });

  test('a manifest over 4 MiB is refused before anything is sent', async (t) => {
    if (!(await registry.need(t))) return;
    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    proxy.clearLog();
    await assert.rejects(
      pushImage(client, parseReference(`${proxy.host}/demo/huge:1`), { manifest: { bytes: huge, mediaType: 'application/vnd.oci.image.manifest.v1+json' }, blobs: [] }),
      (e: unknown) => e instanceof ManifestTooLargeError && /4194305 bytes/.test(e.message),
    );
    assert.deepEqual(proxy.requests(), []);
  });

  test('a blob whose file is missing fails with an error naming the blob and the file, and no manifest is pushed', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'gone': 'gone\n' })]);
    const missing = join(tmp, 'no-such-layer.tar.gz');
    const blobs = img.blobs.map((b) => (b.digest === img.layers[0]!.digest ? { digest: b.digest, size: b.size, path: missing } : b));
    await assert.rejects(
      pushImage(client, parseReference(`${proxy.host}/demo/missing:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs }),
      (e: unknown) => e instanceof RegistryError && e.code === 'push-input' && e.message.includes(img.layers[0]!.digest) && e.message.includes(missing),
    );
    await assert.rejects(client.getManifest({ registry: proxy.host, repository: 'demo/missing' }, '1'), (e: unknown) => e instanceof RegistryHttpError && e.status === 404);
  });

  test('a source whose bytes do not match the digest is refused by the registry and nothing is committed under that digest', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'real': 'real bytes\n' })]);
    const layer = img.layers[0]!;
    const forged = Buffer.from(layer.bytes);
    forged[forged.length - 1] = forged.at(-1)! ^ 0xff;
    const blobs = img.blobs.map((b) => (b.digest === layer.digest ? { ...b, open: () => Readable.from([forged]) } : b));
    await assert.rejects(
      pushImage(client, parseReference(`${proxy.host}/demo/forged:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs }),
      (e: unknown) => e instanceof RegistryHttpError && e.status === 400 && /DIGEST_INVALID/.test(e.message),
    );
    assert.deepEqual(await client.blobExists({ registry: proxy.host, repository: 'demo/forged' }, layer.digest), { exists: false });
  });

  test('a source shorter than its descriptor says is reported as such', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'short': 'short\n' })]);
    const layer = img.layers[0]!;
    const blobs = img.blobs.map((b) => (b.digest === layer.digest ? { ...b, open: () => Readable.from([layer.bytes.subarray(0, 10)]) } : b));
    await assert.rejects(
      pushImage(client, parseReference(`${proxy.host}/demo/short:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs }),
      (e: unknown) => e instanceof DigestMismatchError && e.message.includes(layer.digest),
    );
  });

  test('name:tag@digest pushes the tag after checking the digest; a digest that does not match is refused before sending', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'pinned': 'pinned\n' })]);
    const manifest = { bytes: img.manifest, mediaType: img.mediaType };
    await pushImage(client, parseReference(`${proxy.host}/demo/pinned:v2@${img.manifestDigest}`), { manifest, blobs: img.blobs });
    assert.equal((await client.getManifest({ registry: proxy.host, repository: 'demo/pinned' }, 'v2')).digest, img.manifestDigest);
    proxy.clearLog();
    const wrong = `sha256:${'0'.repeat(64)}`;
    await assert.rejects(pushImage(client, parseReference(`${proxy.host}/demo/pinned:v3@${wrong}`), { manifest, blobs: img.blobs }),
      (e: unknown) => e instanceof RegistryError && e.code === 'digest' && e.message.includes(img.manifestDigest));
    assert.deepEqual(proxy.requests(), []);
  });

  test('an OCI layout written by skopeo pushes to a new repository with the same manifest digest (pushInputFromBlobDir)', async (t) => {
    if (!(await registry.need(t, 'skopeo'))) return;
    const img = await makeImage([await makeLayer({ 'from/layout': 'layout\n' })]);
    await pushImage(client, parseReference(`${proxy.host}/demo/src:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    const layout = join(tmp, 'layout');
    execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/demo/src:1`, `oci:${layout}:1`], { stdio: 'ignore' });
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; mediaType: string }[] };
    const top = index.manifests[0]!;
    const manifest = await readFile(join(layout, 'blobs/sha256', top.digest.slice(7)));
    const input = await pushInputFromBlobDir(join(layout, 'blobs'), manifest, top.mediaType);
    assert.deepEqual(input.blobs.map((b) => b.path), [img.config, ...img.layers].map((b) => join(layout, 'blobs/sha256', b.digest.slice(7))));
    const result = await pushImage(client, parseReference(`${proxy.host}/demo/from-layout:1`), input);
    assert.equal(result.digest, img.manifestDigest);
    assert.equal(result.uploaded, 2);
  });

  test('a mount the registry cannot do (202) falls back to uploading into the session it opened', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'not/elsewhere': 'only here\n' })]);
    const layer = img.layers[0]!;
    proxy.clearLog();
    const blobs = img.blobs.map((b) => (b.digest === layer.digest ? { ...b, mountFrom: ['demo/does-not-have-it'] } : b));
    const result = await pushImage(client, parseReference(`${proxy.host}/demo/fallback:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs });
    assert.deepEqual({ mounted: result.mounted, uploaded: result.uploaded }, { mounted: 0, uploaded: 2 });
    const forLayer = proxy.requests().filter((r) => r.method === 'POST' && r.query.includes(`mount=${layer.digest}`));
    assert.deepEqual(forLayer.map((r) => r.status), [202]);
    assert.equal(proxy.requests().filter((r) => r.method === 'POST').length, 2, 'one session for the config, the mount\'s session for the layer');
    assert.deepEqual(await client.blobExists({ registry: proxy.host, repository: 'demo/fallback' }, layer.digest), { exists: true, size: layer.size });
  });
});
