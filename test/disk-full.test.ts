// A full disk (ENOSPC) under an output, the cache, stdout and --digest-file: a typed error that
// says where, exit 1, and nothing half-written. The full disk is real: a tiny tmpfs mounted for
// the test (root in the sandbox and in CI; a machine where it cannot be mounted fails under CI,
// as a missing tool does), and /dev/full for stdout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { runCli } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { proxiedRegistryFixture } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { needTool, unavailable } from './helpers/tools.js';

const hello = join(repoRoot, 'examples/hello');
const HELLO = 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580';
const mounted: string[] = [];
const registryFixture = proxiedRegistryFixture();

after(() => {
  for (const dir of mounted) execFileSync('umount', [dir]);
});

/**
 * A directory on a 256 KiB tmpfs filled up to its last few KiB (`free` bytes left), or undefined
 * (skipped; under CI a failure) where a tmpfs cannot be mounted.
 */
async function fullDisk(t: TestContext, free = 0): Promise<string | undefined> {
  if (!needTool(t, 'mount')) return undefined;
  const dir = await tempDir('imgbuild-full-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0755', 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    unavailable(t, `cannot mount a tmpfs to make a full disk (needs root, CAP_SYS_ADMIN): ${(e as Error).message}`);
    return undefined;
  }
  mounted.push(dir);
  const s = await statfs(dir);
  await writeFile(join(dir, 'filler'), Buffer.alloc(Math.max(0, s.bavail * s.bsize - free)));
  return dir;
}

function assertTyped(stderr: string): void {
  assert.doesNotMatch(stderr, /internal error|\n\s+at /, stderr);
}

test('-o docker-archive on a full disk: error[output] naming the file, exit 1, no file and no temp file left', async (t) => {
  const dir = await fullDisk(t, 4096);
  if (!dir) return;
  const out = join(dir, 'hello.tar');
  const r = await runCli(['build', hello, '-f', 'docker-archive', '-o', out]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[output\\]: no space left on the device writing ${out}: nothing was written`, 'm'));
  assertTyped(r.stderr);
  assert.deepEqual((await readdir(dir)).sort(), ['filler']);
});

test('-o oci (a directory) on a full disk: error[output] naming it, exit 1, nothing left', async (t) => {
  const dir = await fullDisk(t, 4096);
  if (!dir) return;
  const out = join(dir, 'hello.oci');
  // A layout copies (does not link) across file systems: the cache is elsewhere.
  const r = await runCli(['build', hello, '-o', out, '--json']);
  assert.equal(r.code, 1, r.stderr);
  const error = JSON.parse(r.stdout.toString()).error;
  assert.equal(error.code, 'output');
  assert.match(error.message, new RegExp(`no space left on the device writing ${out}`));
  assertTyped(r.stderr);
  assert.deepEqual((await readdir(dir)).sort(), ['filler']);
});

test('the cache on a full disk: error[file] naming the cache, exit 1, no temp blob left in it', async (t) => {
  const dir = await fullDisk(t, 0);
  if (!dir) return;
  // The cache dir exists (made while there was room); the disk is full when the layers are written.
  const cache = join(dir, 'cache');
  await rm(join(dir, 'filler'));
  await mkdir(join(cache, 'blobs', 'sha256'), { recursive: true });
  const s = await statfs(dir);
  await writeFile(join(dir, 'filler'), Buffer.alloc(s.bavail * s.bsize));
  const out = join(await tempDir('imgbuild-full-out-'), 'hello.tar');
  const r = await runCli(['build', hello, '-f', 'docker-archive', '-o', out], { env: { ...process.env, IMGBUILD_CACHE_DIR: cache } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[file\\]: no space left on the device writing a layer into the cache ${cache}`, 'm'));
  assert.match(r.stderr, /^hint: .*imgbuild cache prune --max-size/m);
  assertTyped(r.stderr);
  assert.deepEqual(await readdir(join(cache, 'blobs', 'sha256')), []);
  await assert.rejects(stat(out), { code: 'ENOENT' });
});

test('--stream to a full stdout (/dev/full): error[output] saying the stream is incomplete, exit 1', async (t) => {
  if (!needTool(t, 'mount')) return; // only to be in this file's tier; /dev/full needs nothing
  const fd = openSync('/dev/full', 'w');
  try {
    const child = spawn(process.execPath, [cliPath, 'build', hello, '--stream'], { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, IMGBUILD_CACHE_DIR: await tempDir('imgbuild-full-cache-') } });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^error\[output\]: no space left on the device writing the archive to stdout \(--stream\): what was written is incomplete/m);
    assertTyped(stderr);
  } finally {
    closeSync(fd);
  }
});

test('--digest-file on a full disk after a push: error[output] naming it, exit 1, the file keeps its old digest whole', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const dir = await fullDisk(t, 0);
  if (!dir) return;
  // The digest file of an earlier push, then the disk fills up.
  await rm(join(dir, 'filler'));
  const digestFile = join(dir, 'digest');
  const old = `sha256:${'0'.repeat(64)}\n`;
  await writeFile(digestFile, old);
  const s = await statfs(dir);
  await writeFile(join(dir, 'filler'), Buffer.alloc(s.bavail * s.bsize));
  const host = registryFixture.registry.host;
  const r = await runCli(['build', hello, '--push', `${host}/full/hello:1`, '--insecure-registry', host, '--digest-file', digestFile]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[output\\]: no space left on the device writing --digest-file ${digestFile} \\(it was left as it was\\)`, 'm'));
  assertTyped(r.stderr);
  assert.equal(await readFile(digestFile, 'utf8'), old);
  assert.deepEqual((await readdir(dir)).sort(), ['digest', 'filler']);
  // The push itself went through: running it again (with room) writes the digest.
  await rm(join(dir, 'filler'));
  const again = await runCli(['build', hello, '--push', `${host}/full/hello:1`, '--insecure-registry', host, '--digest-file', digestFile]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(await readFile(digestFile, 'utf8'), `${HELLO}\n`);
});
