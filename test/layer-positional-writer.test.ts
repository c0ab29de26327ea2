// The layer writer's file output (layer/positional-writer.ts): bytes copied into a few buffers
// and written at their offsets on the thread pool, or here when every buffer is busy; the file
// holds exactly the bytes added, in order, whichever way each buffer went.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUFFER_BYTES, MAX_BUFFERS, PositionalWriter, keptWriterBuffers } from '../builder/layer/positional-writer.js';
import { tempDir } from './helpers/tmp.js';

/** `count` pieces of varied sizes (0 to 3 buffers' worth), each of its own byte values. */
function pieces(count: number, bufferBytes: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc((i * 7919) % (3 * bufferBytes + 1), i % 251));
}

test('bytes added with room waited for are the file, in order, through few buffers', async () => {
  const path = join(await tempDir('imgbuild-pwrite-'), 'blob');
  const fd = openSync(path, 'wx');
  const writer = new PositionalWriter(fd, 3, 64, 0);
  const all = pieces(200, 64);
  for (const piece of all) {
    writer.add(piece);
    await writer.room();
  }
  await writer.end();
  closeSync(fd);
  assert.deepEqual(readFileSync(path), Buffer.concat(all));
});

test('bytes added with no wait are the file too: a full buffer with none free is written at once', async () => {
  const path = join(await tempDir('imgbuild-pwrite-'), 'blob');
  const fd = openSync(path, 'wx');
  const writer = new PositionalWriter(fd, 2, 16, 0);
  const all = pieces(300, 16);
  // No turn of the event loop: no write on the pool can have ended, so most go here.
  assert.ok(all.some((p) => p.length > 32));
  for (const piece of all) writer.add(piece);
  await writer.end();
  closeSync(fd);
  assert.deepEqual(readFileSync(path), Buffer.concat(all));
});

test('the caller\'s buffer is not kept: changing it after add changes nothing', async () => {
  const path = join(await tempDir('imgbuild-pwrite-'), 'blob');
  const fd = openSync(path, 'wx');
  const writer = new PositionalWriter(fd, 4, 1024, 0);
  const chunk = Buffer.alloc(700, 1);
  writer.add(chunk);
  chunk.fill(2);
  writer.add(chunk);
  chunk.fill(3);
  await writer.end();
  closeSync(fd);
  assert.deepEqual(readFileSync(path), Buffer.concat([Buffer.alloc(700, 1), Buffer.alloc(700, 2)]));
});

test('a write that fails (a descriptor open for reading) rejects end, and the next add throws it', async () => {
  const path = join(await tempDir('imgbuild-pwrite-'), 'blob');
  closeSync(openSync(path, 'wx'));
  const fd = openSync(path, 'r');
  const writer = new PositionalWriter(fd, 4, 16, 0);
  writer.add(Buffer.alloc(40, 1)); // two full buffers: written on the pool
  await assert.rejects(writer.end(), { code: 'EBADF' });
  assert.throws(() => writer.add(Buffer.alloc(1)), { code: 'EBADF' });
  await assert.rejects(writer.room()!, { code: 'EBADF' });
  closeSync(fd);
});

test('abandon waits for the writes in flight, and keeps their failure to itself', async () => {
  const path = join(await tempDir('imgbuild-pwrite-'), 'blob');
  closeSync(openSync(path, 'wx'));
  const fd = openSync(path, 'r');
  const writer = new PositionalWriter(fd, 4, 16, 0);
  writer.add(Buffer.alloc(48, 1));
  await writer.abandon();
  closeSync(fd);
  assert.equal(readFileSync(path).length, 0);
});

test('the first bytes are written at once, the rest through the buffers, the file in order', async () => {
  const path = join(await tempDir('imgbuild-pwrite-'), 'blob');
  const fd = openSync(path, 'wx');
  const writer = new PositionalWriter(fd, 2, 32, 100);
  const all = pieces(80, 32);
  let before = -1;
  for (const [i, piece] of all.entries()) {
    writer.add(piece);
    // Written here while under 100 bytes: the file has them before any turn of the event loop.
    if (i === 1) before = readFileSync(path).length;
    await writer.room();
  }
  await writer.end();
  closeSync(fd);
  assert.equal(before, all[0]!.length + all[1]!.length);
  assert.ok(before > 0);
  assert.deepEqual(readFileSync(path), Buffer.concat(all));
});

test('a writer that ended leaves its buffers to the next, whose file holds its own bytes only', async () => {
  const dir = await tempDir('imgbuild-pwrite-');
  const write = async (name: string, all: Buffer[]): Promise<Buffer> => {
    const path = join(dir, name);
    const fd = openSync(path, 'wx');
    const writer = new PositionalWriter(fd, MAX_BUFFERS, BUFFER_BYTES, 0);
    // No turn of the event loop between adds: every buffer is made (the last full one written here).
    for (const piece of all) writer.add(piece);
    await writer.end();
    closeSync(fd);
    return readFileSync(path);
  };
  const first = [Buffer.alloc(MAX_BUFFERS * BUFFER_BYTES + 5, 1)];
  assert.deepEqual(await write('first', first), Buffer.concat(first));
  assert.equal(keptWriterBuffers(), MAX_BUFFERS);
  // Shorter than the first: a reused buffer's old bytes past the new ones must not reach the file.
  const second = [Buffer.alloc(BUFFER_BYTES + 3, 2), Buffer.alloc(7, 3)];
  assert.deepEqual(await write('second', second), Buffer.concat(second));
});
