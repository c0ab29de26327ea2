import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng } from '../bench/layering-random-graph.js';
import { nameRanks, NameKeys } from '../layering/name-sort.js';
import { autoKeyRanks, compareAutoPathKey, compareStrings, popularityNameKey } from '../layering/path-order.js';

/**
 * Paths over a small alphabet around the characters the key orders hinge on: `-` (the split),
 * `+` and `,` (just below `-`), `.` and `/` (just above), NUL, and code units above ASCII; many
 * share prefixes, some have no `-`, an empty name or an empty hash part.
 */
function paths(seed: number, count: number): string[] {
  const rand = prng(seed);
  const alphabet = ['-', '-', '+', ',', '.', '/', '\0', 'a', 'b', 'a', 'b', 'z', '0', '9', '\u00e9', '\uffff', '\ud83d'];
  const out = new Set<string>();
  const prefixes = ['/nix/store/', '/nix/store/abc-', 'lib', ''];
  while (out.size < count) {
    let p = prefixes[Math.floor(rand() * prefixes.length)]!;
    const len = Math.floor(rand() * 9);
    for (let i = 0; i < len; i++) p += alphabet[Math.floor(rand() * alphabet.length)];
    if (p !== '') out.add(p);
  }
  return [...out];
}

const byIndexOrder = (ps: string[], rank: Int32Array) => ps.map((_, i) => i).sort((a, b) => rank[a]! - rank[b]!);

for (const [seed, count] of [
  [1, 5],
  [2, 40],
  [3, 300],
  [4, 3000],
] as const) {
  const ps = paths(seed, count);
  const index = ps.map((_, i) => i);

  test(`name keys, ${count} paths: popularity order equals comparing popularityNameKey strings`, () => {
    const keys = ps.map(popularityNameKey);
    assert.deepEqual(byIndexOrder(ps, nameRanks(ps, 'popularity')), [...index].sort((a, b) => compareStrings(keys[a]!, keys[b]!)));
  });

  test(`name keys, ${count} paths: auto order equals compareAutoPathKey`, () => {
    assert.deepEqual(byIndexOrder(ps, nameRanks(ps, 'auto')), [...index].sort((a, b) => compareAutoPathKey(ps[a]!, ps[b]!)));
  });

  test(`name keys, ${count} paths: auto-nul ranks equal autoKeyRanks`, () => {
    assert.deepEqual(nameRanks(ps, 'auto-nul'), autoKeyRanks(ps));
  });
}

test('name keys: shared auto ranks agree with compareAutoPathKey on every pair, ties ("lib" and "lib-") included', () => {
  const ps = [...paths(5, 200), 'lib', 'lib-', 'x', 'x-', '-x', '-'];
  const rank = nameRanks(ps, 'auto', 'shared');
  assert.equal(rank[ps.indexOf('lib')], rank[ps.indexOf('lib-')]);
  for (let a = 0; a < ps.length; a++) {
    for (let b = 0; b < ps.length; b++) assert.equal(Math.sign(rank[a]! - rank[b]!), Math.sign(compareAutoPathKey(ps[a]!, ps[b]!)), `${ps[a]} vs ${ps[b]}`);
  }
});

// Without NUL, nameRanks sorts key strings (a plain string comparison) for `auto` too; with one,
// it keeps the multikey sort, whose tuple separator sorts below NUL. Both must give the same ranks.
for (const [seed, count] of [
  [6, 40],
  [7, 3000],
] as const) {
  const ps = paths(seed, count).map((p) => p.replaceAll('\0', '.'));
  const unique = [...new Set(ps)];
  const index = unique.map((_, i) => i);

  test(`name keys, ${unique.length} paths without NUL: auto order (string keys) equals compareAutoPathKey`, () => {
    assert.deepEqual(byIndexOrder(unique, nameRanks(unique, 'auto')), [...index].sort((a, b) => compareAutoPathKey(unique[a]!, unique[b]!)));
  });

  test(`name keys, ${unique.length} paths without NUL: every shape's ranks equal the multikey sort's`, () => {
    for (const shape of ['popularity', 'auto', 'auto-nul'] as const) {
      const order = Int32Array.from(index);
      new NameKeys(unique, shape).sort(order);
      const rank = new Int32Array(unique.length);
      order.forEach((v, r) => (rank[v] = r));
      assert.deepEqual(nameRanks(unique, shape), rank, shape);
    }
  });
}

test('name keys: shared auto ranks without NUL (string keys) agree with compareAutoPathKey on every pair, ties included', () => {
  const ps = [...new Set([...paths(8, 200).map((p) => p.replaceAll('\0', 'a')), 'lib', 'lib-', 'x', 'x-', '-x', '-'])];
  const rank = nameRanks(ps, 'auto', 'shared');
  assert.equal(rank[ps.indexOf('lib')], rank[ps.indexOf('lib-')]);
  for (let a = 0; a < ps.length; a++) {
    for (let b = 0; b < ps.length; b++) assert.equal(Math.sign(rank[a]! - rank[b]!), Math.sign(compareAutoPathKey(ps[a]!, ps[b]!)), `${ps[a]} vs ${ps[b]}`);
  }
});
