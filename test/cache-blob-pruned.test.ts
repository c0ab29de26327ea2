// A cached blob removed after the build's lookup found it (`cache prune` running beside the
// build) is missing, not an error: it is made again from the store into the cache and read from
// there, with no "damaged" message. The removal is done between the lookup and the read, in turn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { LayerCache } from '../builder/cache/layer-cache.js';
import { cachedLayer, type LayerMaker } from '../builder/cache/layer-source.js';
import type { LayerBlob } from '../builder/layer/types.js';
import { tempDir } from './helpers/tmp.js';

const BYTES = Buffer.from('the layer bytes, as the store makes them');
const DIGEST = `sha256:${createHash('sha256').update(BYTES).digest('hex')}` as const;
const BLOB: LayerBlob = { digest: DIGEST, diffId: DIGEST, size: BYTES.length, uncompressedSize: BYTES.length, mediaType: 'application/vnd.oci.image.layer.v1.tar' };

/** A maker of BLOB that counts its writes into the cache. */
function maker(): LayerMaker & { writes: number } {
  const m = {
    writes: 0,
    key: async () => 'e'.repeat(64),
    write: async (blobs: LayerCache['blobs']) => {
      m.writes++;
      await blobs.putBytes(BYTES, DIGEST);
      return BLOB;
    },
    measure: async () => assert.fail('not measured'),
    stream: () => assert.fail('not streamed'),
  };
  return m;
}

/** A cache holding BLOB and its record, as an earlier build left it. */
async function warmCache(): Promise<LayerCache> {
  const cache = new LayerCache(join(await tempDir('imgbuild-pruned-'), 'cache'));
  await cachedLayer(maker(), cache);
  return cache;
}

test('a blob removed between the lookup and the first read is made again from the store and read', async () => {
  const cache = await warmCache();
  const m = maker();
  const repaired: string[] = [];
  const made = await cachedLayer(m, cache, { repaired: (msg) => repaired.push(msg) });
  assert.equal(made.origin, 'cached');
  rmSync(made.layer.file!);
  assert.deepEqual(await buffer(made.layer.open()), BYTES);
  assert.deepEqual({ writes: m.writes, repaired, there: existsSync(cache.blobs.path(DIGEST)) }, { writes: 1, repaired: [], there: true });
});

test('a blob removed after it was hashed and before it is read again is made again from the store and read', async () => {
  const cache = await warmCache();
  const m = maker();
  const made = await cachedLayer(m, cache);
  assert.deepEqual(await buffer(made.layer.open()), BYTES);
  assert.equal(m.writes, 0);
  rmSync(made.layer.file!);
  assert.equal(made.layer.fileVerified?.(), false);
  assert.deepEqual(await buffer(made.layer.open()), BYTES);
  assert.equal(m.writes, 1);
});
