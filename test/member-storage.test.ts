// A directory's members as the OCI layout reader sees them (builder/transports/member-storage.ts):
// small files are read synchronously, larger ones through the thread pool; the bytes and the
// errors are the same either way.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { directoryStorage, SYNC_READ_MAX } from '../builder/transports/member-storage.js';
import { tempDir } from './helpers/tmp.js';

let dir: string;
const small = Buffer.from('{"schemaVersion":2}\n');
const large = Buffer.alloc(SYNC_READ_MAX + 1, 7);

before(async () => {
  dir = await tempDir('imgbuild-members-');
  await writeFile(join(dir, 'small'), small);
  await writeFile(join(dir, 'large'), large);
  await writeFile(join(dir, 'empty'), '');
  await mkdir(join(dir, 'sub'));
});

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('directoryStorage reads a small file, a file over SYNC_READ_MAX and an empty one whole', async () => {
  const s = directoryStorage(dir);
  assert.deepEqual(await s.read('small'), small);
  assert.deepEqual(await s.read('large'), large);
  assert.deepEqual(await s.read('empty'), Buffer.alloc(0));
});

test('directoryStorage opens a small file, a file over SYNC_READ_MAX and an empty one as streams of their bytes', async () => {
  const s = directoryStorage(dir);
  assert.deepEqual(await drain(s.open('small')), small);
  assert.deepEqual(await drain(s.open('large')), large);
  assert.deepEqual(await drain(s.open('empty')), Buffer.alloc(0));
});

test('directoryStorage: a missing member is not there, has no size, fails its read and its stream with ENOENT', async () => {
  const s = directoryStorage(dir);
  assert.equal(await s.has('missing'), false);
  assert.equal(await s.size('missing'), undefined);
  await assert.rejects(s.read('missing'), { code: 'ENOENT', syscall: 'open', path: join(dir, 'missing') });
  await assert.rejects(drain(s.open('missing')), { code: 'ENOENT', syscall: 'open', path: join(dir, 'missing') });
});

test('directoryStorage: a directory where a member should be is said to be one, not missing; sizes are the files\' own', async () => {
  const s = directoryStorage(dir);
  const isDir = { code: 'image-read', message: `${join(dir, 'sub')} is a directory, not a regular file` };
  await assert.rejects(async () => s.has('sub'), isDir);
  await assert.rejects(async () => s.size('sub'), isDir);
  await assert.rejects(() => s.read('sub'), isDir);
  assert.equal(await s.has('nothing-here'), false);
  assert.equal(await s.size('small'), small.length);
  assert.equal(await s.size('large'), large.length);
  assert.equal(s.file!('small'), join(dir, 'small'));
});

test('directoryStorage: a FIFO where a member should be is said to be one, and never opened (no hang)', async () => {
  const fifo = join(dir, 'fifo');
  const made = spawnSync('mkfifo', [fifo]);
  assert.equal(made.status, 0);
  const s = directoryStorage(dir);
  const isFifo = { code: 'image-read', message: `${fifo} is a pipe (FIFO), not a regular file` };
  await assert.rejects(async () => s.size('fifo'), isFifo);
  await assert.rejects(() => s.read('fifo'), isFifo);
  await assert.rejects(() => drain(s.open('fifo')), isFifo);
  assert.equal(s.readSmall!('fifo'), undefined);
});
