// SBOMs attached as OCI 1.1 referrers on Debian's docker-registry (distribution 2.8, no referrers
// API: the referrers tag schema), read back by skopeo and by imgbuild; labels and annotations as
// skopeo shows them; the CI metadata of a simulated GitHub Actions run.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { registryAccessLog, startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

let reg: RunningRegistry | undefined;
let work: string;
const HELLO = join(repoRoot, 'examples/hello');

const registry = toolFixture(['docker-registry', 'skopeo'], async () => {
  reg = await startRegistry();
  work = await tempDir('imgbuild-sbom-registry-');
});

after(async () => {
  await reg?.stop();
});

async function cli(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = await runCli(args, { env });
  assert.equal(r.code, 0, `imgbuild ${args.join(' ')}: ${r.stderr}`);
  return r;
}

const skopeoRaw = async (ref: string) => JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]));

test('build --sbom --push attaches both SBOMs under the referrers tag; a second push adds no entry; imgbuild sbom reads them back byte for byte', async (t) => {
  if (!(await registry.need(t))) return;
  const repo = `${reg!.host}/sbom/hello`;
  const built = JSON.parse((await cli(['build', HELLO, '--sbom', 'spdx,cyclonedx', '--push', `${repo}:1`, '--json'])).stdout.toString());
  const subject = built.digest as string;
  assert.equal(subject, 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580', 'an SBOM changes nothing of the image');
  assert.deepEqual(built.sboms.map((s: { format: string; subject: string }) => [s.format, s.subject]), [['spdx', subject], ['cyclonedx', subject]]);

  const tag = `sha256-${subject.slice(7)}`;
  const index = await skopeoRaw(`${repo}:${tag}`);
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(index.manifests.map((m: { digest: string; artifactType: string }) => [m.artifactType, m.digest]), built.sboms.map((s: { mediaType: string; digest: string }) => [s.mediaType, s.digest]));
  for (const entry of index.manifests) {
    const artifact = await skopeoRaw(`${repo}@${entry.digest}`);
    assert.equal(artifact.artifactType, entry.artifactType);
    assert.equal(artifact.subject.digest, subject);
    assert.equal(artifact.config.mediaType, 'application/vnd.oci.empty.v1+json');
    assert.equal(artifact.layers.length, 1);
  }

  // A second push of the same build: the index is read, found complete, and not put again.
  const before = registryAccessLog(reg!.log()).length;
  await cli(['build', HELLO, '--sbom', 'spdx,cyclonedx', '--push', `${repo}:1`]);
  assert.deepEqual((await skopeoRaw(`${repo}:${tag}`)).manifests, index.manifests);
  const puts = registryAccessLog(reg!.log()).slice(before).filter((r) => r.method === 'PUT' && r.path.endsWith(`/manifests/${tag}`));
  assert.deepEqual(puts, []);

  // Read back: exactly the bytes `imgbuild sbom <spec>` makes, and what the referrers list names.
  for (const format of ['spdx', 'cyclonedx']) {
    const fromSpec = (await cli(['sbom', HELLO, '--format', format])).stdout;
    const fromRegistry = (await cli(['sbom', `docker://${repo}:1`, '--format', format])).stdout;
    assert.ok(fromRegistry.equals(fromSpec), `${format}: the attached SBOM, byte for byte`);
    assert.equal(fromRegistry.length, built.sboms.find((s: { format: string }) => s.format === format).size);
  }
  const listed = JSON.parse((await cli(['referrers', `docker://${repo}:1`, '--json'])).stdout.toString());
  assert.equal(listed.via, 'tag');
  assert.deepEqual(listed.referrers.map((r: { digest: string }) => r.digest), index.manifests.map((m: { digest: string }) => m.digest));
});

test('skopeo inspect shows the --labels, skopeo inspect --raw the annotations (with the OCI standard keys filled)', async (t) => {
  if (!(await registry.need(t))) return;
  const repo = `${reg!.host}/sbom/labelled`;
  await cli(['build', HELLO, '--label', 'com.example.team=infra', '--label', 'org.opencontainers.image.title=hello-labelled', '--annotation', 'com.example.ticket=OPS-7', '--push', `${repo}:1`]);
  const info = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${repo}:1`]));
  assert.deepEqual(info.Labels, { 'com.example.team': 'infra', 'org.opencontainers.image.title': 'hello-labelled' });
  const raw = await skopeoRaw(`${repo}:1`);
  assert.deepEqual(raw.annotations, { 'com.example.ticket': 'OPS-7', 'org.opencontainers.image.created': '1970-01-01T00:00:01Z' });
});

test('in a simulated GitHub Actions run, source and revision are set, and two builds of one commit give one digest', async (t) => {
  if (!(await registry.need(t))) return;
  const repo = `${reg!.host}/sbom/ci`;
  const env = {
    ...process.env,
    IMGBUILD_TEST_KEEP_CI: '1',
    GITHUB_ACTIONS: 'true',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_REPOSITORY: 'acme/hello',
    GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
    GITHUB_REF_NAME: 'v1.2.3',
    GITHUB_RUN_ID: '1001',
  };
  const first = (await cli(['build', HELLO, '-o', join(work, 'ci-1.oci')], env)).stdout.toString().trim();
  const second = (await cli(['build', HELLO, '--push', `${repo}:1`], { ...env, GITHUB_RUN_ID: '1002', GITHUB_RUN_ATTEMPT: '2' })).stdout.toString().trim();
  assert.equal(second, `${repo}@${first}`);
  const raw = await skopeoRaw(`${repo}:1`);
  assert.equal(raw.annotations['org.opencontainers.image.source'], 'https://github.com/acme/hello');
  assert.equal(raw.annotations['org.opencontainers.image.revision'], '0123456789abcdef0123456789abcdef01234567');
  assert.equal(raw.annotations['org.opencontainers.image.version'], 'v1.2.3');
  const info = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${repo}:1`]));
  assert.equal(info.Labels['org.opencontainers.image.source'], 'https://github.com/acme/hello');
  assert.equal(info.Labels['org.opencontainers.image.revision'], '0123456789abcdef0123456789abcdef01234567');
  // --no-ci-metadata: the image of a build outside CI.
  const plain = (await cli(['build', HELLO, '--no-ci-metadata', '-o', join(work, 'ci-off.oci')], env)).stdout.toString().trim();
  assert.equal(plain, 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580');
});

test('a multi-platform push attaches each platform image its own SBOM, and the index carries the spec annotations', async (t) => {
  if (!(await registry.need(t))) return;
  const { writeFileSync } = await import('node:fs');
  const spec = join(work, 'multi.json');
  writeFileSync(spec, JSON.stringify({
    name: 'sbom/multi', tag: '1', platforms: [{ architecture: 'amd64' }, { architecture: 'arm64' }],
    files: [{ path: '/etc/motd', content: 'hi\n' }], annotations: { 'org.opencontainers.image.title': 'multi' },
  }));
  const repo = `${reg!.host}/sbom/multi`;
  const built = JSON.parse((await cli(['build', spec, '--sbom', 'spdx', '--push', `${repo}:1`, '--json'])).stdout.toString());
  const index = await skopeoRaw(`${repo}:1`);
  assert.equal(index.annotations['org.opencontainers.image.title'], 'multi');
  for (const p of built.platforms) {
    const referrers = await skopeoRaw(`${repo}:sha256-${p.digest.slice(7)}`);
    assert.deepEqual(referrers.manifests.map((m: { artifactType: string }) => m.artifactType), ['application/spdx+json']);
    const artifact = await skopeoRaw(`${repo}@${referrers.manifests[0].digest}`);
    assert.equal(artifact.subject.digest, p.digest);
  }
});
