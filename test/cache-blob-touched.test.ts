// A cached blob touched by another build (its mtime set for `cache prune`, which sets its ctime
// too) while this build hashes or reads it is the same file: no damage. A blob written in place
// with the same size (its inode and size unchanged) is still caught, by its bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { openSync, closeSync, statSync, utimesSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { checkFile, CacheDamageError, SYNC_HASH_MAX, verifiedFileBytes } from '../builder/cache/checked-blob.js';
import { checkedCacheLayer } from '../builder/cache/layer-source.js';
import type { LayerCache } from '../builder/cache/layer-cache.js';
import { tempDir } from './helpers/tmp.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as const;
const touchAt = (file: string, seconds: number) => utimesSync(file, seconds, seconds);

async function blob(size: number): Promise<{ file: string; bytes: Buffer; expected: { digest: `sha256:${string}`; size: number } }> {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 13) & 0xff;
  const file = join(await tempDir('imgbuild-touched-'), 'blob');
  await writeFile(file, bytes);
  touchAt(file, 1_000_000);
  return { file, bytes, expected: { digest: sha(bytes), size } };
}

async function drain(gen: AsyncGenerator<Buffer, boolean>): Promise<{ bytes: Buffer; done: boolean }> {
  const chunks: Buffer[] = [];
  for (;;) {
    const r = await gen.next();
    if (r.done) return { bytes: Buffer.concat(chunks), done: r.value };
    chunks.push(r.value);
  }
}

for (const [what, size] of [['small (synchronous)', 300], ['streamed', SYNC_HASH_MAX + 1]] as const) {
  test(`a ${what} blob touched after its bytes are read and before the file is looked at again hashes as itself`, async () => {
    const { file, expected } = await blob(size);
    const got = await checkFile(file, expected, (path) => touchAt(path, 2_000_000));
    assert.equal(got.ok, true);
    assert.equal(statSync(file).mtimeMs, 2_000_000_000);
  });
}

test('a blob touched between its check and its read is read whole, not taken as changed', async () => {
  const { file, bytes, expected } = await blob(300);
  const checked = await checkFile(file, expected);
  assert.ok(checked.ok);
  touchAt(file, 3_000_000);
  assert.deepEqual(await drain(verifiedFileBytes(file, expected, checked.identity)), { bytes, done: true });
});

test('a blob touched while it is read (after its first chunk) is read whole', async () => {
  const { file, bytes, expected } = await blob(3 * (1 << 20) + 7);
  const checked = await checkFile(file, expected);
  assert.ok(checked.ok);
  const gen = verifiedFileBytes(file, expected, checked.identity);
  const first = await gen.next();
  assert.equal(first.done, false);
  touchAt(file, 4_000_000);
  const rest = await drain(gen);
  assert.deepEqual({ bytes: Buffer.concat([first.value as Buffer, rest.bytes]).equals(bytes), done: rest.done }, { bytes: true, done: true });
});

test('a blob written in place with the same size and its old times after its check fails the read before its last byte', async () => {
  const { file, expected } = await blob(300);
  const checked = await checkFile(file, expected);
  assert.ok(checked.ok);
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from('X'), 0, 1, 10);
  closeSync(fd);
  touchAt(file, 1_000_000); // the old mtime again: only the bytes tell
  const gen = verifiedFileBytes(file, expected, checked.identity);
  await assert.rejects(drain(gen), (err: unknown) => err instanceof CacheDamageError && err.message === `the layer cache is damaged: ${file} changed while it was read`);
});

test('a layer whose blob another build touches between two reads gives its bytes both times', async () => {
  const { file, bytes, expected } = await blob(300);
  const layerBlob = { ...expected, diffId: expected.digest, uncompressedSize: expected.size, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
  const layer = checkedCacheLayer(layerBlob, file, {} as LayerCache, undefined);
  assert.ok((await buffer(layer.open())).equals(bytes));
  assert.equal(layer.fileVerified?.(), true);
  touchAt(file, 5_000_000);
  assert.equal(layer.fileVerified?.(), false, 'touched: an output hashes it again before linking it');
  assert.ok((await buffer(layer.open())).equals(bytes));
});
