// crane's daily verbs (ls, tag, digest, manifest, config) against Debian's docker-registry, checked
// against skopeo; a registry on 127.0.0.1 reached over plain HTTP with no flag (push and build
// --push); a TLS one on 127.0.0.1 is verified, and IMGBUILD_INSECURE_REGISTRIES names it insecure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { RegistryClient, parseReference, pushImage } from '../registry-client/index.js';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { makeImage, makeLayer, makeTestCa, registryAccessLog, startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

let work: string;
let env: NodeJS.ProcessEnv;
let reg: RunningRegistry | undefined;
let tlsReg: RunningRegistry | undefined;
/** The hello example: pushed as verbs/hello:1 with no flag, and as an OCI layout on disk. */
let helloDigest: string;
let layout: string;
/** A two-platform index pushed as verbs/multi:1; its children's digests. */
const children: Record<'amd64' | 'arm64', string> = { amd64: '', arm64: '' };

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const skopeo = (...args: string[]) => tool('skopeo', args);
const skopeoRaw = (...args: string[]) => runSkopeoBytes(args);

async function runSkopeoBytes(args: string[]): Promise<Buffer> {
  const { runCommand } = await import('./helpers/cli.js');
  const r = await runCommand('skopeo', args);
  assert.equal(r.code, 0, `skopeo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const r = await runCli(args, { env: { ...env, ...extraEnv } });
  assert.equal(r.code, 0, `imgbuild ${args.join(' ')}: ${r.stderr}`);
  return r;
}

before(async () => {
  work = await tempDir('imgbuild-verbs-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  delete env.IMGBUILD_INSECURE_REGISTRIES;
});

after(async () => {
  await Promise.all([reg?.stop(), tlsReg?.stop()]);
});

/** A plain-HTTP docker-registry on 127.0.0.1 holding hello (pushed with no flag) and a two-platform index. */
const registry = toolFixture(['docker-registry'], async () => {
  reg = await startRegistry();
  layout = join(work, 'hello.oci');
  const built = await cli(['build', join(repoRoot, 'examples/hello'), '-o', layout, '--json']);
  helloDigest = JSON.parse(built.stdout.toString()).digest;
  // No --insecure-registry: the registry is on the loopback.
  const pushed = await cli(['push', `oci:${layout}`, `${reg.host}/verbs/hello:1`, '--json']);
  assert.equal(JSON.parse(pushed.stdout.toString()).digest, helloDigest);

  const client = new RegistryClient({ credentials: async () => undefined });
  try {
    for (const arch of ['amd64', 'arm64'] as const) {
      const img = await makeImage([await makeLayer({ [`etc/${arch}`]: `${arch}\n` })], { architecture: arch, cmd: ['/bin/true'] });
      await pushImage(client, parseReference(`${reg.host}/verbs/multi:${arch}`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
      children[arch] = img.manifestDigest;
    }
  } finally {
    await client.close();
  }
  await cli(['index', 'create', `${reg.host}/verbs/multi:1`, `docker://${reg.host}/verbs/multi:amd64`, `docker://${reg.host}/verbs/multi:arm64`]);
});

test('a push to a plain-HTTP registry on 127.0.0.1 works with no flag, and so does build --push', async (t) => {
  if (!(await registry.need(t, 'skopeo'))) return;
  const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${reg!.host}/verbs/hello:1`)) as { Digest: string };
  assert.equal(info.Digest, helloDigest);
  const r = await cli(['build', join(repoRoot, 'examples/hello'), '--push', `${reg!.host}/verbs/built:1`, '--json']);
  assert.equal(JSON.parse(r.stdout.toString()).digest, helloDigest);
});

test('tag PUTs the same manifest under each tag, moving no blob; ls then agrees with skopeo list-tags', async (t) => {
  if (!(await registry.need(t, 'skopeo'))) return;
  const before = registryAccessLog(reg!.log()).length;
  const r = await cli(['tag', `docker://${reg!.host}/verbs/hello:1`, 'latest', '1.0']);
  assert.equal(r.stdout.toString(), `${reg!.host}/verbs/hello:latest@${helloDigest}\n${reg!.host}/verbs/hello:1.0@${helloDigest}\n`);
  const requests = registryAccessLog(reg!.log()).slice(before);
  assert.deepEqual(requests.filter((q) => q.path.includes('/blobs/')), [], 'no blob request at all');
  assert.deepEqual(requests.filter((q) => q.method === 'PUT').map((q) => q.path), ['/v2/verbs/hello/manifests/latest', '/v2/verbs/hello/manifests/1.0']);
  for (const tag of ['latest', '1.0']) {
    const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${reg!.host}/verbs/hello:${tag}`)) as { Digest: string };
    assert.equal(info.Digest, helloDigest, tag);
  }
  // A bare reference (no docker://) names a registry image too; --json names the tags and the digest.
  const j = JSON.parse((await cli(['tag', `${reg!.host}/verbs/hello@${helloDigest}`, 'stable', '--json'])).stdout.toString());
  assert.equal(j.schemaVersion, 1);
  assert.equal(j.digest, helloDigest);
  assert.deepEqual(j.tags, ['stable']);

  const listed = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${reg!.host}/verbs/hello`)) as { Tags: string[] };
  const ls = await cli(['ls', `${reg!.host}/verbs/hello`]);
  assert.deepEqual(ls.stdout.toString().trim().split('\n'), listed.Tags);
  assert.deepEqual([...listed.Tags].sort(), ['1', '1.0', 'latest', 'stable']);
  const lsJson = JSON.parse((await cli(['ls', `${reg!.host}/verbs/hello`, '--json'])).stdout.toString());
  assert.deepEqual(lsJson, { schemaVersion: 1, repository: `${reg!.host}/verbs/hello`, tags: listed.Tags });
});

test('tag refuses a local image and a reference where a tag belongs', async (t) => {
  if (!(await registry.need(t))) return;
  const local = await runCli(['tag', `oci:${layout}`, 'x'], { env });
  assert.equal(local.code, 2, 'a usage error');
  assert.match(local.stderr, /^error\[usage\]: tag works on a registry image/);
  const ref = await runCli(['tag', `docker://${reg!.host}/verbs/hello:1`, `${reg!.host}/other/hello:1`], { env });
  assert.equal(ref.code, 2);
  assert.match(ref.stderr, /^error\[usage\]: .* is not a tag\nhint: .*imgbuild push/);
});

test('digest, manifest and config of a registry image agree with skopeo inspect (--raw, --config)', async (t) => {
  if (!(await registry.need(t, 'skopeo'))) return;
  const ref = `docker://${reg!.host}/verbs/hello:1`;
  const raw = await skopeoRaw('inspect', '--tls-verify=false', '--raw', ref);
  const config = await skopeoRaw('inspect', '--tls-verify=false', '--config', '--raw', ref);
  const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', ref)) as { Digest: string };

  assert.equal((await cli(['digest', ref])).stdout.toString(), `${info.Digest}\n`);
  const manifest = (await cli(['manifest', ref])).stdout;
  assert.ok(manifest.equals(raw), 'manifest bytes as stored');
  assert.equal(sha256(manifest), helloDigest);
  const cfg = (await cli(['config', ref])).stdout;
  assert.ok(cfg.equals(config), 'config bytes as stored');
  assert.equal(sha256(cfg), (JSON.parse(raw.toString()) as { config: { digest: string } }).config.digest);

  const d = JSON.parse((await cli(['digest', ref, '--json'])).stdout.toString());
  assert.deepEqual({ schemaVersion: d.schemaVersion, digest: d.digest, platform: d.platform }, { schemaVersion: 1, digest: helloDigest, platform: 'linux/amd64' });
  const m = JSON.parse((await cli(['manifest', ref, '--json'])).stdout.toString());
  assert.equal(m.digest, helloDigest);
  assert.deepEqual(m.manifest, JSON.parse(raw.toString()));
  const c = JSON.parse((await cli(['config', ref, '--json'])).stdout.toString());
  assert.equal(c.schemaVersion, 1);
  assert.equal(c.digest, helloDigest);
  assert.equal(c.configDigest, sha256(config));
  assert.deepEqual(c.config, JSON.parse(config.toString()));
});

test('the same three on the image on disk (OCI layout) give the bytes the registry holds', async (t) => {
  if (!(await registry.need(t, 'skopeo'))) return;
  const ref = `docker://${reg!.host}/verbs/hello:1`;
  assert.equal((await cli(['digest', `oci:${layout}`])).stdout.toString(), `${helloDigest}\n`);
  assert.ok((await cli(['manifest', layout])).stdout.equals(await skopeoRaw('inspect', '--raw', `oci:${layout}`)));
  assert.ok((await cli(['config', `oci:${layout}`])).stdout.equals(await skopeoRaw('inspect', '--tls-verify=false', '--config', '--raw', ref)));
});

test('of a multi-platform image: the index and its digest, and with --platform a platform\'s manifest and config (skopeo agrees)', async (t) => {
  if (!(await registry.need(t, 'skopeo'))) return;
  const ref = `docker://${reg!.host}/verbs/multi:1`;
  const rawIndex = await skopeoRaw('inspect', '--tls-verify=false', '--raw', ref);
  const index = (await cli(['manifest', ref])).stdout;
  assert.ok(index.equals(rawIndex), 'index bytes as stored');
  assert.equal((await cli(['digest', ref])).stdout.toString(), `${sha256(rawIndex)}\n`);
  assert.deepEqual((JSON.parse(index.toString()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest), [children.amd64, children.arm64]);

  for (const arch of ['amd64', 'arm64'] as const) {
    assert.equal((await cli(['digest', ref, '--platform', `linux/${arch}`])).stdout.toString(), `${children[arch]}\n`);
    const manifest = (await cli(['manifest', ref, '--platform', `linux/${arch}`])).stdout;
    assert.ok(manifest.equals(await skopeoRaw('inspect', '--tls-verify=false', '--raw', `docker://${reg!.host}/verbs/multi@${children[arch]}`)), arch);
    const config = (await cli(['config', ref, '--platform', `linux/${arch}`])).stdout;
    assert.ok(config.equals(await skopeoRaw('--override-os', 'linux', '--override-arch', arch, 'inspect', '--tls-verify=false', '--config', '--raw', ref)), arch);
    assert.equal((JSON.parse(config.toString()) as { architecture: string }).architecture, arch);
  }
  // Which config, of two? The command says so instead of guessing the host's.
  const which = await runCli(['config', ref], { env });
  assert.equal(which.code, 2);
  assert.match(which.stderr, /^error\[usage\]: .* is a multi-platform image \(linux\/amd64, linux\/arm64\): which platform's config\?\nhint: name one: --platform linux\/amd64/);
  // A single image is not for another platform.
  const other = await runCli(['config', `docker://${reg!.host}/verbs/hello:1`, '--platform', 'linux/arm64'], { env });
  assert.equal(other.code, 1);
  assert.match(other.stderr, /^error\[platform\]: .* is an image for linux\/amd64, not linux\/arm64/);
});

/** A TLS docker-registry on 127.0.0.1 whose certificate comes from a test CA the client does not know. */
const tlsRegistry = toolFixture(['docker-registry', 'openssl'], async () => {
  const ca = makeTestCa(await tempDir('imgbuild-verbs-ca-'));
  tlsReg = await startRegistry({ tls: ca });
});

test('a TLS registry on 127.0.0.1 is verified (no plain-HTTP fallback); IMGBUILD_INSECURE_REGISTRIES names it insecure for every command', async (t) => {
  if (!(await registry.need(t)) || !(await tlsRegistry.need(t))) return;
  const target = `${tlsReg!.host}/verbs/hello:1`;
  const refused = await runCli(['push', `oci:${layout}`, target], { env });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`^error\\[tls\\]: TLS error talking to ${tlsReg!.host.replace(/\./g, '\\.')}`));
  assert.match(refused.stderr, /hint: .*--ca-file <pem>.*--insecure-registry/);

  const insecure = { IMGBUILD_INSECURE_REGISTRIES: `example.invalid, ${tlsReg!.host}` };
  assert.equal(JSON.parse((await cli(['push', `oci:${layout}`, target, '--json'], insecure)).stdout.toString()).digest, helloDigest);
  assert.equal((await cli(['digest', `docker://${target}`], insecure)).stdout.toString(), `${helloDigest}\n`);
  assert.equal((await cli(['ls', `${tlsReg!.host}/verbs/hello`], insecure)).stdout.toString(), '1\n');
});
