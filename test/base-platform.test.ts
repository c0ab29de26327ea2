// A base image (`fromImage`) must be for the platform being built: its layers go into the image
// unchanged, so a base for another platform would give an image labelled for one platform holding
// binaries for another. Every way of naming a base is checked the same way: a single image (its
// config), an index of one image (its entry, then its config), an index of several (the entry for
// the platform), and a platform's own `fromImage` in `platforms`.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../oci/canonical-json.js';
import { sha256Digest } from '../oci/digest.js';
import { comparePlatforms } from '../oci/platform.js';
import { runCli } from './helpers/cli.js';
import { AMD64, elfFile } from './helpers/elf.js';
import { tempDir } from './helpers/tmp.js';

let work: string;
let env: NodeJS.ProcessEnv;
/** Files-only images (no store, so no ELF file: the spec names the platform). */
let amd64: string;
let arm64v8: string;
let arm64bare: string;
/** An index of one image: linux/arm64/v8. */
let onlyArm: string;
/** An index of linux/amd64 and linux/arm/v6. */
let amdAndArmV6: string;

before(async () => {
  work = await tempDir('imgbuild-base-platform-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  amd64 = await built('amd64', { architecture: 'amd64' });
  arm64v8 = await built('arm64v8', { architecture: 'arm64', variant: 'v8' });
  arm64bare = await built('arm64bare', { architecture: 'arm64' });
  onlyArm = await built('only-arm', { platforms: [{ architecture: 'arm64', variant: 'v8' }] });
  amdAndArmV6 = await built('amd-armv6', { platforms: [{ architecture: 'amd64' }, { architecture: 'arm', variant: 'v6' }] });
});

/** A spec file in a directory of its own. */
async function specFile(name: string, value: object): Promise<string> {
  const dir = join(work, 'specs', name);
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'image.json');
  await writeFile(file, JSON.stringify({ name: `base-platform/${name}`, tag: '1', files: [{ path: `/etc/${name}`, content: `${name}\n` }], ...value }));
  return file;
}

/** An OCI layout built from a files-only spec; its `oci:` argument. */
async function built(name: string, value: object): Promise<string> {
  const out = join(work, `${name}.oci`);
  const r = await runCli(['build', await specFile(name, value), '-o', out], { env });
  assert.equal(r.code, 0, r.stderr);
  return `oci:${out}`;
}

async function build(name: string, value: object, args: string[] = []) {
  return runCli(['build', await specFile(name, value), '-o', join(work, `${name}-out.oci`), ...args], { env });
}

function refused(r: { code: number | null; stderr: string }, ...patterns: RegExp[]): void {
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error\[base-platform\]: /m);
  for (const p of patterns) assert.match(r.stderr, p);
}

test('a spec naming arm64 on a base image for amd64 is refused, naming the base, both platforms and the field to change', async () => {
  const r = await build('arm-on-amd', { architecture: 'arm64', fromImage: amd64 });
  refused(
    r,
    new RegExp(`fromImage ${amd64.replace(/[/.]/g, '\\$&')} is an image for linux/amd64 \\(its config says so\\), not for linux/arm64, the platform being built \\(the spec says \`architecture: arm64\`\\)`),
    /^hint: name a base for linux\/arm64 in `fromImage`, or build for the base's platform: `architecture: amd64`$/m,
  );
});

test('a closure of amd64 ELF files on an index whose only image is linux/arm64/v8 is refused, as it is on an index of several', async () => {
  const store = join(work, 'store');
  const path = `${'a'.repeat(32)}-tool`;
  await mkdir(join(store, path, 'bin'), { recursive: true });
  await writeFile(join(store, path, 'bin/tool'), elfFile(AMD64, 8192));
  const r = await build('elf-on-arm', { store: { dir: store }, contents: [`/nix/store/${path}`], fromImage: onlyArm });
  refused(
    r,
    /is an image for linux\/arm64\/v8 \(its index lists it so\), not for linux\/amd64, the platform being built \(the closure's ELF files are for amd64\)/,
    // The architecture is the files': the base is what to change.
    /^hint: name a base for linux\/amd64 in `fromImage`$/m,
  );
  const several = await build('ppc-on-two', { architecture: 'ppc64le', fromImage: amdAndArmV6 });
  refused(several, /has no image for linux\/ppc64le, the platform being built \(the spec says `architecture: ppc64le`\): its index lists linux\/amd64, linux\/arm\/v6/);
});

test("a platform's own fromImage for another platform is refused, naming platforms[i]'s fields", async () => {
  const r = await build('multi-own', { platforms: [{ architecture: 'amd64', fromImage: amd64 }, { architecture: 'arm', variant: 'v7', fromImage: arm64v8 }] });
  refused(
    r,
    /is an image for linux\/arm64\/v8 \(its config says so\), not for linux\/arm\/v7, the platform being built \(platforms\[1\] is linux\/arm\/v7\)/,
    /^hint: name a base for linux\/arm\/v7 in `platforms\[1\]\.fromImage`, or build for the base's platform: `platforms\[1\]\.architecture: arm64`, `platforms\[1\]\.variant: v8`$/m,
  );
  // A fromImage every platform shares: the hint says how to give one platform its own.
  const shared = await build('multi-shared', { fromImage: amd64, platforms: [{ architecture: 'amd64' }, { architecture: 'arm64' }] });
  refused(shared, /platforms\[1\] is linux\/arm64/, /give platforms\[1\] a `fromImage` of its own, or name a multi-platform image holding linux\/arm64/);
});

test('a named variant is not replaced by another: arm/v7 on an index of amd64 and arm/v6 is refused (it took arm/v6)', async () => {
  const r = await build('armv7-on-v6', { architecture: 'arm', variant: 'v7', fromImage: amdAndArmV6 });
  refused(r, /has no image for linux\/arm\/v7/, /its index lists linux\/amd64, linux\/arm\/v6/);
  // Nor the base's variant put in place of the spec's when the architecture comes from the base.
  const fromBase = await build('v9-on-v8', { variant: 'v9', fromImage: arm64v8 });
  refused(fromBase, /is an image for linux\/arm64\/v8 \(its config says so\), not for linux\/arm64\/v9/, /`variant: v8`/);
});

test("an architecture's default variant is the same as none (arm64 is arm64/v8), and a spec naming no variant takes a base of any variant", async () => {
  for (const [name, value] of [
    ['v8-on-bare', { architecture: 'arm64', variant: 'v8', fromImage: arm64bare }],
    ['bare-on-v8', { architecture: 'arm64', fromImage: arm64v8 }],
    ['bare-on-index', { architecture: 'arm64', fromImage: onlyArm }],
    ['arm-on-v6', { architecture: 'arm', fromImage: amdAndArmV6 }],
  ] as const) {
    const r = await build(name, value, ['--json']);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /warning/, name);
  }
});

test('a base whose config names no platform (empty os and architecture) is built on, with a warning saying it was not checked', async () => {
  const layout = await blankPlatformLayout(join(work, 'blank.oci'));
  const r = await build('on-blank', { architecture: 'arm64', fromImage: `oci:${layout}` });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^warning: fromImage oci:.*blank\.oci: its config names no platform \(os "", architecture ""\): not checked against linux\/arm64, the platform being built$/m);
});

test('platforms compare as runtimes compare them: Go names, default variants, any variant for none named', () => {
  assert.equal(comparePlatforms({ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }), 'same');
  assert.equal(comparePlatforms({ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v7' }), 'same');
  assert.equal(comparePlatforms({ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v6' }), 'different');
  assert.equal(comparePlatforms({ os: 'linux', architecture: 'amd64', variant: 'v1' }, { os: 'linux', architecture: 'amd64' }), 'same');
  assert.equal(comparePlatforms({ os: 'linux', architecture: 'arm', variant: 'v5' }, { os: 'linux', architecture: 'arm' }), 'same');
  assert.equal(comparePlatforms({ os: 'windows', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' }), 'different');
  assert.equal(comparePlatforms({ os: '', architecture: '' }, { os: 'linux', architecture: 'amd64' }), 'unknown');
});

/** An OCI layout of one image with no layers whose config says `os: ""`, `architecture: ""` (as `crane append` onto nothing writes). */
async function blankPlatformLayout(dir: string): Promise<string> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Buffer) => {
    const digest = sha256Digest(bytes);
    await writeFile(join(blobs, digest.slice('sha256:'.length)), bytes);
    return { digest, size: bytes.length };
  };
  const config = Buffer.from(canonicalJson({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(config)) }, layers: [] }));
  const m = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), canonicalJson({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m }] }));
  return dir;
}
