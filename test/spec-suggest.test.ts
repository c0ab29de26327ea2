import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closestKey, editDistance } from '../builder/spec/suggest.js';

test('edit distance counts insertions, deletions, substitutions and adjacent swaps as one each', () => {
  assert.equal(editDistance('maxLayers', 'maxLayers'), 0);
  assert.equal(editDistance('maxLayer', 'maxLayers'), 1);
  assert.equal(editDistance('maxLayres', 'maxLayers'), 1);
  assert.equal(editDistance('maxLayars', 'maxLayers'), 1);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
});

test('closestKey: case-only differences first, then few edits, then a truncated key; nothing when far', () => {
  const keys = ['name', 'tag', 'maxLayers', 'uid', 'gid', 'pinned', 'os'];
  assert.equal(closestKey('MAXLAYERS', keys), 'maxLayers');
  assert.equal(closestKey('maxLayres', keys), 'maxLayers');
  assert.equal(closestKey('nmae', keys), 'name');
  assert.equal(closestKey('pin', keys), 'pinned');
  assert.equal(closestKey('foo', keys), undefined);
  assert.equal(closestKey('banana', keys), undefined);
  assert.equal(closestKey('xid', keys), 'uid');
});
