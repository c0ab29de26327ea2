// The two-platform example's fixture (examples/multiarch), checked before the multi-platform
// feature exists: make-store.sh makes both stores (Debian's busybox-static for amd64 and arm64),
// their busybox binaries are what they claim (ELF e_machine, read without `file`), the arm64 one
// runs under qemu-aarch64-static, and each store alone builds with today's single-platform CLI
// into an image umoci unpacks, that runs (amd64 under runc, arm64 under qemu from the rootfs).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runCli, runCommand, tool } from './helpers/cli.js';
import { readElfHeader } from './helpers/elf.js';
import { makeMultiarchStores, multiarch, multiarchMotd, multiarchApplets, multiarchArchs, multiarchCmd, multiarchDir, multiarchOutput, writeSinglePlatformSpec, type MultiarchArch } from './helpers/multiarch.js';
import { resolveInRoot, runBundleUnderQemu, runUnderQemu } from './helpers/qemu.js';
import { runImage, unpackImage } from './helpers/runc.js';
import { uploadsByDigest } from './helpers/fault-proxy.js';
import { proxiedRegistryFixture, uploadsInRegistryLog } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { needTool } from './helpers/tools.js';

let work: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  work = await tempDir('imgbuild-multiarch-fixture-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache'), DOCKER_CONFIG: join(work, 'docker') };
});

/** docker-registry with a fault proxy in front, started by the first test that needs it. */
const registryFixture = proxiedRegistryFixture();

const NIX_BASE32 = /^[0-9abcdfghijklmnpqrsvwxyz]{32}$/;

test('make-store.sh makes both stores: a busybox store path each, with the applets of examples/busybox, and the same motd path', async (t) => {
  if (!(await makeMultiarchStores(t))) return;
  for (const arch of multiarchArchs) {
    const { storePath, storeDir } = multiarch[arch];
    const base = storePath.slice('/nix/store/'.length);
    assert.match(base.slice(0, 32), NIX_BASE32);
    assert.equal(base.slice(32), '-busybox-1.35.0');
    const motd = multiarchMotd.storePath.slice('/nix/store/'.length);
    assert.deepEqual((await readdir(storeDir)).sort(), [motd, base].sort(), `${storeDir} holds its busybox and the motd`);
    assert.equal(await readFile(join(storeDir, motd, 'share/motd'), 'utf8'), multiarchMotd.text);
    const bin = join(storeDir, base, 'bin');
    assert.deepEqual((await readdir(bin)).sort(), ['busybox', ...multiarchApplets].sort());
    const busybox = await lstat(join(bin, 'busybox'));
    assert.ok(busybox.isFile());
    assert.equal(busybox.mode & 0o777, 0o555);
    for (const applet of multiarchApplets) assert.equal(await readlink(join(bin, applet)), 'busybox', `${arch} bin/${applet}`);
  }
  assert.notEqual(multiarch.amd64.storePath, multiarch.arm64.storePath);
});

test('make-store.sh is idempotent: a second run keeps both stores as they are and prints nothing', async (t) => {
  if (!(await makeMultiarchStores(t))) return;
  const before = await Promise.all(multiarchArchs.map((a) => stat(multiarch[a].storeDir)));
  const started = Date.now();
  const r = await runCommand('bash', [join(multiarchDir, 'make-store.sh')]);
  const took = Date.now() - started;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), '');
  const after = await Promise.all(multiarchArchs.map((a) => stat(multiarch[a].storeDir)));
  assert.deepEqual(after.map((s) => s.ino), before.map((s) => s.ino), 'the stores were not made again');
  // No download, no copy: well under the second a cold run takes (generous, for a loaded machine).
  assert.ok(took < 5000, `warm make-store.sh took ${took} ms`);
  // Nothing half-made left next to the stores.
  assert.deepEqual((await readdir(multiarchDir)).filter((n) => n.startsWith('.store-')), []);
});

test('each store\'s busybox is a 64-bit little-endian ELF file of its architecture (0x3e amd64, 0xb7 arm64)', async (t) => {
  if (!(await makeMultiarchStores(t))) return;
  for (const arch of multiarchArchs) {
    const { storePath, storeDir, machine } = multiarch[arch];
    const header = await readElfHeader(join(storeDir, storePath.slice('/nix/store/'.length), 'bin/busybox'));
    assert.deepEqual(header, { bits: 64, endian: 'little', machine }, arch);
  }
});

test('the arm64 busybox runs under qemu-aarch64-static: an applet by name, and sh -c with a builtin', async (t) => {
  if (!(await makeMultiarchStores(t)) || !needTool(t, 'qemu-aarch64-static')) return;
  const { storePath, storeDir } = multiarch.arm64;
  const busybox = join(storeDir, storePath.slice('/nix/store/'.length), 'bin/busybox');
  assert.equal(await tool('qemu-aarch64-static', [busybox, 'echo', 'hi']), 'hi\n');
  assert.equal(await tool('qemu-aarch64-static', [busybox, 'uname', '-m']), 'aarch64\n');
  // The store dir as a root: /<path>/bin/sh resolves to the arm64 busybox, which runs as `sh`.
  const sh = `/${storePath.slice('/nix/store/'.length)}/bin/sh`;
  assert.equal(await runUnderQemu(storeDir, [sh, ...multiarchCmd.slice(1)]), multiarchOutput);
});

test('examples/multiarch/image.yaml names the two store paths make-store.sh makes, one platform each', async (t) => {
  const spec = parseYaml(await readFile(join(multiarchDir, 'image.yaml'), 'utf8'));
  assert.deepEqual(spec.platforms.map((p: { architecture: string }) => p.architecture), ['amd64', 'arm64']);
  for (const p of spec.platforms as { architecture: MultiarchArch; store: { dir: string }; contents: string[]; copyToRoot: string[] }[]) {
    const { storePath, storeDir } = multiarch[p.architecture];
    assert.equal(join(multiarchDir, p.store.dir), storeDir);
    assert.deepEqual(p.contents, [storePath, multiarchMotd.storePath]);
    assert.deepEqual(p.copyToRoot, [storePath]);
  }
  assert.deepEqual(spec.config.Cmd, multiarchCmd);
  if (!(await makeMultiarchStores(t))) return;
  for (const arch of multiarchArchs) {
    const { storePath, storeDir } = multiarch[arch];
    assert.ok((await stat(join(storeDir, storePath.slice('/nix/store/'.length), 'bin/busybox'))).isFile());
  }
});

/** Builds one store alone with today's CLI into an OCI layout; returns the layout and the image config. */
async function buildOne(arch: MultiarchArch): Promise<{ layout: string; config: { architecture: string; os: string } }> {
  const dir = join(work, `single-${arch}`);
  await mkdir(dir, { recursive: true });
  const spec = await writeSinglePlatformSpec(dir, arch);
  const layout = join(dir, 'image.oci');
  const r = await runCli(['build', spec, '-o', layout, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const built = JSON.parse(r.stdout.toString()) as { configDigest: string };
  const config = JSON.parse(await readFile(join(layout, 'blobs', ...built.configDigest.split(':')), 'utf8'));
  return { layout, config };
}

test('the amd64 store alone builds (architecture: amd64) into an image umoci unpacks and runc runs', async (t) => {
  if (!(await makeMultiarchStores(t)) || !needTool(t, 'umoci') || !needTool(t, 'runc')) return;
  const { layout, config } = await buildOne('amd64');
  assert.deepEqual([config.os, config.architecture], ['linux', 'amd64']);
  assert.equal(await runImage(layout, '1.35.0', work), multiarchOutput);
});

test('the arm64 store alone builds (architecture: arm64); umoci unpacks it and its busybox runs under qemu from the rootfs', async (t) => {
  if (!(await makeMultiarchStores(t)) || !needTool(t, 'umoci') || !needTool(t, 'qemu-aarch64-static')) return;
  const { layout, config } = await buildOne('arm64');
  assert.deepEqual([config.os, config.architecture], ['linux', 'arm64']);
  const bundle = await unpackImage(layout, '1.35.0', work);
  const rootfs = join(bundle, 'rootfs');
  // /bin/sh is a link into the store path, resolved inside the rootfs to the arm64 busybox.
  const sh = await resolveInRoot(rootfs, '/bin/sh');
  assert.equal(sh, join(rootfs, multiarch.arm64.storePath, 'bin/busybox'));
  assert.equal((await readElfHeader(sh))?.machine, multiarch.arm64.machine);
  // The image's own Cmd and Env, as umoci put them in the bundle's config.json.
  assert.equal(await runBundleUnderQemu(bundle), multiarchOutput);
  assert.equal(await runUnderQemu(rootfs, ['/bin/echo', 'hi']), 'hi\n');
});

test('both single-platform images pushed to one repository: each blob uploaded once (proxy and registry log agree), nothing on a second push', async (t) => {
  if (!(await makeMultiarchStores(t)) || !(await registryFixture.need(t))) return;
  const push = async (arch: MultiarchArch) => {
    const spec = await writeSinglePlatformSpec(await tempDir('imgbuild-multiarch-push-'), arch);
    const r = await runCli(['build', spec, '--push', `${registryFixture.proxy.host}/examples/multiarch:${arch}`, '--insecure-registry', registryFixture.proxy.host, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.toString()) as { configDigest: string; layers: { digest: string }[]; pushed: { uploaded: number } };
  };
  registryFixture.proxy.clearLog();
  const logBefore = uploadsInRegistryLog(registryFixture.registry.log());
  const built = [await push('amd64'), await push('arm64')];
  const expected: Record<string, number> = {};
  for (const b of built) for (const d of [b.configDigest, ...b.layers.map((l) => l.digest)]) expected[d] = 1;
  const seen = uploadsByDigest(registryFixture.proxy.requests());
  assert.deepEqual(seen, expected);
  const logAfter = uploadsInRegistryLog(registryFixture.registry.log());
  const fromLog: Record<string, number> = {};
  for (const [d, n] of Object.entries(logAfter)) if (n - (logBefore[d] ?? 0) > 0) fromLog[d] = n - (logBefore[d] ?? 0);
  assert.deepEqual(fromLog, expected);
  assert.equal(built.reduce((n, b) => n + b.pushed.uploaded, 0), Object.keys(expected).length);

  registryFixture.proxy.clearLog();
  const again = [await push('amd64'), await push('arm64')];
  assert.deepEqual(again.map((b) => b.pushed.uploaded), [0, 0]);
  assert.deepEqual(uploadsByDigest(registryFixture.proxy.requests()), {});
});
