// An OCI layout holding several images (skopeo copies into one layout under several tags): with
// no tag, every command refuses it and names the tags, as skopeo does, instead of taking the
// layout's own index.json for a multi-platform image (push sent it as one). Only an index.json
// that is a platform index (every entry has a platform, no two the same) is read as one.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { runCli } from './helpers/cli.js';
import { makeImage, makeLayer, type TestImage } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { openArtifact } from '../builder/transports/open.js';

let work: string;
let amd: TestImage;
let arm: TestImage;

before(async () => {
  work = await tempDir('imgbuild-layout-several-');
  amd = await makeImage([await makeLayer({ 'etc/which': 'amd64\n' })], { architecture: 'amd64' });
  arm = await makeImage([await makeLayer({ 'etc/which': 'arm64\n' })], { architecture: 'arm64' });
});

type Entry = { image: TestImage; tag?: string; platform?: { os: string; architecture: string } };

/** A layout holding each entry's image (its blobs once), index.json listing the entries in order, plus `extra` entries. */
async function layout(name: string, entries: Entry[], extra: object[] = []): Promise<string> {
  const dir = join(work, name);
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  for (const { image } of entries) {
    for (const b of [image.config, ...image.layers, { digest: image.manifestDigest, bytes: image.manifest }]) {
      await writeFile(join(dir, 'blobs/sha256', b.digest.slice('sha256:'.length)), b.bytes);
    }
  }
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [
      ...entries.map(({ image, tag, platform }) => ({
        mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length,
        ...(platform ? { platform } : {}), ...(tag ? { annotations: { 'org.opencontainers.image.ref.name': tag } } : {}),
      })),
      ...extra,
    ],
  }));
  return dir;
}

test('a layout of two tagged images, no tag given: push, inspect, diff, sbom and referrers refuse it naming the tags, and push sends nothing', async () => {
  const dir = await layout('two-tags.oci', [{ image: amd, tag: '2.12.1' }, { image: arm, tag: 'armtag' }]);
  const message = `error[image-read]: oci:${dir}: the layout holds 2 images (2.12.1, armtag); name one: oci:${dir}:<tag>\n`;
  const commands: [string[], number][] = [
    // A target nothing listens on: the refusal comes before any connection.
    [['push', dir, '127.0.0.1:9/app:1'], 1],
    [['inspect', `oci:${dir}`], 1],
    [['diff', dir, `oci:${dir}:armtag`], 2],
    [['sbom', `oci:${dir}`], 1],
    [['referrers', `oci:${dir}`], 1],
  ];
  for (const [args, code] of commands) {
    const r = await runCli(args);
    assert.equal(r.code, code, `${args[0]}: ${r.stderr}`);
    assert.equal(r.stderr, message, args[0]);
    assert.equal(r.stdout.toString(), '', args[0]);
  }
});

test('a tag names one image of such a layout', async () => {
  const dir = await layout('two-tags-named.oci', [{ image: amd, tag: '2.12.1' }, { image: arm, tag: 'armtag' }]);
  const r = await runCli(['inspect', `oci:${dir}:armtag`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout.toString()) as { digest: string; platform: string; refs: string[] };
  assert.deepEqual([doc.digest, doc.platform, doc.refs], [arm.manifestDigest, 'linux/arm64', ['armtag']]);
});

test('untagged images are named by digest, and the hint says only a tagged one can be named', async () => {
  const dir = await layout('untagged.oci', [{ image: amd, tag: 'v1' }, { image: arm }]);
  const r = await runCli(['inspect', dir]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `error[image-read]: oci:${dir}: the layout holds 2 images (v1, ${arm.manifestDigest.slice(0, 19)}… (untagged)); name one: oci:${dir}:<tag>\n`
    + 'hint: only a tagged image can be named (org.opencontainers.image.ref.name in index.json)\n');
});

test('an index.json whose entries each name a different platform is one multi-platform image; an SBOM\'s referrers entry is not one of its platforms', async () => {
  const referrersIndex = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}');
  const referrersEntry = {
    mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${createHash('sha256').update(referrersIndex).digest('hex')}`, size: referrersIndex.length,
    annotations: { 'org.opencontainers.image.ref.name': `sha256-${amd.manifestDigest.slice(7)}` },
  };
  const dir = await layout('platforms.oci', [
    { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
    { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
  ], [referrersEntry]);
  await writeFile(join(dir, 'blobs/sha256', referrersEntry.digest.slice(7)), referrersIndex);
  const artifact = await openArtifact(dir);
  assert.equal(artifact.kind, 'index');
  if (artifact.kind !== 'index') return;
  assert.deepEqual(artifact.manifests.map((m) => [m.descriptor.digest, m.platform?.architecture]), [[amd.manifestDigest, 'amd64'], [arm.manifestDigest, 'arm64']]);
  assert.deepEqual(JSON.parse(artifact.bytes.toString()).manifests.map((m: { digest: string }) => m.digest), [amd.manifestDigest, arm.manifestDigest]);
});

test('entries with platforms, two of them the same, are several images, not one multi-platform image', async () => {
  const dir = await layout('same-platform.oci', [
    { image: amd, tag: 'a', platform: { os: 'linux', architecture: 'amd64' } },
    { image: arm, tag: 'b', platform: { os: 'linux', architecture: 'amd64' } },
  ]);
  await assert.rejects(openArtifact(dir), { message: `oci:${dir}: the layout holds 2 images (a, b); name one: oci:${dir}:<tag>` });
});
