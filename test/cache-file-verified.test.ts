// A cache layer written by this process says its file is verified (an OCI layout output then
// links it without hashing it again) only while the file is the one hashed: same inode, size and
// times (mtime, ctime). A layer from an earlier run is verified once read through its checked stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import type { LayerCache } from '../builder/cache/layer-cache.js';
import { checkedCacheLayer } from '../builder/cache/layer-source.js';
import { fileIdentity } from '../builder/cache/checked-blob.js';
import type { LayerBlob } from '../builder/layer/types.js';
import { tempDir } from './helpers/tmp.js';

async function blobFile(bytes: string): Promise<{ file: string; blob: LayerBlob }> {
  const file = join(await tempDir('imgbuild-verified-'), 'blob');
  await writeFile(file, bytes);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as const;
  return { file, blob: { digest, diffId: digest, size: Buffer.byteLength(bytes), uncompressedSize: Buffer.byteLength(bytes), mediaType: 'application/vnd.oci.image.layer.v1.tar' } };
}

/** No maker and no cache: a damaged file is an error, never made again (not needed here). */
const noCache = {} as LayerCache;

test('a layer written by this process is verified while its file is unchanged; an edit in place (new mtime) ends it', async () => {
  const { file, blob } = await blobFile('layer bytes');
  const layer = checkedCacheLayer(blob, file, noCache, undefined, undefined, fileIdentity(file));
  assert.equal(layer.fileVerified?.(), true);
  await writeFile(file, 'LAYER BYTES');
  await utimes(file, new Date(5_000_000), new Date(5_000_000));
  assert.equal(layer.fileVerified?.(), false);
});

test('a layer from an earlier run is not verified until read through its checked stream; a removed file is not verified', async () => {
  const { file, blob } = await blobFile('cached bytes');
  const layer = checkedCacheLayer(blob, file, noCache, undefined);
  assert.equal(layer.fileVerified?.(), false);
  assert.equal(await text(layer.open()), 'cached bytes');
  assert.equal(layer.fileVerified?.(), true);
  await writeFile(file, ''); // truncated: another size
  assert.equal(layer.fileVerified?.(), false);
});
