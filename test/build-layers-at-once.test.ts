// How many layers a build writes at once by default (build/layers.ts): one per core, and for
// zstd one more, on the main thread, beside its worker's (its frames compress on the thread pool).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layersAtOnce } from '../builder/build/layers.js';

test('a zstd build writes one layer more than it has cores', () => {
  assert.equal(layersAtOnce('zstd', 2), 3);
  assert.equal(layersAtOnce('zstd', 1), 2);
});

test('gzip and uncompressed builds write one layer per core', () => {
  assert.equal(layersAtOnce('gzip', 2), 2);
  assert.equal(layersAtOnce('none', 4), 4);
});
