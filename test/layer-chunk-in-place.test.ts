// A compressing sink's tar chunks are built in its compressor's own buffers (blob-sinks.ts
// `chunkBuffer`) and compressed where they are: the bytes must be those of chunks copied in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockDeflater, DEFLATE_BLOCK_SIZE } from '../builder/layer/gzip.js';
import { createSink } from '../builder/layer/blob-sinks.js';
import { TarChunker } from '../builder/layer/tar-chunker.js';
import { FrameZstd, ZSTD_FRAME_SIZE, wasmZstdEncoder, nativeZstdEncoder } from '../builder/layer/zstd.js';
import { wordCorpus } from './helpers/payload.js';

/** `input` in whole chunks of `size` (and a shorter last one), each built in `lend()` as a tar chunker would. */
async function inPlace(input: Buffer, size: number, lend: () => Buffer, write: (chunk: Buffer) => Promise<void>): Promise<Buffer[]> {
  const lent: Buffer[] = [];
  for (let off = 0; off < input.length; off += size) {
    const buf = lend();
    assert.equal(buf.length, size);
    lent.push(buf);
    const n = Math.min(size, input.length - off);
    input.copy(buf, 0, off, off + n);
    await write(buf.subarray(0, n));
  }
  return lent;
}

test('gzip blocks built in the deflater’s block buffer give the bytes of copied chunks; each whole block is deflated where it was built', async () => {
  const input = wordCorpus(5 * DEFLATE_BLOCK_SIZE + 12_345);
  const copied: Buffer[] = [];
  const a = new BlockDeflater((o) => copied.push(Buffer.from(o)));
  for (let off = 0; off < input.length; off += 100_000) await a.write(input.subarray(off, off + 100_000));
  await a.end();
  const built: Buffer[] = [];
  const b = new BlockDeflater((o) => built.push(Buffer.from(o)));
  const lent = await inPlace(input, DEFLATE_BLOCK_SIZE, () => b.blockBuffer(), (c) => b.write(c));
  await b.end();
  assert.ok(Buffer.concat(built).equals(Buffer.concat(copied)));
  // After a whole block the deflater lends another buffer (it keeps the one written, no copy).
  assert.notEqual(lent[0]!.buffer, lent[1]!.buffer);
});

test('zstd frames built in the stream’s piece give the bytes of copied chunks; each whole piece is compressed where it was built', async (t) => {
  const encoder = nativeZstdEncoder() ?? (await wasmZstdEncoder());
  t.diagnostic(encoder.name);
  const input = wordCorpus(2 * ZSTD_FRAME_SIZE + 54_321);
  const copied: Buffer[] = [];
  const a = new FrameZstd((o) => copied.push(Buffer.from(o)), Promise.resolve(encoder));
  for (let off = 0; off < input.length; off += 300_000) await a.write(input.subarray(off, off + 300_000));
  await a.end();
  const built: Buffer[] = [];
  const b = new FrameZstd((o) => built.push(Buffer.from(o)), Promise.resolve(encoder));
  const lent = await inPlace(input, ZSTD_FRAME_SIZE, () => b.pieceBuffer(), (c) => b.write(c));
  await b.end();
  assert.ok(Buffer.concat(built).equals(Buffer.concat(copied)));
  assert.notEqual(lent[0]!.buffer, lent[1]!.buffer);
});

test('a buffer is lent only between units: with bytes of a unit already written, asking for it throws', async () => {
  const d = new BlockDeflater(() => {});
  await d.write(Buffer.from('partial block'));
  assert.throws(() => d.blockBuffer(), RangeError);
  const sink = createSink('gzip', () => {});
  assert.equal(sink.chunkSize, DEFLATE_BLOCK_SIZE);
  const zstd = createSink('zstd', () => {});
  assert.equal(zstd.chunkSize, ZSTD_FRAME_SIZE);
  zstd.abandon();
  // An uncompressed layer's chunks are hashed and written as they are: nothing to lend.
  assert.equal(createSink('none', () => {}).chunkBuffer, undefined);
  sink.abandon();
  // The tar chunker takes a buffer of its chunk size, between chunks only.
  const tar = new TarChunker({ mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, 1024, Buffer.alloc(1024));
  assert.throws(() => new TarChunker({ mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, 1024, Buffer.alloc(512)), RangeError);
  assert.equal(tar.tryAdd({ kind: 'directory', path: 'etc', mode: 0o755 }), true);
  assert.throws(() => tar.replaceBuffer(Buffer.alloc(1024)), RangeError);
});
