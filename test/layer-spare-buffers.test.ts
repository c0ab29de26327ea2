// SpareBuffers: the buffers a thread keeps between the layers it writes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpareBuffers } from '../builder/layer/spare-buffers.js';

test('a buffer given back is the one the next take returns', () => {
  const spare = new SpareBuffers(64, 4, 60_000);
  const b = spare.take();
  assert.equal(b.length, 64);
  spare.give([b]);
  assert.equal(spare.take(), b);
});

test('at most max buffers are kept, and only those of the pool size', () => {
  const spare = new SpareBuffers(64, 2, 60_000);
  spare.give([Buffer.alloc(64), Buffer.alloc(32), Buffer.alloc(64), Buffer.alloc(64)]);
  assert.equal(spare.count, 2);
});

test('a take of another size gets a new buffer of that size and leaves the kept ones', () => {
  const spare = new SpareBuffers(64, 2, 60_000);
  spare.give([Buffer.alloc(64)]);
  assert.equal(spare.take(10).length, 10);
  assert.equal(spare.count, 1);
});

test('kept buffers are dropped once none was given back for idleMs', async () => {
  const spare = new SpareBuffers(64, 2, 5);
  spare.give([Buffer.alloc(64)]);
  assert.equal(spare.count, 1);
  await sleep(100);
  assert.equal(spare.count, 0);
});
