// SBOMs of a build: SPDX 2.3 and CycloneDX 1.6 JSON, validated against the official schemas
// (the vendored SPDX schema with ajv; CycloneDX with the CycloneDX project's own library), and
// byte-identical from two builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildImage } from '../builder/build/build-image.js';
import { loadSpec } from '../builder/spec/load.js';
import { buildSboms, parseDrvName, storePathPurl } from '../builder/sbom/index.js';
import { repoRoot } from './helpers/paths.js';
import { cyclonedxProblems, spdxProblems } from './helpers/sbom.js';

const HELLO = '/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1';

async function helloSboms() {
  const spec = await loadSpec(join(repoRoot, 'examples/hello/image.ts'), { env: {} });
  const build = await buildImage(spec, { workers: false });
  return { build, sboms: await buildSboms(build, ['spdx', 'cyclonedx']) };
}

test('parseDrvName splits names as Nix does', () => {
  assert.deepEqual(parseDrvName('hello-2.12.1'), { name: 'hello', version: '2.12.1' });
  assert.deepEqual(parseDrvName('perl5.38.0-URI-5.21'), { name: 'perl5.38.0-URI', version: '5.21' });
  assert.deepEqual(parseDrvName('glibc-2.39-52-bin'), { name: 'glibc', version: '2.39-52-bin' });
  assert.deepEqual(parseDrvName('source'), { name: 'source', version: '' });
  assert.deepEqual(parseDrvName('nix-2.8.0pre'), { name: 'nix', version: '2.8.0pre' });
  assert.equal(storePathPurl(HELLO), 'pkg:nix/hello@2.12.1?outputhash=yd3ba7lj520fcmbr3nn39mz0ppk4hizy');
});

test('the SPDX SBOM of examples/hello is valid SPDX 2.3 and describes the closure, the files and the image', async () => {
  const { build, sboms } = await helloSboms();
  const spdx = sboms.find((s) => s.format === 'spdx')!;
  assert.deepEqual(spdxProblems(spdx.bytes), []);
  const doc = JSON.parse(spdx.bytes.toString());
  assert.equal(doc.creationInfo.created, '1970-01-01T00:00:01Z');
  assert.match(doc.documentNamespace, new RegExp(`/${build.image.descriptor.digest.slice(7)}$`));
  const image = doc.packages.find((p: { SPDXID: string }) => p.SPDXID === 'SPDXRef-Image');
  assert.equal(image.checksums[0].checksumValue, build.image.descriptor.digest.slice(7));
  assert.equal(image.primaryPackagePurpose, 'CONTAINER');
  const paths = doc.packages.filter((p: { packageFileName?: string }) => p.packageFileName).map((p: { packageFileName: string }) => p.packageFileName);
  assert.deepEqual(paths, build.closure.paths.map((p) => p.path).sort());
  const hello = doc.packages.find((p: { packageFileName?: string }) => p.packageFileName === HELLO);
  assert.equal(hello.name, 'hello');
  assert.equal(hello.versionInfo, '2.12.1');
  assert.match(hello.checksums[0].checksumValue, /^[0-9a-f]{64}$/);
  assert.deepEqual(doc.files.map((f: { fileName: string }) => f.fileName), ['./etc/group', './etc/nsswitch.conf', './etc/passwd', './etc/shadow']);
});

test('the CycloneDX SBOM of examples/hello is valid CycloneDX 1.6 for the CycloneDX library', async () => {
  const { build, sboms } = await helloSboms();
  const cdx = sboms.find((s) => s.format === 'cyclonedx')!;
  assert.equal(await cyclonedxProblems(cdx.bytes), null);
  const doc = JSON.parse(cdx.bytes.toString());
  assert.equal(doc.metadata.timestamp, '1970-01-01T00:00:01Z');
  assert.equal(doc.metadata.component.hashes[0].content, build.image.descriptor.digest.slice(7));
  const libs = doc.components.filter((c: { type: string }) => c.type === 'library');
  assert.deepEqual(libs.map((c: { 'bom-ref': string }) => c['bom-ref']), build.closure.paths.map((p) => p.path).sort());
  assert.deepEqual(doc.dependencies[0].dependsOn, [HELLO]);
});

test('two builds of one spec give byte-identical SBOMs and referrer manifests', async () => {
  const a = await helloSboms();
  const b = await helloSboms();
  for (const i of [0, 1]) {
    assert.ok(a.sboms[i]!.bytes.equals(b.sboms[i]!.bytes));
    assert.equal(a.sboms[i]!.artifact.descriptor.digest, b.sboms[i]!.artifact.descriptor.digest);
  }
  assert.equal(a.sboms[0]!.artifact.subject.digest, a.build.image.descriptor.digest);
});

test('the validators the suite uses refuse a broken document (so a pass means something)', async () => {
  const { sboms } = await helloSboms();
  const spdx = JSON.parse(sboms[0]!.bytes.toString());
  delete spdx.packages[1].downloadLocation;
  assert.ok(spdxProblems(JSON.stringify(spdx)).some((p) => p.includes('downloadLocation')));
  const cdx = JSON.parse(sboms[1]!.bytes.toString());
  cdx.components[0].hashes[0].alg = 'NAR';
  assert.notEqual(await cyclonedxProblems(JSON.stringify(cdx)), null);
});

test('an image read back without an attached SBOM gives a valid SBOM of its annotated store paths that says what is unknown', async () => {
  const { build } = await helloSboms();
  const { tempDir } = await import('./helpers/tmp.js');
  const { writeOciLayout } = await import('../builder/transports/oci-layout.js');
  const { openImage } = await import('../builder/transports/open.js');
  const { imageSbom } = await import('../builder/sbom/index.js');
  const dir = join(await tempDir('imgbuild-sbom-read-'), 'hello.oci');
  await writeOciLayout(build.image, dir);
  const image = await openImage(`oci:${dir}`);
  const spdx = await imageSbom(image, 'spdx');
  assert.deepEqual(spdxProblems(spdx.bytes), []);
  const cdx = await imageSbom(image, 'cyclonedx');
  assert.equal(await cyclonedxProblems(cdx.bytes), null);
  const doc = JSON.parse(spdx.bytes.toString());
  assert.deepEqual(doc.packages.filter((p: { packageFileName?: string }) => p.packageFileName).map((p: { packageFileName: string }) => p.packageFileName), build.closure.paths.map((p) => p.path).sort());
  assert.ok(doc.packages.every((p: { packageFileName?: string; checksums?: unknown }) => !p.packageFileName || p.checksums === undefined), 'no NAR hash is claimed');
  assert.match(doc.creationInfo.comment, /NAR hashes and references are unknown/);
  assert.equal(doc.relationships.filter((r: { relationshipType: string }) => r.relationshipType === 'DEPENDS_ON').length, 0);
  assert.equal(doc.files.length, 4);
});
