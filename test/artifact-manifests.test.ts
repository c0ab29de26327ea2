// Artifacts (OCI 1.1: an SBOM, a signature; a manifest with `artifactType`, or one whose config
// is not an image config, such as the empty config) are read like images without the image-config
// checks: inspect shows what they are, push copies them within and between registries (as crane
// and skopeo do), and a use that needs an image (a diff, a base, an index entry) refuses them by
// name. Debian's docker-registry (no referrers API).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { runCli, tool } from './helpers/cli.js';
import { makeImage, makeLayer, startRegistry, type RunningRegistry, type TestImage } from './helpers/registry.js';
import { toolFixture } from './helpers/tools.js';
import { completeImage, ImageReadError, requireImage } from '../builder/model/complete.js';
import { ARTIFACT_CONFIG } from '../builder/model/image.js';
import { EMPTY_BLOB, EMPTY_DESCRIPTOR, referrerArtifact, type ReferrerArtifact } from '../oci/referrers.js';
import { sha256Digest } from '../oci/digest.js';
import { parseReference, pushImage, pushReferrer, RegistryClient } from '../registry-client/index.js';

let subject: TestImage;
let sbom: ReferrerArtifact;

before(async () => {
  subject = await makeImage([await makeLayer({ 'etc/artifact': 'the subject of an SBOM\n' })]);
  sbom = referrerArtifact({
    subject: { mediaType: subject.mediaType, digest: subject.manifestDigest, size: subject.manifest.length },
    artifactType: 'application/spdx+json',
    blob: { mediaType: 'application/spdx+json', bytes: Buffer.from('{"spdxVersion":"SPDX-2.3","name":"test"}') },
  });
});

/** An artifact's manifest and blobs as completeImage takes them. */
function minimal(manifest: object, blobs: Record<string, Buffer>) {
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { source: 'test', manifestBytes, openBlob: (d: string) => Readable.from([blobs[d]!]) };
}

test('an artifact with the empty config is read without the image-config checks: artifactType, no platform, its blobs with their digests', async () => {
  const blobs = Object.fromEntries(sbom.blobs.map((b) => [b.digest, b.bytes]));
  const image = await completeImage({ source: 'test', manifestBytes: sbom.manifestBytes, openBlob: (d) => Readable.from([blobs[d]!]) });
  assert.equal(image.artifactType, 'application/spdx+json');
  assert.equal(image.config, ARTIFACT_CONFIG);
  assert.deepEqual(image.configBytes, EMPTY_BLOB);
  assert.deepEqual(image.layers.map((l) => [l.digest, l.diffId, l.mediaType]), [[sbom.blobs[1]!.digest, sbom.blobs[1]!.digest, 'application/spdx+json']]);
});

test('a manifest whose config is not an image config is an artifact of that type; an image manifest with artifactType is one too', async () => {
  const chart = Buffer.from('{"name":"chart","version":"1.0.0"}');
  const helm = minimal({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: sha256Digest(chart), size: chart.length }, layers: [],
  }, { [sha256Digest(chart)]: chart });
  assert.equal((await completeImage(helm)).artifactType, 'application/vnd.cncf.helm.config.v1+json');
  const typed = minimal({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/example', config: EMPTY_DESCRIPTOR, layers: [] }, { [EMPTY_DESCRIPTOR.digest]: EMPTY_BLOB });
  assert.equal((await completeImage(typed)).artifactType, 'application/example');
  // The config blob is still checked against its descriptor.
  const wrong = minimal({ schemaVersion: 2, artifactType: 'application/example', config: EMPTY_DESCRIPTOR, layers: [] }, { [EMPTY_DESCRIPTOR.digest]: Buffer.from('[]') });
  await assert.rejects(completeImage(wrong), ImageReadError);
});

test('an image is still checked as one: a config without os, architecture and rootfs is refused', async () => {
  const config = Buffer.from('{}');
  const m = minimal({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: 2 }, layers: [],
  }, { [sha256Digest(config)]: config });
  await assert.rejects(completeImage(m), /config sha256:[0-9a-f]{64} is not valid: architecture: .*os: .*rootfs: /);
});

test('requireImage passes an image and refuses an artifact, naming the use', async () => {
  const blobs = Object.fromEntries(sbom.blobs.map((b) => [b.digest, b.bytes]));
  const artifact = await completeImage({ source: 'oci:x', manifestBytes: sbom.manifestBytes, openBlob: (d) => Readable.from([blobs[d]!]) });
  assert.throws(() => requireImage(artifact, 'fromImage'), { code: 'image-read', message: 'oci:x: is an artifact (application/spdx+json), not an image: fromImage needs an image' });
  const image = await completeImage({ source: 'oci:y', manifestBytes: subject.manifest, openBlob: (d) => Readable.from([[subject.config, ...subject.layers].find((b) => b.digest === d)!.bytes]) });
  assert.equal(requireImage(image, 'fromImage'), image);
});

// ---- On a registry ----

let reg: RunningRegistry | undefined;
let other: RunningRegistry | undefined;
const registries = toolFixture(['docker-registry', 'skopeo'], async () => {
  reg = await startRegistry();
  other = await startRegistry();
  const client = new RegistryClient({ credentials: async () => undefined });
  try {
    await pushImage(client, parseReference(`${reg.host}/art/app:1`), { manifest: { bytes: subject.manifest, mediaType: subject.mediaType }, blobs: subject.blobs });
    await pushReferrer(client, { registry: reg.host, repository: 'art/app' }, sbom);
  } finally {
    await client.close();
  }
});
after(async () => {
  await reg?.stop();
  await other?.stop();
});

test('inspect <registry>@<SBOM artifact digest> shows its type, subject, config and blobs (text and --json)', async (t) => {
  if (!(await registries.need(t))) return;
  const at = `docker://${reg!.host}/art/app@${sbom.descriptor.digest}`;
  const text = await runCli(['inspect', at]);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stdout.toString(), [
    `image:    ${at}`,
    `digest:   ${sbom.descriptor.digest} (an artifact)`,
    'artifact: application/spdx+json',
    `subject:  ${subject.manifestDigest}`,
    'refs:     -',
    'config:   application/vnd.oci.empty.v1+json, 2 B',
    'blobs:    1, 40 B',
    `    1  ${sbom.blobs[1]!.digest.slice(0, 19)}        40 B  application/spdx+json`,
    '',
  ].join('\n'));
  const json = await runCli(['inspect', at, '--json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout.toString()), {
    schemaVersion: 1, source: at, digest: sbom.descriptor.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', refs: [],
    artifactType: 'application/spdx+json',
    subject: { digest: subject.manifestDigest, mediaType: subject.mediaType, size: subject.manifest.length },
    configDigest: EMPTY_DESCRIPTOR.digest, configMediaType: 'application/vnd.oci.empty.v1+json',
    blobs: [{ digest: sbom.blobs[1]!.digest, size: 40, mediaType: 'application/spdx+json' }],
  });
});

test('push copies an artifact to another registry and within its own (blobs mounted): the same manifest bytes, as skopeo reads them', async (t) => {
  if (!(await registries.need(t))) return;
  for (const target of [`${other!.host}/copied/sbom:1`, `${reg!.host}/art/copy:1`]) {
    const r = await runCli(['push', `docker://${reg!.host}/art/app@${sbom.descriptor.digest}`, target]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `${target.replace(/:1$/, '')}@${sbom.descriptor.digest}\n`);
    const raw = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${target}`]);
    assert.equal(raw, sbom.manifestBytes.toString());
  }
});

test('diff of an artifact with an image is refused as "not an image" (exit 2), not a tar error', async (t) => {
  if (!(await registries.need(t))) return;
  const at = `docker://${reg!.host}/art/app@${sbom.descriptor.digest}`;
  const r = await runCli(['diff', at, `docker://${reg!.host}/art/app:1`]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[image-read\\]: ${at.replace(/[.]/g, '\\.')}: is an artifact \\(application/spdx\\+json\\), not an image: diff needs an image$`, 'm'));
});
