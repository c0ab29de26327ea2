import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient, RegistryHttpError, parseReference, pushImage, pullImage } from '../registry-client/index.js';
import { toolFixture } from './helpers/tools.js';
import { makeImage, makeLayer, noise, startProxiedRegistry, stopProxiedRegistry, type RunningRegistry } from './helpers/registry.js';
import type { FaultProxy } from './helpers/fault-proxy.js';

const fast = { retries: 4, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 2_000 };

/** The blobs a repository links to in the registry's storage: what a push committed. */
async function committedBlobs(reg: RunningRegistry, repo: string): Promise<string[]> {
  const dir = join(reg.dir, 'data/docker/registry/v2/repositories', repo, '_layers/sha256');
  return (await readdir(dir)).map((hex) => `sha256:${hex}`).sort();
}

/** Every blob in the registry's global blob store (`blobs/sha256/<2>/<hex>/data`). */
async function storedBlobs(reg: RunningRegistry): Promise<string[]> {
  const root = join(reg.dir, 'data/docker/registry/v2/blobs/sha256');
  const out: string[] = [];
  for (const prefix of await readdir(root)) for (const hex of await readdir(join(root, prefix))) out.push(`sha256:${hex}`);
  return out.sort();
}

describe('faults between client and registry (fault proxy in front of docker-registry)', () => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  let client: RegistryClient;
  let tmp: string;

  const registry = toolFixture(['docker-registry'], async () => {
    ({ reg, proxy, client, tmp } = await startProxiedRegistry('imgbuild-faults-', fast));
  });
  after(() => stopProxiedRegistry({ reg, proxy, client, tmp }));

  test('a reset in the middle of a large monolithic upload restarts it with a new session; the registry ends with the right blob and no open session', async (t) => {
    if (!(await registry.need(t))) return;
    const layer = await makeLayer({ 'data/large': noise(6 * 1024 * 1024, 'reset') });
    const img = await makeImage([layer]);
    const knownBefore = new Set(await storedBlobs(reg).catch(() => []));
    proxy.clearLog();
    proxy.inject({ match: (r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.query.includes(layer.digest), times: 1, fault: { kind: 'reset-after', bytes: 2 * 1024 * 1024 } });
    const result = await pushImage(client, parseReference(`${proxy.host}/faults/reset:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });

    assert.equal(result.digest, img.manifestDigest);
    const puts = proxy.requests().filter((r) => r.method === 'PUT' && r.query.includes(layer.digest));
    assert.deepEqual(puts.map((r) => r.status), ['reset', 201]);
    assert.equal(proxy.requests().filter((r) => r.method === 'POST' && r.path.endsWith('/blobs/uploads/')).length, 3, 'config, layer, and a new session for the layer');
    assert.deepEqual(await client.blobExists({ registry: proxy.host, repository: 'faults/reset' }, layer.digest), { exists: true, size: layer.size });
    // Nothing partial: the repository links exactly the image's blobs, and the registry's blob
    // store holds no blob under any other digest (a half upload was never committed).
    assert.deepEqual(await committedBlobs(reg, 'faults/reset'), [img.config.digest, layer.digest].sort());
    const all = await storedBlobs(reg);
    assert.ok(all.includes(layer.digest));
    assert.ok(all.every((d) => d === img.manifestDigest || d === layer.digest || d === img.config.digest || !d.startsWith('sha256:') || knownBefore.has(d)), `unexpected blobs: ${all.join(' ')}`);

    // Read it back through the digest-verifying pull: the stored bytes are the whole layer.
    const pulled = await pullImage(client, parseReference(`${proxy.host}/faults/reset:1`), { blobDir: join(tmp, 'blobs') });
    assert.deepEqual(pulled.layers.map((l) => l.digest), [layer.digest]);
  });

  test('a reset in the middle of a chunk of a chunked upload ends with the right blob and no open session', async (t) => {
    if (!(await registry.need(t))) return;
    const layer = await makeLayer({ 'data/chunky': noise(1024 * 1024, 'chunk-reset') });
    const img = await makeImage([layer]);
    proxy.clearLog();
    let patches = 0;
    proxy.inject({ match: (r) => r.method === 'PATCH' && ++patches === 3, times: 1, fault: { kind: 'reset-after', bytes: 100_000 } });
    const result = await pushImage(client, parseReference(`${proxy.host}/faults/chunky:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs }, { chunkSize: 256 * 1024 });
    assert.equal(result.digest, img.manifestDigest);
    assert.ok(proxy.requests().some((r) => r.method === 'PATCH' && r.status === 'reset'));
    assert.deepEqual(await client.blobExists({ registry: proxy.host, repository: 'faults/chunky' }, layer.digest), { exists: true, size: layer.size });
    assert.deepEqual(await committedBlobs(reg, 'faults/chunky'), [img.config.digest, layer.digest].sort());
  });

  test('a burst of 503s is retried and the push completes', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'etc/burst': '503 burst\n' })]);
    proxy.clearLog();
    proxy.inject({ match: (r) => r.path.startsWith('/v2/faults/burst/'), times: 3, fault: { kind: 'status', status: 503 } });
    const result = await pushImage(client, parseReference(`${proxy.host}/faults/burst:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.equal(result.digest, img.manifestDigest);
    assert.equal(proxy.requests().filter((r) => r.status === 503).length, 3);
    assert.equal((await client.getManifest({ registry: proxy.host, repository: 'faults/burst' }, '1')).digest, img.manifestDigest);
  });

  test('a 429 with Retry-After is waited out and retried', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'etc/slow': 'rate limited\n' })]);
    proxy.clearLog();
    proxy.inject({
      match: (r) => r.method === 'PUT' && r.path === '/v2/faults/ratelimit/manifests/1', times: 1,
      fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' },
    });
    const result = await pushImage(client, parseReference(`${proxy.host}/faults/ratelimit:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.equal(result.digest, img.manifestDigest);
    const manifestPuts = proxy.requests().filter((r) => r.method === 'PUT' && r.path.endsWith('/manifests/1'));
    assert.deepEqual(manifestPuts.map((r) => r.status), [429, 201]);
  });

  test('a registry that keeps failing gives up after the retries with the status and its error code', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'etc/down': 'down\n' })]);
    proxy.clearLog();
    proxy.inject({ match: (r) => r.method === 'PUT' && r.path.includes('/manifests/'), times: 100, fault: { kind: 'status', status: 503 } });
    await assert.rejects(
      pushImage(client, parseReference(`${proxy.host}/faults/down:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs }),
      (e: unknown) => e instanceof RegistryHttpError && e.status === 503 && /PUT .*\/v2\/faults\/down\/manifests\/1 answered 503 \(UNAVAILABLE/.test(e.message),
    );
    assert.equal(proxy.requests().filter((r) => r.method === 'PUT' && r.path.includes('/manifests/')).length, fast.retries + 1);
    proxy.clearFaults();
  });
});
