// The library's reads take an AbortSignal as its builds, writes and pushes do: openImage,
// openArtifact, imageReferrers, pushReferrers, layerFiles, readLayerFile and diffImages, against a
// registry that never answers, reject as soon as the signal aborts, with the signal's reason (as
// pushImage does), and the request they were waiting on is closed (not left to its timeout).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryClient } from '../registry-client/index.js';
import { diffImages, imageReferrers, layerFiles, openArtifact, openImage, pushReferrers, readLayerFile, sbomArtifact, type Image } from '../builder/index.js';
import { makeImage, makeLayer, type TestImage } from './helpers/registry.js';
import { startHostileRegistry, startSilentServer, writeLayout, type HostileServer } from './helpers/hostile-registry.js';
import { tempDir } from './helpers/tmp.js';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let a: TestImage;
let b: TestImage;
let registry: HostileServer;
/** Which requests the registry leaves unanswered (a URL test), and those it left, with whether the client closed them. */
let hangIf: (url: string) => boolean = () => false;
const hung: { url: string; closed: boolean }[] = [];
const clients: RegistryClient[] = [];
const servers: HostileServer[] = [];

/** A registry serving repositories `a` and `b` (one image each, tag `1`), except that what `hangIf` names is never answered. */
before(async () => {
  a = await makeImage([await makeLayer({ 'etc/motd': 'image a\n' })]);
  b = await makeImage([await makeLayer({ 'etc/motd': 'image b\n' })]);
  const blobs = new Map([a, b].flatMap((img) => [img.config, ...img.layers].map((x) => [x.digest as string, x.bytes] as const)));
  registry = await startHostileRegistry((req, res) => {
    const url = req.url ?? '';
    if (hangIf(url)) {
      const h = { url, closed: false };
      hung.push(h);
      res.on('close', () => (h.closed = true));
      return;
    }
    if (url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    const m = /^\/v2\/([ab])\/(manifests|blobs)\/([^?]+)$/.exec(url);
    const img = m?.[1] === 'a' ? a : b;
    if (m?.[2] === 'manifests' && (m[3] === '1' || m[3] === img.manifestDigest)) {
      return void res.writeHead(200, { 'content-type': MANIFEST, 'docker-content-digest': img.manifestDigest, 'content-length': img.manifest.length }).end(img.manifest);
    }
    const blob = m?.[2] === 'blobs' ? blobs.get(m[3]!) : undefined;
    if (blob) return void res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length }).end(blob);
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND","message":"not here"}]}');
  });
  servers.push(registry);
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.stop()));
});

function client(): RegistryClient {
  const c = new RegistryClient({ credentials: async () => undefined });
  clients.push(c);
  return c;
}

/**
 * Start `call` under a signal, wait until the registry holds a request of it unanswered, abort:
 * the promise rejects with the signal's reason within a second, and the held request is closed.
 */
async function abortsPromptly(what: string, hang: (url: string) => boolean, call: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  hung.length = 0;
  hangIf = hang;
  try {
    const controller = new AbortController();
    const reason = new Error(`${what}: stopped by the test`);
    const outcome = call(controller.signal).then(() => 'resolved', (e: unknown) => e);
    for (let i = 0; hung.length === 0; i++) {
      if (i > 500) assert.fail(`${what}: no request was held within 5 s (${String(await Promise.race([outcome, 'pending']))})`);
      await sleep(10);
    }
    const start = performance.now();
    controller.abort(reason);
    const settled = await Promise.race([outcome, sleep(5000, 'still pending 5 s after the abort', { ref: false })]);
    assert.equal(settled, reason, `${what} rejects with the signal's reason`);
    assert.ok(performance.now() - start < 1000, `${what} rejected ${Math.round(performance.now() - start)} ms after the abort`);
    for (let i = 0; !hung.every((h) => h.closed) && i < 100; i++) await sleep(10);
    assert.deepEqual(hung.filter((h) => !h.closed).map((h) => h.url), [], `${what}: the held requests were closed`);
  } finally {
    hangIf = () => false;
  }
}

const isBlobOf = (img: TestImage) => (url: string) => url === `/v2/${img === a ? 'a' : 'b'}/blobs/${img.layers[0]!.digest}`;

test('openImage and openArtifact of a registry that never answers reject with the signal\'s reason as soon as it aborts', async () => {
  const silent = await startSilentServer();
  servers.push(silent);
  for (const [name, open] of [['openImage', openImage], ['openArtifact', openArtifact]] as const) {
    const controller = new AbortController();
    const reason = new Error(`${name}: stopped`);
    const c = client();
    const outcome = open(`docker://${silent.host}/demo/hello:1`, { registry: c, signal: controller.signal }).then(() => 'resolved', (e: unknown) => e);
    while (silent.connections() === 0) await sleep(10);
    const start = performance.now();
    controller.abort(reason);
    assert.equal(await Promise.race([outcome, sleep(5000, 'still pending 5 s after the abort', { ref: false })]), reason);
    assert.ok(performance.now() - start < 1000);
  }
  // A manifest request held (the ping answered): the same, and the request is closed.
  await abortsPromptly('openImage (manifest)', (url) => url.includes('/manifests/'), (signal) => openImage(`docker://${registry.host}/a:1`, { registry: client(), signal }));
});

test('layerFiles, readLayerFile and diffImages of registry images reject at the abort, and the blob download is closed', async () => {
  const c = client();
  const ia = await openImage(`docker://${registry.host}/a:1`, { registry: c });
  const ib = await openImage(`docker://${registry.host}/b:1`, { registry: c });
  await abortsPromptly('layerFiles', isBlobOf(a), (signal) => layerFiles(ia.layers[0]!, { signal }));
  await abortsPromptly('readLayerFile', isBlobOf(a), (signal) => readLayerFile(ia.layers[0]!, '/etc/motd', { signal }));
  await abortsPromptly('diffImages', isBlobOf(b), (signal) => diffImages(ia, ib, { signal }));
  // Unaborted, they read what the registry holds.
  assert.equal((await readLayerFile(ia.layers[0]!, 'etc/motd'))?.toString(), 'image a\n');
  assert.equal((await readLayerFile(ia.layers[0]!, 'etc/motd', 1024))?.toString(), 'image a\n');
  assert.deepEqual((await layerFiles(ib.layers[0]!)).map((f) => f.path), ['etc/motd']);
  assert.equal((await diffImages(ia, ib)).layers[0]?.change, 'content');
});

test('imageReferrers and pushReferrers reject at the abort', async () => {
  const c = client();
  await abortsPromptly('imageReferrers', (url) => url.includes('/referrers/'), (signal) => imageReferrers(`docker://${registry.host}/a:1`, a.manifestDigest, { registry: c, signal }));
  const image = await openImage(`docker://${registry.host}/a:1`, { registry: c });
  const artifact = sbomArtifact(image, 'spdx', Buffer.from('{"spdxVersion":"SPDX-2.3"}'), '2024-01-01T00:00:00Z');
  // The push's first request (a blob HEAD or an upload) is held.
  await abortsPromptly('pushReferrers', (url) => url.startsWith('/v2/a/blobs/'), (signal) => pushReferrers(c, { registry: registry.host, repository: 'a' }, [artifact], { signal }));
});

test('a signal aborted already rejects at once, before anything is read, for local images too', async () => {
  const work = await tempDir('imgbuild-library-abort-');
  const layout = await writeLayout(join(work, 'a.oci'), a);
  const local: Image = await openImage(`oci:${layout}`);
  const reason = new Error('aborted before the call');
  const signal = AbortSignal.abort(reason);
  hung.length = 0;
  hangIf = () => true;
  try {
    for (const call of [
      () => openImage(`oci:${layout}`, { signal }),
      () => openArtifact(`oci:${layout}`, { signal }),
      () => openImage(`docker://${registry.host}/a:1`, { registry: client(), signal }),
      () => imageReferrers(`oci:${layout}`, a.manifestDigest, { signal }),
      () => layerFiles(local.layers[0]!, { signal }),
      () => readLayerFile(local.layers[0]!, 'etc/motd', { signal }),
      () => diffImages(local, local, { signal }),
      () => pushReferrers(client(), { registry: registry.host, repository: 'a' }, [], { signal }),
    ]) {
      await assert.rejects(call(), (e: unknown) => e === reason);
    }
  } finally {
    hangIf = () => false;
  }
  assert.deepEqual(hung, [], 'no request was sent');
});
