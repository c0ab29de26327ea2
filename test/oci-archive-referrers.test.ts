// An OCI archive built with --sbom names the image alone in its index.json, as `podman load` and
// skopeo's `oci-archive:<file>` need (they take the only entry, and refuse a second: "more than
// one image in oci, choose an image"; podman load cannot name a tag). The SBOMs are in blobs/
// beside the image, each naming it as its subject, and imgbuild finds them there: `referrers`,
// `sbom`, and a push carrying them (push-layout-referrers.test.ts). An archive written the older
// way (the referrers index named `sha256-<hex>` in index.json) is still read.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const HELLO_DIGEST = 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580';
let work: string;
let env: NodeJS.ProcessEnv;
let archive: string;
let built: { digest: string; sboms: { format: string; mediaType: string; digest: string; subject: string }[] };

before(async () => {
  work = await tempDir('imgbuild-archive-referrers-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  archive = join(work, 'hello.oci.tar');
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '--sbom', 'spdx,cyclonedx', '-o', archive, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  built = JSON.parse(r.stdout.toString());
});

async function cli(args: string[]) {
  const r = await runCli(args, { env });
  assert.equal(r.code, 0, `imgbuild ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.toString();
}

test('an OCI archive built with --sbom names the image alone in index.json; each SBOM is in blobs/ with the image as its subject', async () => {
  assert.equal(built.digest, HELLO_DIGEST, 'attaching SBOMs does not change the image');
  const index = JSON.parse(await tool('tar', ['-xOf', archive, 'index.json']));
  assert.deepEqual(index.manifests.map((m: { digest: string }) => m.digest), [HELLO_DIGEST]);
  for (const s of built.sboms) {
    const manifest = JSON.parse(await tool('tar', ['-xOf', archive, `blobs/sha256/${s.digest.slice(7)}`]));
    assert.equal(manifest.subject.digest, HELLO_DIGEST);
    assert.equal(manifest.artifactType, s.mediaType);
  }
});

test('the build says how to load the archive (podman load, skopeo) and that the SBOMs stay in it', async () => {
  const again = join(work, 'again.oci.tar');
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '--sbom', 'spdx,cyclonedx', '-o', again], { env });
  assert.equal(r.code, 0, r.stderr);
  const stderr = r.stderr;
  assert.match(stderr, /^attached 2 SBOMs: imgbuild referrers oci-archive:\S+again\.oci\.tar:2\.12\.1$/m);
  assert.ok(stderr.includes(`\nload it: podman load -i ${again}   or   skopeo copy oci-archive:${again} <destination> (the SBOMs stay in the archive: podman and skopeo copy the image alone)\n`), stderr);
});

test('imgbuild referrers and sbom find the SBOMs in the archive, with or without its tag, as in a layout', async () => {
  const listed = (json: string) => JSON.parse(json) as { via: string; subject: string; referrers: { digest: string; artifactType: string }[] };
  const bare = listed(await cli(['referrers', `oci-archive:${archive}`, '--json']));
  const tagged = listed(await cli(['referrers', `oci-archive:${archive}:2.12.1`, '--json']));
  assert.deepEqual(tagged.referrers, bare.referrers);
  assert.equal(bare.subject, HELLO_DIGEST);
  assert.equal(bare.via, 'layout');
  // In digest order (the archive keeps no list of them).
  const expected = built.sboms.map((s) => ({ digest: s.digest, artifactType: s.mediaType })).sort((a, b) => (a.digest < b.digest ? -1 : 1));
  assert.deepEqual(bare.referrers.map((r) => ({ digest: r.digest, artifactType: r.artifactType })), expected);
  // The same descriptors as a layout's referrers index lists.
  const layout = join(work, 'hello.oci');
  await cli(['build', join(repoRoot, 'examples/hello'), '--sbom', 'spdx,cyclonedx', '-o', layout]);
  const fromLayout = listed(await cli(['referrers', `oci:${layout}:2.12.1`, '--json']));
  assert.deepEqual([...bare.referrers].sort((a, b) => (a.digest < b.digest ? -1 : 1)), [...fromLayout.referrers].sort((a, b) => (a.digest < b.digest ? -1 : 1)));
  // The attached SBOM, byte for byte: the one `imgbuild sbom <spec>` prints.
  assert.equal(await cli(['sbom', archive, '--format', 'cyclonedx']), await cli(['sbom', join(repoRoot, 'examples/hello'), '--format', 'cyclonedx']));
});

test('an archive whose index.json names the referrers index (sha256-<hex>, as imgbuild wrote them before) is still read', async () => {
  const layout = join(work, 'old-style.oci');
  await cli(['build', join(repoRoot, 'examples/hello'), '--sbom', 'spdx', '-o', layout]);
  const old = join(work, 'old-style.oci.tar');
  await tool('tar', ['-cf', old, '-C', layout, 'blobs', 'index.json', 'oci-layout']);
  assert.equal(JSON.parse(await tool('tar', ['-xOf', old, 'index.json'])).manifests.length, 2);
  const listed = JSON.parse(await cli(['referrers', `oci-archive:${old}:2.12.1`, '--json']));
  assert.deepEqual(listed.referrers.map((r: { artifactType: string }) => r.artifactType), ['application/spdx+json']);
});

test('a multi-platform archive: index.json names the index alone, and each platform image has its SBOM', async () => {
  const spec = join(work, 'multi.json');
  await writeFile(spec, JSON.stringify({
    name: 'multi/hello',
    tag: '1',
    store: { dir: join(repoRoot, 'examples/hello/store') },
    platforms: [
      { architecture: 'amd64', contents: ['/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1'] },
      { architecture: 'arm64', variant: 'v8', contents: ['/nix/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0'] },
    ],
  }));
  const out = join(work, 'multi.oci.tar');
  const multi = JSON.parse(await cli(['build', spec, '--sbom', 'spdx', '-o', out, '--json'])) as { digest: string; sboms: { platform: string; digest: string; subject: string }[] };
  assert.deepEqual(JSON.parse(await tool('tar', ['-xOf', out, 'index.json'])).manifests.map((m: { digest: string }) => m.digest), [multi.digest]);
  for (const s of multi.sboms) {
    const listed = JSON.parse(await cli(['referrers', out, '--platform', s.platform, '--json']));
    assert.equal(listed.subject, s.subject, s.platform);
    assert.deepEqual(listed.referrers.map((r: { digest: string }) => r.digest), [s.digest], s.platform);
  }
});
