// The pure parts of diff: how layers of two images are paired, and how JSON fields are compared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignLayers, type LayerKey, type LayerPairing } from '../builder/repro/align-layers.js';
import { diffJson } from '../builder/repro/json-diff.js';

/** Layers named by content: `A` has diff_id `A`, digest `gz:A` unless given as `A/x` (digest `x`). */
function layers(spec: string): LayerKey[] {
  return spec.split(' ').filter(Boolean).map((s, index) => {
    const [content, digest] = s.split('/');
    return { index, diffId: content!, digest: digest ?? `gz:${content}` };
  });
}

/** Pairings as short strings: `A=A` same, `B~C` compared, `-B` removed, `+D` added. */
function show(p: LayerPairing[]): string[] {
  return p.map((x) => (x.kind === 'same' ? `${x.a.diffId}@${x.a.index}=${x.b.diffId}@${x.b.index}` : x.kind === 'paired' ? `${x.a.diffId}~${x.b.diffId}` : x.kind === 'removed' ? `-${x.a.diffId}` : `+${x.b.diffId}`));
}

test('equal lists pair position by position', () => {
  assert.deepEqual(show(alignLayers(layers('A B C'), layers('A B C'))), ['A@0=A@0', 'B@1=B@1', 'C@2=C@2']);
});

test('one changed layer is paired with the layer in its place', () => {
  assert.deepEqual(show(alignLayers(layers('A B C'), layers('A X C'))), ['A@0=A@0', 'B~X', 'C@2=C@2']);
});

test('a layer inserted at the bottom shifts nothing: the rest still pair by content', () => {
  assert.deepEqual(show(alignLayers(layers('A B C'), layers('Z A B C'))), ['+Z', 'A@0=A@1', 'B@1=B@2', 'C@2=C@3']);
});

test('a removed layer in the middle is removed, not a chain of changes', () => {
  assert.deepEqual(show(alignLayers(layers('A B C D'), layers('A C D'))), ['A@0=A@0', '-B', 'C@2=C@1', 'D@3=D@2']);
});

test('an extra layer on top is added', () => {
  assert.deepEqual(show(alignLayers(layers('A B'), layers('A B E'))), ['A@0=A@0', 'B@1=B@1', '+E']);
});

test('swapped layers pair by content (moved), not by position', () => {
  assert.deepEqual(show(alignLayers(layers('A B C'), layers('A C B'))), ['A@0=A@0', 'C@2=C@1', 'B@1=B@2']);
});

test('same content, other compression: paired as same content (the digest tells them apart later)', () => {
  const p = alignLayers(layers('A B'), layers('A B/other'));
  assert.deepEqual(show(p), ['A@0=A@0', 'B@1=B@1']);
  assert.equal(p[1]!.kind === 'same' && p[1]!.b.digest, 'other');
});

test('more changed layers on one side: pairs in order within the gap, the rest added', () => {
  assert.deepEqual(show(alignLayers(layers('A B C'), layers('A X Y C'))), ['A@0=A@0', 'B~X', '+Y', 'C@2=C@3']);
});

test('JSON: object fields by key, missing ones on one side, nested paths', () => {
  assert.deepEqual(diffJson({ a: 1, b: { c: 2, d: 3 }, e: 'x' }, { a: 1, b: { c: 5 }, f: true }), [
    { path: 'b.c', a: 2, b: 5 },
    { path: 'b.d', a: 3 },
    { path: 'e', a: 'x' },
    { path: 'f', b: true },
  ]);
});

test('JSON: Env compared by variable, wherever the entry sits', () => {
  assert.deepEqual(diffJson({ config: { Env: ['A=1', 'PATH=/bin', 'B=2'] } }, { config: { Env: ['PATH=/usr/bin', 'A=1', 'C=3'] } }), [
    { path: 'config.Env[B]', a: '2' },
    { path: 'config.Env[C]', b: '3' },
    { path: 'config.Env[PATH]', a: '/bin', b: '/usr/bin' },
  ]);
});

test('JSON: Env with the same entries in another order is still a difference (the bytes differ)', () => {
  assert.deepEqual(diffJson({ Env: ['A=1', 'B=2'] }, { Env: ['B=2', 'A=1'] }), [{ path: 'Env', a: ['A=1', 'B=2'], b: ['B=2', 'A=1'] }]);
});

test('JSON: Cmd and other arrays of strings compare whole; arrays of objects entry by entry', () => {
  assert.deepEqual(diffJson({ Cmd: ['/bin/sh', '-c', 'a'] }, { Cmd: ['/bin/sh', '-c', 'b'] }), [{ path: 'Cmd', a: ['/bin/sh', '-c', 'a'], b: ['/bin/sh', '-c', 'b'] }]);
  assert.deepEqual(diffJson({ history: [{ created_by: 'x' }] }, { history: [{ created_by: 'y' }, { created_by: 'z' }] }), [
    { path: 'history[0].created_by', a: 'x', b: 'y' },
    { path: 'history[1]', b: { created_by: 'z' } },
  ]);
});
