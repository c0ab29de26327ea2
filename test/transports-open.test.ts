// How diff, verify and fromImage name images (openImage): skopeo-style transports, plain paths,
// and registry references (read through the registry client, which is injected so that this
// needs no registry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { openImage } from '../builder/transports/open.js';
import type { RegistryClient } from '../registry-client/index.js';

const work = await tempDir('imgbuild-transports-open-');
const layout = join(work, 'base.oci');
const archive = join(work, 'base.oci.tar');
for (const [out, format] of [[layout, 'oci'], [archive, 'oci-archive']] as const) {
  const r = await runCli(['build', join(repoRoot, 'test/fixtures/repro/base'), '-o', out, '-f', format], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
}

/** A registry client that records the manifests it was asked for and serves the layout's image. */
function fakeRegistry(): { asked: string[]; registry: () => Promise<RegistryClient> } {
  const asked: string[] = [];
  const client = {
    async getManifest(repo: { registry: string; repository: string }, target: string) {
      asked.push(`${repo.registry}/${repo.repository} ${target}`);
      const image = await openImage(layout);
      return { bytes: image.manifestBytes, mediaType: image.descriptor.mediaType!, digest: image.descriptor.digest };
    },
    async getBlob(_repo: unknown, digest: string) {
      const image = await openImage(layout);
      const body = digest === image.configDescriptor.digest ? Readable.from([image.configBytes]) : image.layers.find((l) => l.digest === digest)!.open();
      return { body };
    },
  };
  return { asked, registry: async () => client as unknown as RegistryClient };
}

test('a plain path, oci:<dir> and oci:<dir>:<tag> open the same layout', async () => {
  const digests = await Promise.all([layout, `oci:${layout}`, `oci:${layout}:1`].map(async (n) => (await openImage(n)).descriptor.digest));
  assert.equal(new Set(digests).size, 1);
  assert.equal((await openImage(`oci:${layout}:1`)).source, `oci:${layout}:1`);
  assert.equal((await openImage(layout)).source, `oci:${layout}`);
});

test('oci-archive:<file> opens the archive; the wrong transport for what is there is refused', async () => {
  const a = await openImage(`oci-archive:${archive}`);
  assert.equal(a.descriptor.digest, (await openImage(layout)).descriptor.digest);
  assert.equal((await openImage(archive)).descriptor.digest, a.descriptor.digest, 'a bare archive path is told apart by content');
  await assert.rejects(openImage(`oci-archive:${layout}`), { message: `oci-archive:${layout}: is a directory, not an archive` });
  await assert.rejects(openImage(`oci:${archive}`), { message: `oci:${archive}: not a directory: an OCI layout is a directory` });
  await assert.rejects(openImage(`docker-archive:${archive}`), { message: `docker-archive:${archive}: manifest.json is missing: not a docker-archive` });
});

test('docker://<ref> and a bare registry reference go to the registry client, stripped of docker://', async () => {
  const fake = fakeRegistry();
  const digest = `sha256:${'a'.repeat(64)}`;
  const want = (await openImage(layout)).descriptor.digest;
  const a = await openImage('docker://ghcr.io/acme/app:1.0', { registry: fake.registry });
  const b = await openImage(`127.0.0.1:5000/acme/app@${digest}`, { registry: fake.registry });
  assert.deepEqual(fake.asked, ['ghcr.io/acme/app 1.0', `127.0.0.1:5000/acme/app ${digest}`]);
  assert.deepEqual([a.descriptor.digest, b.descriptor.digest], [want, want]);
  assert.equal(a.source, 'docker://ghcr.io/acme/app:1.0');
  assert.deepEqual(a.layers.map((l) => l.location), a.layers.map(() => ({ registry: 'ghcr.io', repository: 'acme/app' })));
});

test('a registry reference without a registry client, or a path that does not exist: clear errors', async () => {
  await assert.rejects(openImage('docker://ghcr.io/acme/app:1.0'), (e: Error & { hint?: string }) => {
    assert.equal(e.message, 'docker://ghcr.io/acme/app:1.0: a registry image, and no registry client was given');
    assert.match(e.hint ?? '', /registry/);
    return true;
  });
  await assert.rejects(openImage(join(work, 'missing.oci')), { message: `${join(work, 'missing.oci')}: no such file or directory` });
  // No host part: not taken for a registry reference.
  await assert.rejects(openImage('acme/app:1.0', { registry: fakeRegistry().registry }), { message: 'acme/app:1.0: no such file or directory' });
});
