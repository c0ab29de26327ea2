// Bad input: a clear message naming what is wrong, a non-zero exit, and nothing written.
import { test, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, open, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkJsonOutput, runCli, runCommand } from './helpers/cli.js';
import { committedBlobs, interruptMidLayer, tempBlobs } from './helpers/interrupt.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const hello = '/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1';
let work: string;
/** This test's cache dir (each test has its own) and the CLI's environment. */
let cacheDir: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  work = await tempDir('imgbuild-errors-');
});

beforeEach(async () => {
  cacheDir = await tempDir('imgbuild-errors-cache-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: cacheDir };
});

let n = 0;
/** Write a JSON spec using the hello store, with `overrides` merged in, and build it. */
async function buildSpec(overrides: Record<string, unknown>, storeDir = join(repoRoot, 'examples/hello/store')) {
  const dir = join(work, `case-${++n}`);
  await mkdir(dir);
  const specFile = join(dir, 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'errors/case', architecture: 'amd64', store: { dir: storeDir }, contents: [hello], ...overrides }, null, 2));
  const out = join(dir, 'out.oci');
  const r = await runCli(['build', specFile, '-o', out], { env });
  return { ...r, specFile, dir, out };
}

async function assertNothingWritten(dir: string, out: string): Promise<void> {
  await assert.rejects(stat(out), { code: 'ENOENT' }, `${out} exists`);
  const leftovers = (await readdir(dir)).filter((f) => f !== 'image.json' && f !== 'store');
  assert.deepEqual(leftovers, [], 'temp files left next to the output');
  assert.deepEqual(await tempBlobs(join(cacheDir, 'blobs')), [], 'temp blobs left in the cache');
}

test('an unknown spec key is refused, naming the file, the key and the closest known key', async () => {
  const r = await buildSpec({ maxLayer: 10 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /image\.json/);
  assert.match(r.stderr, /maxLayer\b/);
  assert.match(r.stderr, /did you mean .?maxLayers/);
  await assertNothingWritten(r.dir, r.out);
});

test('a field of the wrong type is refused, naming the field', async () => {
  const r = await buildSpec({ config: { Env: 'PATH=/bin' } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /config\.Env/);
  await assertNothingWritten(r.dir, r.out);
});

for (const maxLayers of [0, 200]) {
  test(`maxLayers ${maxLayers} is refused`, async () => {
    const r = await buildSpec({ maxLayers });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /maxLayers/);
    await assertNothingWritten(r.dir, r.out);
  });
}

test('an invalid tag is refused', async () => {
  const r = await buildSpec({ tag: 'not a tag!' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\btag\b/);
  await assertNothingWritten(r.dir, r.out);
});

test('a content path outside the store is refused, naming it', async () => {
  const r = await buildSpec({ contents: ['/usr/bin/env'] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\/usr\/bin\/env/);
  await assertNothingWritten(r.dir, r.out);
});

test('a store path missing from the store is refused, naming it', async () => {
  const missing = '/nix/store/0000000000000000000000000000000a-missing-1.0';
  const r = await buildSpec({ contents: [missing] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /0000000000000000000000000000000a-missing-1\.0/);
  await assertNothingWritten(r.dir, r.out);
});

test('a fifo in a store path is refused, naming its path', async () => {
  const store = join(work, 'fifo-store');
  await cp(join(repoRoot, 'examples/hello/store'), store, { recursive: true, verbatimSymlinks: true });
  const fifo = join(store, 'yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1', 'bin', 'control');
  await runCommand('mkfifo', [fifo]);
  const r = await buildSpec({}, store);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bin\/control/);
  assert.match(r.stderr, /fifo/i);
  await assertNothingWritten(r.dir, r.out);
});

test('an output whose parent directory does not exist is refused before anything is built', async () => {
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', join(work, 'no/such/dir/out.oci')], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no\/such\/dir.*does not exist/);
});

test('SIGINT halfway through a large layer exits 130 and leaves no output and no temp blob', async () => {
  const store = join(work, 'big-store');
  const path = join(store, 'b1g2b3g4b5g6b7g8b9g0b1g2b3g4b5g6-big-1.0');
  await mkdir(path, { recursive: true });
  // 64 MiB of incompressible data: 256 deflate blocks, of which the interrupt lets 4 be written.
  const file = await open(join(path, 'blob'), 'w');
  for (let i = 0; i < 8; i++) await file.write(randomBytes(8 << 20));
  await file.close();
  const dir = join(work, 'sigint');
  await mkdir(dir);
  const specFile = join(dir, 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'errors/sigint', architecture: 'amd64', store: { dir: store }, contents: ['/nix/store/b1g2b3g4b5g6b7g8b9g0b1g2b3g4b5g6-big-1.0'] }));
  const out = join(dir, 'out.oci');
  const args = ['build', specFile, '-o', out, '--json'];
  const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  // One SIGINT only (a second one makes the CLI exit at once, by design), sent while the layer's
  // temp blob provably holds 1 MiB and is unfinished: see interruptMidLayer.
  await interruptMidLayer(child, join(cacheDir, 'blobs'), { layers: 1, minBytes: 1 << 20, stderr: () => stderr });
  const code = await closed;
  assert.equal(code, 130, stderr);
  assert.match(stderr, /interrupted/);
  // With --json, the error document says so too.
  checkJsonOutput(args, { code, signal: null, stdout: Buffer.from(stdout), stderr });
  assert.equal(JSON.parse(stdout).error.code, 'interrupted');
  await assertNothingWritten(dir, out);
  const big = (await committedBlobs(join(cacheDir, 'blobs'))).filter((b) => b.size >= 1 << 20);
  assert.deepEqual(big, [], 'the big layer was never finished');
});

test('a pinned path that is not in the closure is a layering error naming it, not an internal error', async () => {
  const stray = '/nix/store/cc2pwmjqixkx2m97hdaq25slk9gg3ykf-hello-doc-2.12.1';
  const r = await buildSpec({ contents: ['/nix/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0'], layering: { pinned: [stray] } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error\[layering\]: .*cc2pwmjqixkx2m97hdaq25slk9gg3ykf-hello-doc-2\.12\.1/m);
  await assertNothingWritten(r.dir, r.out);
});
