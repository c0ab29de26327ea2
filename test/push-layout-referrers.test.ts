// SBOMs attached to an image in an OCI layout (build --sbom -o app.oci) go along when the layout
// is pushed (`imgbuild push app.oci <ref>`), as build --push --sbom attaches them: through the
// registry's referrers API, else the sha256-<hex> tag (Debian's docker-registry has no API), said
// on stderr and in --json. A layout whose referrers cannot be read fails before any tag moves.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

const HELLO_DIGEST = 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580';
let work: string;
let layout: string;
let sboms: { format: string; mediaType: string; digest: string }[];
let reg: RunningRegistry | undefined;

before(async () => {
  work = await tempDir('imgbuild-push-layout-referrers-');
  layout = join(work, 'app.oci');
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '--sbom', 'spdx,cyclonedx', '-o', layout, '--json']);
  assert.equal(r.code, 0, r.stderr);
  sboms = JSON.parse(r.stdout.toString()).sboms;
});

const registry = toolFixture(['docker-registry', 'skopeo'], async () => {
  reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
});

test('push of a layout carries its SBOMs: the referrers tag lists both, stderr and --json say so', async (t) => {
  if (!(await registry.need(t))) return;
  const repo = `${reg!.host}/carried/app`;
  const r = await runCli(['push', layout, `${repo}:1`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), `${repo}@${HELLO_DIGEST}\n`);
  const tag = `sha256-${HELLO_DIGEST.slice(7)}`;
  assert.ok(r.stderr.includes(`attached 2 referrers from the source:\n  ${sboms[0]!.digest} (application/spdx+json) to ${HELLO_DIGEST} (referrers tag ${tag})\n  ${sboms[1]!.digest} (application/vnd.cyclonedx+json) to ${HELLO_DIGEST} (referrers tag ${tag})\n`), r.stderr);

  const listed = await runCli(['referrers', `docker://${repo}:1`]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(listed.stdout.toString().split('\n').filter(Boolean).map((l) => l.split(' ').slice(0, 2).join(' ')).join('\n'),
    sboms.map((s) => `${s.digest} ${s.mediaType}`).join('\n'));
  // As skopeo reads them: the index under the referrers tag, each artifact by digest with its subject.
  const index = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${repo}:${tag}`]));
  assert.deepEqual(index.manifests.map((m: { digest: string }) => m.digest), sboms.map((s) => s.digest));
  for (const s of sboms) assert.equal(JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${repo}@${s.digest}`])).subject.digest, HELLO_DIGEST);

  // Again, with --json: nothing new in the referrers index, and the document lists what was carried.
  const again = await runCli(['push', layout, `${repo}:1`, '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout.toString()).referrers, sboms.map((s) => ({ digest: s.digest, subject: HELLO_DIGEST, artifactType: s.mediaType, via: 'tag' })));
  const after = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${repo}:${tag}`]));
  assert.deepEqual(after, index, 'each artifact listed once');
});

test('push of an OCI archive carries its SBOMs too, found in its blobs (its index.json names the image alone)', async (t) => {
  if (!(await registry.need(t))) return;
  const archive = join(work, 'app.oci.tar');
  const b = await runCli(['build', join(repoRoot, 'examples/hello'), '--sbom', 'spdx,cyclonedx', '-o', archive]);
  assert.equal(b.code, 0, b.stderr);
  const repo = `${reg!.host}/carried/from-archive`;
  const r = await runCli(['push', archive, `${repo}:1`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const byDigest = [...sboms].sort((x, y) => (x.digest < y.digest ? -1 : 1));
  assert.deepEqual(JSON.parse(r.stdout.toString()).referrers, byDigest.map((s) => ({ digest: s.digest, subject: HELLO_DIGEST, artifactType: s.mediaType, via: 'tag' })));
  const index = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${repo}:sha256-${HELLO_DIGEST.slice(7)}`]));
  assert.deepEqual(index.manifests.map((m: { digest: string }) => m.digest), byDigest.map((s) => s.digest));
});

test('a layout whose referrer blob is missing fails before the push: no tag moves', async (t) => {
  if (!(await registry.need(t))) return;
  const broken = join(work, 'broken.oci');
  await cp(layout, broken, { recursive: true });
  await rm(join(broken, 'blobs/sha256', sboms[1]!.digest.slice(7)));
  const repo = `${reg!.host}/carried/broken`;
  const r = await runCli(['push', broken, `${repo}:1`]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error[image-read]: oci:${broken}: referrer manifest ${sboms[1]!.digest} is missing\n`);
  const tags = await runCli(['ls', repo]);
  assert.equal(tags.code, 1, 'the repository was never made');
  assert.match(tags.stderr, /NAME_UNKNOWN/);
});
