// How diff and verify name images: skopeo-style transports, plain paths, and registry references
// (handed to the registry opener, which is injected so that this needs no registry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { openImageSource, type ImageSource } from '../builder/repro/image-source.js';

const work = await tempDir('imgbuild-repro-source-');
const layout = join(work, 'base.oci');
const archive = join(work, 'base.oci.tar');
for (const [out, format] of [[layout, 'oci'], [archive, 'oci-archive']] as const) {
  const r = await runCli(['build', join(repoRoot, 'test/fixtures/repro/base'), '-o', out, '-f', format]);
  assert.equal(r.code, 0, r.stderr);
}

/** A remote opener that records what it was asked for. */
function fakeRemote(): { asked: string[]; open: (ref: string) => Promise<ImageSource> } {
  const asked: string[] = [];
  return { asked, open: async (ref) => (asked.push(ref), openImageSource(layout)) };
}

test('a plain path, oci:<dir> and oci:<dir>:<tag> open the same layout', async () => {
  const digests = await Promise.all([layout, `oci:${layout}`, `oci:${layout}:1`].map(async (n) => (await openImageSource(n)).manifestDigest));
  assert.equal(new Set(digests).size, 1);
  assert.equal((await openImageSource(`oci:${layout}:1`)).source, `oci:${layout}`);
});

test('oci-archive:<file> opens the archive; the wrong transport for what is there is refused', async () => {
  const a = await openImageSource(`oci-archive:${archive}`);
  assert.equal(a.manifestDigest, (await openImageSource(layout)).manifestDigest);
  await assert.rejects(openImageSource(`oci-archive:${layout}`), { message: `oci-archive:${layout}: this is an OCI layout, not an OCI archive` });
  await assert.rejects(openImageSource(`docker-archive:${archive}`), { message: `docker-archive:${archive}: this is an OCI archive, not a docker-archive` });
});

test('docker://<ref> and a bare registry reference go to the registry opener, stripped of docker://', async () => {
  const remote = fakeRemote();
  const digest = `sha256:${'a'.repeat(64)}`;
  await openImageSource('docker://ghcr.io/acme/app:1.0', { remote: remote.open });
  await openImageSource(`127.0.0.1:5000/acme/app@${digest}`, { remote: remote.open });
  assert.deepEqual(remote.asked, ['ghcr.io/acme/app:1.0', `127.0.0.1:5000/acme/app@${digest}`]);
});

test('a registry reference without a registry opener, or a path that does not exist: clear errors', async () => {
  await assert.rejects(openImageSource('docker://ghcr.io/acme/app:1.0'), (e: Error & { hint?: string }) => {
    assert.equal(e.message, 'docker://ghcr.io/acme/app:1.0: registry images cannot be opened here yet');
    assert.match(e.hint ?? '', /skopeo copy docker:\/\/<ref> oci:<dir>/);
    return true;
  });
  await assert.rejects(openImageSource(join(work, 'missing.oci')), { message: `${join(work, 'missing.oci')}: no such file or directory` });
  // No host part: not taken for a registry reference.
  await assert.rejects(openImageSource('acme/app:1.0', { remote: fakeRemote().open }), { message: 'acme/app:1.0: no such file or directory' });
});
