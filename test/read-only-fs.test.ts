// A read-only file system (EROFS) under an output, `sbom -o`, `--digest-file` or the cache: a
// typed error that names the path and the flag to change, nothing written; never
// "internal error", and the cache's is not taken for a missing directory (Node's recursive mkdir
// says ENOENT for it). The file system is real: an empty tmpfs mounted read-only for the test
// (root in the sandbox and in CI, as test/disk-full.test.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { needTool, unavailable } from './helpers/tools.js';

const hello = join(repoRoot, 'examples/hello');
const mounted: string[] = [];

after(() => {
  for (const dir of mounted) execFileSync('umount', [dir]);
});

/** An empty directory on a read-only tmpfs, or undefined (skipped; under CI a failure) where one cannot be mounted. */
async function readOnlyDir(t: TestContext): Promise<string | undefined> {
  if (!needTool(t, 'mount')) return undefined;
  const dir = await tempDir('imgbuild-ro-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k,mode=0755', 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    unavailable(t, `cannot mount a read-only tmpfs (needs root, CAP_SYS_ADMIN): ${(e as Error).message}`);
    return undefined;
  }
  mounted.push(dir);
  return dir;
}

async function cacheEnv(): Promise<{ cache: string; env: NodeJS.ProcessEnv }> {
  const cache = join(await tempDir('imgbuild-ro-cache-'), 'cache');
  return { cache, env: { ...process.env, IMGBUILD_CACHE_DIR: cache } };
}

function assertTyped(stderr: string): void {
  assert.doesNotMatch(stderr, /internal error|\n\s+at /, stderr);
}

for (const [format, name] of [['docker-archive', 'hello.docker.tar'], ['oci-archive', 'hello.oci.tar'], ['oci', 'hello.oci']] as const) {
  test(`-o ${format} on a read-only file system: error[output] naming it and -o, before the build`, async (t) => {
    const dir = await readOnlyDir(t);
    if (!dir) return;
    const { cache, env } = await cacheEnv();
    const out = join(dir, name);
    const r = await runCli(['build', hello, '-f', format, '-o', out], { env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^error\\[output\\]: cannot write ${out}: read-only file system; nothing was written$`, 'm'));
    assert.match(r.stderr, /^hint: name a path on a writable file system with -o$/m);
    assertTyped(r.stderr);
    assert.equal(existsSync(cache), false, 'refused before anything was built');
  });
}

test('sbom -o on a read-only file system: error[output] naming it', async (t) => {
  const dir = await readOnlyDir(t);
  if (!dir) return;
  const { env } = await cacheEnv();
  const r = await runCli(['sbom', hello, '-o', join(dir, 'sbom.json')], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[output\\]: cannot write ${join(dir, 'sbom.json')}: read-only file system; nothing was written$`, 'm'));
  assertTyped(r.stderr);
});

test('--digest-file on a read-only file system: a usage error saying so (not "permission denied"), before the push', async (t) => {
  const dir = await readOnlyDir(t);
  if (!dir) return;
  const { env } = await cacheEnv();
  const layout = join(await tempDir('imgbuild-ro-layout-'), 'hello.oci');
  assert.equal((await runCli(['build', hello, '-o', layout], { env })).code, 0);
  // Nothing listens on 127.0.0.1:9: reaching it would take seconds of retries, and say so.
  const r = await runCli(['push', layout, '127.0.0.1:9/ro/hello:1', '--digest-file', join(dir, 'digest')], { env });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.split('\n')[0], `error[usage]: --digest-file ${join(dir, 'digest')}: cannot write in ${dir} (read-only file system)`);
  assert.match(r.stderr, /^hint: name a path on a writable file system with --digest-file$/m);
  assert.doesNotMatch(r.stderr, /waiting: connect/);
  assertTyped(r.stderr);
});

test('the cache on a read-only file system: error[file] saying so, naming the cache and IMGBUILD_CACHE_DIR', async (t) => {
  const cache = await readOnlyDir(t);
  if (!cache) return;
  const out = join(await tempDir('imgbuild-ro-out-'), 'hello.docker.tar');
  const r = await runCli(['build', hello, '-o', out], { env: { ...process.env, IMGBUILD_CACHE_DIR: cache } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[file\\]: cannot write a layer into the cache ${cache}: read-only file system: ${cache}/blobs$`, 'm'));
  assert.match(r.stderr, /^hint: name a path on a writable file system with IMGBUILD_CACHE_DIR$/m);
  assert.doesNotMatch(r.stderr, /no such file or directory/);
  assertTyped(r.stderr);
  assert.equal(existsSync(out), false);
  assert.deepEqual(await readdir(cache), []);
});
