// diff reports annotation and SBOM (package) differences; verify --against --with-referrers checks
// the attached SBOMs; a multi-platform build attaches an SBOM to each platform's image and puts
// the spec's annotations on the index.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { needTool } from './helpers/tools.js';

let work: string;
let store: string;

async function cli(args: string[], expectCode = 0) {
  const r = await runCli(args, { env: { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') } });
  assert.equal(r.code, expectCode, `imgbuild ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** A directory-store path made with `imgbuild store add`. */
async function add(name: string, text: string): Promise<string> {
  const src = join(work, 'src', name);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'README'), text);
  return (await cli(['store', 'add', src, '--store', store])).stdout.toString().trim();
}

function spec(file: string, value: Record<string, unknown>): string {
  const path = join(work, file);
  writeFileSync(path, JSON.stringify({ architecture: 'amd64', store: { dir: store }, ...value }));
  return path;
}

before(async () => {
  work = await tempDir('imgbuild-sbom-diff-');
  store = join(work, 'store');
});

test('diff reports the annotations and the packages that differ (an attached SBOM on one side, layer annotations on the other)', async () => {
  const foo1 = await add('foo-1.0', 'one\n');
  const foo2 = await add('foo-1.1', 'two\n');
  const bar = await add('bar-2', 'bar\n');
  const a = spec('a.json', { name: 'diff/app', tag: 'a', contents: [foo1], annotations: { 'com.example.stage': 'test' } });
  const b = spec('b.json', { name: 'diff/app', tag: 'b', contents: [foo2, bar], annotations: { 'com.example.stage': 'prod' } });
  await cli(['build', a, '--sbom', 'spdx', '-o', join(work, 'a.oci')]);
  await cli(['build', b, '-o', join(work, 'b.oci')]);
  const r = await cli(['diff', `oci:${join(work, 'a.oci')}:a`, `oci:${join(work, 'b.oci')}:b`, '--json'], 1);
  const d = JSON.parse(r.stdout.toString());
  assert.deepEqual(d.manifest.filter((c: { path: string }) => c.path.startsWith('annotations')), [{ path: 'annotations.com.example.stage', a: 'test', b: 'prod' }]);
  assert.deepEqual(d.sbom.from, { a: 'attached', b: 'image' });
  assert.deepEqual(d.sbom.changed.map((c: { name: string; a: { version: string }; b: { version: string } }) => [c.name, c.a.version, c.b.version]), [['foo', '1.0', '1.1']]);
  assert.deepEqual(d.sbom.added.map((p: { path: string }) => p.path), [bar]);
  assert.deepEqual(d.sbom.removed, []);
  const text = (await cli(['diff', `oci:${join(work, 'a.oci')}:a`, `oci:${join(work, 'b.oci')}:b`], 1)).stdout.toString();
  assert.match(text, /annotations\.com\.example\.stage: "test" → "prod"/);
  assert.match(text, /~ foo: 1\.0 → 1\.1/);
  assert.match(text, /\+ bar 2 /);
});

test('verify --against --with-referrers: the same SBOMs pass; an image with none attached fails', async () => {
  const hello = join(repoRoot, 'examples/hello');
  const withSbom = join(work, 'hello-sbom.oci');
  const without = join(work, 'hello-plain.oci');
  await cli(['build', hello, '--sbom', 'spdx,cyclonedx', '-o', withSbom]);
  await cli(['build', hello, '-o', without]);
  const ok = JSON.parse((await cli(['verify', hello, '--against', `oci:${withSbom}:2.12.1`, '--with-referrers', '--json'])).stdout.toString());
  assert.equal(ok.reproducible, true);
  assert.equal(ok.referrers.same, true);
  assert.deepEqual(ok.referrers.checked.map((c: { artifactType: string; digest: string; rebuilt: string }) => [c.artifactType, c.digest === c.rebuilt]), [['application/spdx+json', true], ['application/vnd.cyclonedx+json', true]]);
  const bad = JSON.parse((await cli(['verify', hello, '--against', `oci:${without}:2.12.1`, '--with-referrers', '--json'], 1)).stdout.toString());
  assert.equal(bad.reproducible, true);
  assert.equal(bad.referrers.same, false);
  assert.match(bad.referrers.notes[0], /has no SBOM attached/);
});

test('a multi-platform build attaches an SBOM to each platform image and annotates the index', async (t) => {
  if (!needTool(t, 'skopeo')) return;
  const multi = spec('multi.json', {
    name: 'multi/app',
    tag: '1',
    architecture: undefined,
    platforms: [{ architecture: 'amd64' }, { architecture: 'arm64' }],
    files: [{ path: '/etc/motd', content: 'hi\n' }],
    annotations: { 'org.opencontainers.image.title': 'multi' },
  });
  const out = join(work, 'multi.oci');
  const built = JSON.parse((await cli(['build', multi, '--sbom', 'spdx', '-o', out, '--json'])).stdout.toString());
  assert.deepEqual(built.sboms.map((s: { platform: string; subject: string }) => [s.platform, s.subject]), built.platforms.map((p: { platform: string; digest: string }) => [p.platform, p.digest]));
  const index = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${out}:1`]));
  assert.deepEqual(index.annotations, { 'org.opencontainers.image.created': '1970-01-01T00:00:01Z', 'org.opencontainers.image.title': 'multi' });
  for (const p of built.platforms) {
    const listed = JSON.parse((await cli(['referrers', `oci:${out}:1`, '--platform', p.platform, '--json'])).stdout.toString());
    assert.deepEqual(listed.referrers.map((r: { artifactType: string }) => r.artifactType), ['application/spdx+json']);
    const manifest = JSON.parse((await cli(['manifest', `oci:${out}:1`, '--platform', p.platform])).stdout.toString());
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.annotations['org.opencontainers.image.title'], 'multi');
    const sbom = JSON.parse((await cli(['sbom', `oci:${out}:1`, '--platform', p.platform])).stdout.toString());
    assert.match(sbom.name, new RegExp(`\\(${p.platform}\\)$`));
  }
});

test('bad --sbom, --label, --annotation and --ci-metadata outside CI are usage errors naming the flag, before any build', async () => {
  const hello = join(repoRoot, 'examples/hello');
  const out = join(work, 'never.oci');
  for (const [args, message] of [
    [['--sbom', 'spdx,xml'], /--sbom "xml" is not an SBOM format/],
    [['--label', 'team'], /--label "team" is not key=value/],
    [['--annotation', '=x'], /--annotation "=x" is not key=value/],
    [['--ci-metadata'], /--ci-metadata: no CI environment/],
  ] as const) {
    const r = await cli(['build', hello, '-o', out, ...args, '--json'], 2);
    const doc = JSON.parse(r.stdout.toString());
    assert.equal(doc.error.code, 'usage');
    assert.match(doc.error.message, message);
    assert.ok(doc.error.hint);
  }
  assert.equal(await import('node:fs').then((fs) => fs.existsSync(out)), false);
});

test('an OCI layout with SBOMs attached: skopeo reads the image by its tag and the referrers index by sha256-<hex>; umoci lists both', async (t) => {
  if (!needTool(t, 'skopeo', 'umoci')) return;
  const out = join(work, 'hello-referrers.oci');
  const built = JSON.parse((await cli(['build', join(repoRoot, 'examples/hello'), '--sbom', 'spdx,cyclonedx', '-o', out, '--json'])).stdout.toString());
  const info = JSON.parse(await tool('skopeo', ['inspect', `oci:${out}:2.12.1`]));
  assert.equal(info.Digest, built.digest);
  const tag = `sha256-${built.digest.slice(7)}`;
  const index = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${out}:${tag}`]));
  assert.deepEqual(index.manifests.map((m: { digest: string }) => m.digest), built.sboms.map((s: { digest: string }) => s.digest));
  const artifact = JSON.parse(readFileSync(join(out, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  assert.equal(artifact.subject.digest, built.digest);
  assert.deepEqual((await tool('umoci', ['ls', '--layout', out])).trim().split('\n').sort(), ['2.12.1', tag].sort());
});

test('an OCI archive with SBOMs attached: skopeo reads and copies the image without a tag (index.json names it alone)', async (t) => {
  if (!needTool(t, 'skopeo')) return;
  const out = join(work, 'hello-referrers.oci.tar');
  const built = JSON.parse((await cli(['build', join(repoRoot, 'examples/hello'), '--sbom', 'spdx,cyclonedx', '-o', out, '--json'])).stdout.toString());
  assert.equal(JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${out}`])).Digest, built.digest);
  assert.equal(JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${out}:2.12.1`])).Digest, built.digest);
  const copy = join(work, 'hello-from-archive.oci');
  await tool('skopeo', ['copy', '--quiet', `oci-archive:${out}`, `oci:${copy}:1`]);
  assert.equal(JSON.parse(await tool('skopeo', ['inspect', `oci:${copy}:1`])).Digest, built.digest);
});

test('build -o <docker-archive> --sbom warns that no SBOM was attached, and neither says one was nor lists one in --json', async () => {
  const out = join(work, 'hello.docker.tar');
  const r = await cli(['build', join(repoRoot, 'examples/hello'), '-o', out, '--sbom', 'spdx', '--json']);
  const doc = JSON.parse(r.stdout.toString());
  assert.equal(doc.format, 'docker-archive');
  assert.equal('sboms' in doc, false);
  assert.match(r.stderr, /^warning: no SBOM was attached: a docker-archive holds no referrers \(to attach it, write -f oci or -f oci-archive, or --push; imgbuild sbom \S+ prints it\)$/m);
  assert.doesNotMatch(r.stderr, /attached \d+ SBOM|imgbuild referrers/);
  const plain = await cli(['build', join(repoRoot, 'examples/hello'), '-o', out, '--sbom', 'spdx,cyclonedx']);
  assert.match(plain.stderr, /^warning: no SBOM was attached: .*\(to attach them, .*; imgbuild sbom \S+ and imgbuild sbom \S+ --format cyclonedx print them\)$/m);
  assert.doesNotMatch(plain.stderr, /attached \d+ SBOM|imgbuild referrers/);
  assert.match(plain.stdout.toString(), /^sha256:[0-9a-f]{64}\n$/);
});
