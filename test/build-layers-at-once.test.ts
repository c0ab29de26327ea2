// How many layers a build writes at once by default (build/layers.ts): one per core, and for
// zstd with node:zlib one more, on the main thread, beside its worker's (its frames compress on
// the thread pool).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layersAtOnce } from '../builder/build/layers.js';

test('a zstd build with node:zlib\'s encoder writes one layer more than it has cores', () => {
  assert.equal(layersAtOnce('zstd', 2, true), 3);
  assert.equal(layersAtOnce('zstd', 1, true), 2);
});

test('a zstd build with the WebAssembly encoder (compressing on the writing threads) writes one layer per core', () => {
  assert.equal(layersAtOnce('zstd', 2, false), 2);
});

test('gzip and uncompressed builds write one layer per core', () => {
  assert.equal(layersAtOnce('gzip', 2, true), 2);
  assert.equal(layersAtOnce('none', 4, true), 4);
});
