import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import { RegistryClient, blobPath, parseReference, pullImage, pushImage, type PushBlob } from '../registry-client/index.js';
import { toolFixture, toolPath } from './helpers/tools.js';
import { blobOf, makeImage, makeLayer, noise, startProxiedRegistry, stopProxiedRegistry, type RunningRegistry } from './helpers/registry.js';
import type { FaultProxy } from './helpers/fault-proxy.js';


describe('pull from a real registry (docker-registry 2.8)', () => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  let client: RegistryClient;
  let tmp: string;

  const registry = toolFixture(['docker-registry'], async () => {
    ({ reg, proxy, client, tmp } = await startProxiedRegistry('imgbuild-pull-'));
  });
  after(() => stopProxiedRegistry({ reg, proxy, client, tmp }));

  test('an index pushed with its children resolves to the arm64 image; blobs land verified in <dir>/sha256/<hex>; a second pull fetches nothing', async (t) => {
    if (!(await registry.need(t))) return;
    const amd = await makeImage([await makeLayer({ 'arch': 'amd64\n' })], { architecture: 'amd64' });
    const arm = await makeImage([await makeLayer({ 'arch': 'arm64\n' }), await makeLayer({ 'extra': 'arm64 only\n' })], { architecture: 'arm64' });
    const entry = (img: typeof amd, architecture: string) => ({ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifest.length, platform: { architecture, os: 'linux' } });
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry(amd, 'amd64'), entry(arm, 'arm64')] }));
    const pushed = await pushImage(client, parseReference(`${proxy.host}/multi/app:1`), {
      manifest: { bytes: index, mediaType: 'application/vnd.oci.image.index.v1+json' },
      childManifests: [{ bytes: amd.manifest, mediaType: amd.mediaType }, { bytes: arm.manifest, mediaType: arm.mediaType }],
      blobs: [...amd.blobs, ...arm.blobs],
    });
    assert.equal(pushed.digest, blobOf(index).digest);

    const blobDir = join(tmp, 'multi');
    const pulled = await pullImage(client, parseReference(`${proxy.host}/multi/app:1`), { blobDir, platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(pulled.digest, arm.manifestDigest);
    assert.equal(pulled.index?.digest, blobOf(index).digest);
    assert.equal(pulled.config.architecture, 'arm64');
    assert.deepEqual(pulled.layers.map((l) => l.digest), arm.layers.map((l) => l.digest));
    assert.deepEqual([pulled.downloaded, pulled.cached], [3, 0]);
    for (const b of [...arm.layers, arm.config]) assert.deepEqual(await readFile(blobPath(blobDir, b.digest)), b.bytes);
    assert.deepEqual(await readFile(blobPath(blobDir, arm.manifestDigest)), arm.manifest);
    assert.deepEqual((await readdir(join(blobDir, 'sha256'))).sort(), [arm.manifestDigest, blobOf(index).digest, arm.config.digest, ...arm.layers.map((l) => l.digest)].map((d) => d.slice(7)).sort());

    proxy.clearLog();
    const again = await pullImage(client, parseReference(`${proxy.host}/multi/app:1`), { blobDir, platform: { os: 'linux', architecture: 'arm64' } });
    assert.deepEqual([again.downloaded, again.cached], [0, 3]);
    assert.ok(!proxy.requests().some((r) => r.path.includes('/blobs/')), 'no blob requested');
  });

  test('a connection cut in the middle of a layer download is retried; the file is whole and no temp file is left', async (t) => {
    if (!(await registry.need(t))) return;
    const layer = await makeLayer({ 'big': noise(2 * 1024 * 1024, 'pull-reset') });
    const img = await makeImage([layer]);
    await pushImage(client, parseReference(`${proxy.host}/pull/reset:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    proxy.clearLog();
    proxy.inject({ match: (r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`), times: 1, fault: { kind: 'reset-response-after', bytes: 500_000 } });
    const blobDir = join(tmp, 'reset');
    const pulled = await pullImage(client, parseReference(`${proxy.host}/pull/reset:1`), { blobDir });
    assert.deepEqual(pulled.layers.map((l) => l.digest), [layer.digest]);
    assert.deepEqual(proxy.requests().filter((r) => r.path.endsWith(`/blobs/${layer.digest}`)).map((r) => r.status), ['reset', 200]);
    assert.deepEqual(await readFile(blobPath(blobDir, layer.digest)), layer.bytes);
    assert.deepEqual((await readdir(join(blobDir, 'sha256'))).filter((f) => f.includes('.tmp')), []);
  });

  test('an image built on a pulled base reuses its layers unchanged (mounted, not re-uploaded) and runs under runc', async (t) => {
    if (!(await registry.need(t, 'skopeo', 'umoci', 'runc', 'busybox'))) return;
    // The base: a static busybox in /bin, pushed like any image.
    const busybox = await readFile(toolPath('busybox'));
    const base = await makeImage([await makeLayer({ 'bin/busybox': busybox })], { env: ['PATH=/bin', 'FROM_BASE=1'] });
    await pushImage(client, parseReference(`${proxy.host}/base/busybox:1`), { manifest: { bytes: base.manifest, mediaType: base.mediaType }, blobs: base.blobs });

    // Pull it as a builder would for `fromImage`, then add a layer and a config on top.
    const blobDir = join(tmp, 'derived-cache');
    const pulled = await pullImage(client, parseReference(`${proxy.host}/base/busybox:1`), { blobDir });
    const app = await makeLayer({ 'etc/message': 'hello from an image built on a pulled base\n' });
    const config = blobOf(Buffer.from(JSON.stringify({
      ...pulled.config,
      config: { ...pulled.config.config, Cmd: ['/bin/busybox', 'cat', '/etc/message'] },
      rootfs: { type: 'layers', diff_ids: [...pulled.config.rootfs.diff_ids, app.diffId] },
    })));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: [...pulled.layers, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: app.digest, size: app.size }],
    }));
    // Base layers go from the pull cache, unchanged, with the base repository as mount source.
    const blobs: PushBlob[] = [
      ...pulled.layers.map((l) => ({ digest: l.digest as Digest, size: l.size, path: blobPath(blobDir, l.digest as Digest), mountFrom: ['base/busybox'] })),
      ...[config, app].map((b) => ({ digest: b.digest, size: b.size, open: () => Readable.from([b.bytes]) })),
    ];
    const pushed = await pushImage(client, parseReference(`${proxy.host}/app/derived:1`), { manifest: { bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' }, blobs });
    assert.deepEqual({ mounted: pushed.mounted, uploaded: pushed.uploaded }, { mounted: 1, uploaded: 2 });

    const layout = join(tmp, 'derived-oci');
    execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/app/derived:1`, `oci:${layout}:1`], { stdio: 'ignore' });
    const bundle = join(tmp, 'bundle');
    execFileSync('umoci', ['unpack', '--image', `${layout}:1`, bundle], { stdio: 'ignore' });
    const runtime = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { terminal: boolean; args: string[]; env: string[] } };
    assert.deepEqual(runtime.process.args, ['/bin/busybox', 'cat', '/etc/message']);
    assert.ok(runtime.process.env.includes('FROM_BASE=1'), 'the base config was inherited');
    runtime.process.terminal = false;
    await writeFile(join(bundle, 'config.json'), JSON.stringify(runtime));
    const id = `imgbuild-registry-test-${process.pid}`;
    try {
      const out = execFileSync('runc', ['run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 }).toString();
      assert.equal(out, 'hello from an image built on a pulled base\n');
    } finally {
      try { execFileSync('runc', ['delete', '--force', id], { stdio: 'ignore' }); } catch { /* already gone */ }
    }
  });
});
