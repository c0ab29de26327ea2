// The zstd encoder writes each frame into an output buffer of its own (builder/layer/zstd.ts
// lendOutputBuffer), through two fields of node:zlib's streams that Node does not document:
// these tests pin what it relies on, with the zlib stream of the Node running them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDeflateRaw, deflateRawSync, type Zlib } from 'node:zlib';
import { lendOutputBuffer } from '../builder/layer/zstd.js';
import { wordCorpus } from './helpers/payload.js';

const CHUNK = 256 * 1024;

function deflateInto(input: Buffer, lend: Buffer | undefined): Promise<{ parts: Buffer[]; lent: boolean }> {
  const stream = createDeflateRaw({ chunkSize: CHUNK });
  const lent = lend ? lendOutputBuffer(stream, lend) : false;
  const parts: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('error', reject);
    stream.on('end', () => resolve({ parts, lent }));
    stream.end(input);
  });
}

test('a zlib stream lent an output buffer writes its output there, from its start, with the same bytes', async () => {
  const input = wordCorpus(100_000, 3);
  const buffer = Buffer.alloc(CHUNK, 0xee);
  const { parts, lent } = await deflateInto(input, buffer);
  assert.equal(lent, true);
  assert.ok(parts.length > 0);
  let offset = 0;
  for (const part of parts) {
    assert.equal(part.buffer, buffer.buffer, 'each part is a view of the lent buffer');
    assert.equal(part.byteOffset, buffer.byteOffset + offset, 'parts follow each other from its start');
    offset += part.length;
  }
  assert.deepEqual(Buffer.concat(parts), deflateRawSync(input));
});

test('a buffer of another size than the stream\'s output chunks is not lent (the stream keeps its own)', async () => {
  const input = wordCorpus(10_000, 4);
  const other = Buffer.alloc(CHUNK / 2);
  const { parts, lent } = await deflateInto(input, other);
  assert.equal(lent, false);
  assert.ok(parts.every((p) => p.buffer !== other.buffer));
  assert.deepEqual(Buffer.concat(parts), deflateRawSync(input));
});

test('a stream without those fields is left alone', () => {
  const notZlib = {} as unknown as Zlib;
  assert.equal(lendOutputBuffer(notZlib, Buffer.alloc(CHUNK)), false);
  assert.deepEqual(Object.keys(notZlib), []);
});
