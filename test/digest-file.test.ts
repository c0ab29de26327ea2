// --digest-file: a regular file (or a symlink to one: its target) gets the digest, replaced
// atomically; a fifo (a pipe) is written into; a device, a socket or a dangling symlink is a
// usage error (as a directory is), said by push, build and index create before anything is
// built or pushed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { writeDigestFile } from '../builder/commands/digest-file.js';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { unavailable } from './helpers/tools.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

test('a regular file gets the digest and a newline, in place of what it held', async () => {
  const dir = await tempDir('imgbuild-digest-');
  const file = join(dir, 'digest.txt');
  await writeFile(file, `sha256:${'0'.repeat(64)}\n`);
  await writeDigestFile(file, DIGEST);
  assert.equal(await readFile(file, 'utf8'), `${DIGEST}\n`);
  assert.deepEqual(await readdir(dir), ['digest.txt']);
});

test('a symlink to a regular file: the target gets the digest, the link stays', async () => {
  const dir = await tempDir('imgbuild-digest-');
  await mkdir(join(dir, 'real'));
  await writeFile(join(dir, 'real', 'digest.txt'), 'old\n');
  await symlink('real/digest.txt', join(dir, 'digest.txt'));
  await writeDigestFile(join(dir, 'digest.txt'), DIGEST);
  assert.equal(await readlink(join(dir, 'digest.txt')), 'real/digest.txt');
  assert.equal(await readFile(join(dir, 'real', 'digest.txt'), 'utf8'), `${DIGEST}\n`);
});

test('a fifo someone reads gets the digest written into it', async () => {
  const dir = await tempDir('imgbuild-digest-');
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
  let read = '';
  reader.stdout.on('data', (c: Buffer) => (read += c.toString()));
  const closed = new Promise((resolve) => reader.once('close', resolve));
  // cat opens the fifo when it starts; until then a write would find no reader.
  for (let i = 0; i < 100; i++) {
    try {
      await writeDigestFile(fifo, DIGEST);
      break;
    } catch (e) {
      if (!/no such device or address/.test((e as Error).message)) throw e;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  await closed;
  assert.equal(read, `${DIGEST}\n`);
  assert.ok((await lstat(fifo)).isFIFO());
});

test('a fifo no one reads: error[output] at once (no wait without end), the fifo left as it was', async () => {
  const dir = await tempDir('imgbuild-digest-');
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  await assert.rejects(writeDigestFile(fifo, DIGEST), {
    code: 'output',
    message: `cannot write --digest-file ${fifo}: no such device or address (a device that is not there, a socket, or a fifo no one reads)`,
    hint: `the digest is ${DIGEST}; name a regular file with --digest-file`,
  });
  assert.ok((await lstat(fifo)).isFIFO());
});

test('a dangling symlink: a usage error naming where it points, the link left as it was', async () => {
  const dir = await tempDir('imgbuild-digest-');
  const link = join(dir, 'dangling');
  await symlink('nowhere', link);
  await assert.rejects(writeDigestFile(link, DIGEST), { code: 'usage', message: `--digest-file ${link} is a symbolic link to nowhere, which does not exist` });
  assert.deepEqual(await readdir(dir), ['dangling']);
  assert.equal(await readlink(link), 'nowhere');
});

test('a character device, directly or through a symlink (as /dev/stdout on a terminal): a usage error, the device left as it was', async (t: TestContext) => {
  const dir = await tempDir('imgbuild-digest-');
  const device = join(dir, 'null');
  try {
    // The same device as /dev/null, made in the test's own directory: were it replaced, nothing else is hit.
    execFileSync('mknod', [device, 'c', '1', '3'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    unavailable(t, `cannot make a device node (needs root, CAP_MKNOD): ${(e as Error).message}`);
    return;
  }
  const before = await lstat(device);
  await assert.rejects(writeDigestFile(device, DIGEST), { code: 'usage', message: `--digest-file ${device} is a character device`, hint: 'name a regular file, e.g. --digest-file digest.txt (the digest is on stdout as well)' });
  await symlink(device, join(dir, 'link'));
  await assert.rejects(writeDigestFile(join(dir, 'link'), DIGEST), { code: 'usage', message: `--digest-file ${join(dir, 'link')} is a character device (through the symbolic link to ${device})` });
  const after = await lstat(device);
  assert.deepEqual([after.ino, after.rdev, after.mode], [before.ino, before.rdev, before.mode]);
});

test('push --digest-file naming a socket: exit 2 before the registry is reached, the socket left as it was', async () => {
  const dir = await tempDir('imgbuild-digest-');
  const out = join(dir, 'hello.oci');
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') };
  assert.equal((await runCli(['build', join(repoRoot, 'examples/hello'), '-o', out], { env })).code, 0);
  const socket = join(dir, 'socket');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(socket, () => resolve()));
  try {
    // Port 9 on loopback: nothing listens there, and the push would retry for seconds before failing.
    const r = await runCli(['push', out, '127.0.0.1:9/digest/hello:1', '--digest-file', socket], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.split('\n')[0], `error[usage]: --digest-file ${socket} is a socket`);
    assert.doesNotMatch(r.stderr, /waiting: connect|ECONNREFUSED/);
    assert.ok((await lstat(socket)).isSocket());
  } finally {
    server.close();
  }
});
