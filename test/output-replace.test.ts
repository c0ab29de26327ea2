// What a file output may replace. An archive (-f oci-archive, -f docker-archive) is written as a
// new file renamed over -o's name, so the name must hold nothing, an empty file, or an archive
// (a tar): a symlink, a fifo, a device, a socket or any other file (the spec itself) is refused
// before the build, exit 1, and left exactly as it was. `sbom -o` follows the same rule with SBOMs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { unavailable } from './helpers/tools.js';

const HELLO = '/nix/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0';

async function hello(): Promise<{ dir: string; spec: string; cache: string; env: NodeJS.ProcessEnv }> {
  const dir = await tempDir('imgbuild-replace-');
  const spec = join(dir, 'image.json');
  await writeFile(spec, JSON.stringify({ name: 'replace/out', tag: '1', architecture: 'amd64', store: { dir: join(repoRoot, 'examples/hello/store') }, contents: [HELLO] }));
  const cache = join(dir, 'cache');
  return { dir, spec, cache, env: { ...process.env, IMGBUILD_CACHE_DIR: cache } };
}

/** Everything lstat and the bytes say about a path: equal before and after means untouched. */
async function snapshot(path: string): Promise<object> {
  const st = await lstat(path);
  return {
    mode: st.mode,
    ino: st.ino,
    rdev: st.rdev,
    size: st.size,
    mtimeMs: st.mtimeMs,
    link: st.isSymbolicLink() ? await readlink(path) : undefined,
    bytes: st.isFile() ? (await readFile(path)).toString('base64') : undefined,
  };
}

/**
 * Build into `target` (made by `make`) and expect a refusal: exit 1, error[output] matching
 * `message`, no cache made (refused before the build), the target and its directory as they were.
 */
async function assertRefused(args: (spec: string, target: string) => string[], make: (target: string) => Promise<void>, message: RegExp): Promise<void> {
  const { dir, spec, cache, env } = await hello();
  const target = join(dir, 'target');
  await make(target);
  const before = await snapshot(target);
  const names = (await readdir(dir)).sort();
  const r = await runCli(args(spec, target), { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  assert.deepEqual(await snapshot(target), before);
  assert.deepEqual((await readdir(dir)).sort(), names, 'no temp file left beside it');
  assert.equal(existsSync(cache), false, 'refused before anything was built');
}

const dockerArchive = (spec: string, target: string) => ['build', spec, '-f', 'docker-archive', '-o', target];
const ociArchive = (spec: string, target: string) => ['build', spec, '-o', `oci-archive:${target}`];

test('-o naming the spec file itself: refused, the spec is left as it was', async () => {
  const { dir, spec, cache, env } = await hello();
  const before = await readFile(spec);
  const r = await runCli(['build', spec, '-f', 'docker-archive', '-o', spec], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[output\\]: refusing to replace ${spec}: it exists and is not an image archive \\(a tar file\\)$`, 'm'));
  assert.match(r.stderr, /^hint: remove it or choose another --output$/m);
  assert.deepEqual(await readFile(spec), before);
  assert.deepEqual(await readdir(dir), ['image.json']);
  assert.equal(existsSync(cache), false);
});

test('-o naming a text file: refused, whatever the format', async () => {
  const make = (target: string) => writeFile(target, 'notes, not an image\n');
  await assertRefused(ociArchive, make, /^error\[output\]: refusing to replace .*target: it exists and is not an image archive \(a tar file\)$/m);
  await assertRefused(dockerArchive, make, /^error\[output\]: refusing to replace .*target: it exists and is not an image archive \(a tar file\)$/m);
});

test('-o naming a fifo: refused, the fifo is left as it was', async () => {
  await assertRefused(dockerArchive, async (target) => void execFileSync('mkfifo', [target]), /^error\[output\]: refusing to write .*target: it is a fifo \(named pipe\), and the output would be a new file in its place$/m);
});

test('-o naming a symlink to a file: refused, the link and its target are left as they were', async () => {
  const other = join(await tempDir('imgbuild-replace-other-'), 'kept.tar');
  await writeFile(other, 'kept');
  await assertRefused(ociArchive, (target) => symlink(other, target), /^error\[output\]: refusing to write .*target: it is a symbolic link, and the output would be a new file in its place$/m);
  assert.equal(await readFile(other, 'utf8'), 'kept');
});

test('-o naming a character device (as /dev/null): refused, the device is left as it was', async (t: TestContext) => {
  const make = async (target: string) => {
    // The same device as /dev/null, made in the test's own directory: were it replaced, nothing else is hit.
    execFileSync('mknod', [target, 'c', '1', '3'], { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  try {
    await make(join(await tempDir('imgbuild-replace-mknod-'), 'probe'));
  } catch (e) {
    unavailable(t, `cannot make a device node (needs root, CAP_MKNOD): ${(e as Error).message}`);
    return;
  }
  await assertRefused(dockerArchive, make, /^error\[output\]: refusing to write .*target: it is a character device, and the output would be a new file in its place$/m);
  await assertRefused((spec, target) => ['build', spec, '-o', `oci:${target}`], make, /^error\[output\]: refusing to replace .*target: it is a character device, not an image directory this tool wrote$/m);
});

test('-o naming a socket: refused, the socket is left as it was', async () => {
  const server = createServer();
  try {
    await assertRefused(dockerArchive, (target) => new Promise((resolve) => server.listen(target, () => resolve())), /^error\[output\]: refusing to write .*target: it is a socket, and the output would be a new file in its place$/m);
  } finally {
    server.close();
  }
});

test('-o naming a directory that is not a layout: an archive is refused, the directory is left as it was', async () => {
  const { dir, spec, env } = await hello();
  const target = join(dir, 'target');
  execFileSync('mkdir', [target]);
  await writeFile(join(target, 'keep'), 'keep');
  const r = await runCli(dockerArchive(spec, target), { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error\[output\]: cannot write .*target: a directory is in the way$/m);
  assert.deepEqual(await readdir(target), ['keep']);
});

test('an archive written before is replaced, by either format', async () => {
  const { dir, spec, env } = await hello();
  const out = join(dir, 'image.tar');
  assert.equal((await runCli(dockerArchive(spec, out), { env })).code, 0);
  const r = await runCli(ociArchive(spec, out), { env });
  assert.equal(r.code, 0, r.stderr);
  const names = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n');
  assert.ok(names.includes('oci-layout') && !names.includes('manifest.json'), names.join(' '));
  assert.deepEqual((await readdir(dir)).sort(), ['cache', 'image.json', 'image.tar']);
});

test('an empty file is replaced (touch app.tar, then build into it)', async () => {
  const { dir, spec, env } = await hello();
  const out = join(dir, 'app.tar');
  await writeFile(out, '');
  const r = await runCli(dockerArchive(spec, out), { env });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n').includes('manifest.json'));
});

test('sbom -o naming the spec file itself: refused before the build, the spec is left as it was', async () => {
  const { spec, cache, env } = await hello();
  const before = await readFile(spec);
  const r = await runCli(['sbom', spec, '-o', spec], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[output\\]: refusing to replace ${spec}: it exists and is not an SBOM \\(an SPDX or CycloneDX JSON document\\)$`, 'm'));
  assert.deepEqual(await readFile(spec), before);
  assert.equal(existsSync(cache), false);
});

test('sbom -o naming a fifo: refused, the fifo is left as it was', async () => {
  await assertRefused((spec, target) => ['sbom', spec, '-o', target], async (target) => void execFileSync('mkfifo', [target]), /^error\[output\]: refusing to write .*target: it is a fifo \(named pipe\), and the output would be a new file in its place$/m);
});

test('sbom -o replaces an SBOM written before (another format too), and leaves no temp file', async () => {
  const { dir, spec, env } = await hello();
  const out = join(dir, 'sbom.json');
  assert.equal((await runCli(['sbom', spec, '--format', 'cyclonedx', '-o', out], { env })).code, 0);
  assert.equal(JSON.parse(await readFile(out, 'utf8')).bomFormat, 'CycloneDX');
  const r = await runCli(['sbom', spec, '--format', 'spdx', '-o', out], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(await readFile(out, 'utf8')).spdxVersion, 'SPDX-2.3');
  assert.deepEqual((await readdir(dir)).sort(), ['cache', 'image.json', 'sbom.json']);
});
