// Block-parallel gzip: one big layer is deflated in independent 256 KiB blocks on the thread
// pool, and the bytes are the same whatever the concurrency, valid for gzip and umoci.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { deflateRawSync, gunzipSync, inflateRawSync } from 'node:zlib';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { blockDeflateSync, createPinnedDeflate, DEFLATE_BLOCK_SIZE } from '../builder/layer/gzip.js';
import { treeEntries } from '../builder/layer/tree-entries.js';
import type { LayerWriteOptions } from '../builder/layer/types.js';
import { writeLayer } from '../builder/layer/write-layer.js';
import { corpusTree, wordCorpus } from './helpers/payload.js';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Streams `input` through the block deflate in uneven chunks, with at most `maxBlocks` in flight. */
async function streamDeflate(input: Buffer, maxBlocks: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let off = 0, n = 1; off < input.length; off += n, n = (n * 31 + 977) % 400_000) chunks.push(input.subarray(off, off + n));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    createPinnedDeflate({ maxBlocks }),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

test('block deflate gives the same bytes with 1 block in flight and with 8, equal to the one-shot reference, and inflates back', async () => {
  const input = wordCorpus(5 * DEFLATE_BLOCK_SIZE + 12345);
  const one = await streamDeflate(input, 1);
  const eight = await streamDeflate(input, 8);
  assert.deepEqual(eight, one);
  assert.deepEqual(one, blockDeflateSync(input, deflateRawSync));
  assert.deepEqual(inflateRawSync(one), input);
});

test('an input of exactly whole blocks, and an empty input, give valid streams ending in a final block', async () => {
  for (const input of [wordCorpus(2 * DEFLATE_BLOCK_SIZE), Buffer.alloc(0)]) {
    const out = await streamDeflate(input, 3);
    assert.deepEqual(out, blockDeflateSync(input, deflateRawSync));
    assert.deepEqual(inflateRawSync(out), input);
  }
});

test('blocks reach back into the previous block: block mode compresses repeated data across block edges', async () => {
  // 64 KiB of noise repeated: each block's repeats lie partly in the block before.
  const unit = wordCorpus(64 * 1024, 99).map((v, i) => (v * 131 + i) & 0xff);
  const input = Buffer.concat(Array.from({ length: 12 }, () => unit));
  const withDictionary = (await streamDeflate(input, 4)).length;
  const withoutDictionary = [0, 1, 2].reduce((sum, i) => sum + deflateRawSync(input.subarray(i * DEFLATE_BLOCK_SIZE, (i + 1) * DEFLATE_BLOCK_SIZE)).length, 0);
  assert.ok(withDictionary < withoutDictionary, `${withDictionary} < ${withoutDictionary}`);
});

// Golden vector of a layer that spans five blocks (obtained on Node 20.20.2 and checked on 22.23.3
// and 24.21.0: the same bytes).
const MULTI_BLOCK_GOLDEN = {
  diffId: 'sha256:4ffca41dd7575974dd8c3838ce4d62637a258add01719380497447b79b808381',
  digest: 'sha256:3459eaacd64b01d2ac193046918e5680dc00695a2bb9d671dfdd3dbf35a81961',
  size: 397788,
};

function bigTree(): Promise<string> {
  return corpusTree('imgbuild-speed-gz-', [700_000, 300_000, 200_000]);
}

const gzipOptions: LayerWriteOptions = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'gzip' };

test('a multi-block layer has the pinned bytes, and gzip -t / gzip -dc accept it', async (t) => {
  const dir = await bigTree();
  const store = new BlobStore(join(dir, '..', 'blobs'));
  const blob = await writeLayer(treeEntries(dir, 'app'), gzipOptions, store);
  t.diagnostic(JSON.stringify(blob));
  assert.deepEqual({ diffId: blob.diffId, digest: blob.digest, size: blob.size }, MULTI_BLOCK_GOLDEN);
  const gz = await readFile(store.path(blob.digest));
  assert.equal(sha256(gunzipSync(gz)), blob.diffId);
  execFileSync('gzip', ['-t', store.path(blob.digest)]);
  assert.equal(sha256(execFileSync('gzip', ['-dc', store.path(blob.digest)], { maxBuffer: 64 << 20 })), blob.diffId);
});

test('a stalled consumer stops the input after a bounded number of blocks: memory does not grow with the layer', async () => {
  const block = wordCorpus(DEFLATE_BLOCK_SIZE, 5);
  let pulled = 0;
  // 256 MiB of input on offer; nobody reads the output.
  const source = Readable.from(
    (function* () {
      for (let i = 0; i < 1024; i++) {
        pulled += block.length;
        yield block;
      }
    })(),
    { objectMode: false, highWaterMark: 64 * 1024 },
  );
  const deflate = createPinnedDeflate({ maxBlocks: 3 });
  source.pipe(deflate);
  // Let everything that can move move: wait until the count stops changing (deflates finish on the pool).
  let last = -1;
  for (let still = 0; still < 10; ) {
    await new Promise((r) => setTimeout(r, 20));
    still = pulled === last ? still + 1 : 0;
    last = pulled;
  }
  source.destroy();
  deflate.destroy();
  assert.ok(pulled > 0);
  assert.ok(pulled <= 8 * DEFLATE_BLOCK_SIZE, `pulled ${pulled} bytes of input before stalling`);
});
