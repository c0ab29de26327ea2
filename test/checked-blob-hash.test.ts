// hashFile gives the same answer whether a file is hashed by synchronous calls (up to
// SYNC_HASH_MAX bytes: the small blobs of a warm build's layout) or streamed (larger): its
// digest, its size, a size past the limit for a file longer than expected, and the identity of
// the file read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkFile, hashFile, SYNC_HASH_MAX } from '../builder/cache/checked-blob.js';
import { tempDir } from './helpers/tmp.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function fileOf(bytes: Buffer): Promise<string> {
  const file = join(await tempDir('imgbuild-hashfile-'), 'blob');
  await writeFile(file, bytes);
  return file;
}

for (const [what, size] of [
  ['empty', 0],
  ['small (synchronous)', 300],
  ['at the synchronous limit', SYNC_HASH_MAX],
  ['past the synchronous limit (streamed)', SYNC_HASH_MAX + 1],
] as const) {
  test(`hashFile of a file ${what}: its digest, size and identity`, async () => {
    const bytes = Buffer.alloc(size, 'x');
    const file = await fileOf(bytes);
    const st = statSync(file);
    assert.deepEqual(await hashFile(file), { digest: sha(bytes), size, identity: { dev: st.dev, ino: st.ino, size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs } });
  });
}

for (const size of [300, SYNC_HASH_MAX + 4096]) {
  test(`a file of ${size} bytes checked against a shorter expectation is said to hold more`, async () => {
    const bytes = Buffer.alloc(size, 'y');
    const file = await fileOf(bytes);
    const expected = { digest: sha(bytes.subarray(0, 100)) as `sha256:${string}`, size: 100 };
    const got = await hashFile(file, expected.size);
    assert.ok(got.size > expected.size);
    assert.deepEqual(await checkFile(file, expected), { ok: false, why: `holds more than the 100 bytes of ${expected.digest}` });
  });
}

test('a small file checked against its own digest and size is ok; a missing file is a rejection', async () => {
  const bytes = Buffer.from('layer bytes');
  const file = await fileOf(bytes);
  const got = await checkFile(file, { digest: sha(bytes) as `sha256:${string}`, size: bytes.length });
  assert.equal(got.ok, true);
  await assert.rejects(hashFile(`${file}-missing`), { code: 'ENOENT' });
});

test('files of several read buffers, hashed at once and one after the other, each give their own digest (the read buffers are reused)', async () => {
  const sizes = [(1 << 20) * 2 + 12345, (1 << 20) + 1, 3 * (1 << 20)];
  const files = await Promise.all(
    sizes.map(async (size, i) => {
      const bytes = Buffer.alloc(size);
      for (let j = 0; j < size; j++) bytes[j] = (j * 31 + i * 7) & 0xff;
      return { file: await fileOf(bytes), digest: sha(bytes), size };
    }),
  );
  const together = await Promise.all(files.map((f) => hashFile(f.file)));
  assert.deepEqual(together.map((g) => [g.digest, g.size]), files.map((f) => [f.digest, f.size]));
  for (const f of files) assert.equal((await hashFile(f.file)).digest, f.digest);
});
