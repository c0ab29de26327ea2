import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RefScanner } from '../builder/store/ref-scanner.js';
import { xorshift32 } from './helpers/random.js';

const H1 = '0123456789abcdfghijklmnpqrsvwxyz';
const H2 = 'zyxwvsrqpnmlkjihgfdcba9876543210';
const targets = new Set([H1, H2]);

function scan(chunks: Array<string | Buffer>): RefScanner {
  const s = new RefScanner(targets);
  for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  return s;
}

test('finds a hash part delimited by other bytes', () => {
  assert.deepEqual([...scan([`/nix/store/${H1}-hello/bin`]).found], [H1]);
});

test('finds nothing when only 31 characters of a hash part are present', () => {
  assert.deepEqual([...scan([`/nix/store/${H1.slice(1)}-x ${H1.slice(0, 31)}`]).found], []);
});

test('finds a hash part split at every possible position between two pushes', () => {
  const text = `..${H1}..`;
  for (let cut = 0; cut <= text.length; cut++) {
    assert.deepEqual([...scan([text.slice(0, cut), text.slice(cut)]).found], [H1], `cut at ${cut}`);
  }
});

test('finds a hash part pushed one byte at a time', () => {
  assert.deepEqual([...scan([...`x${H2}x`]).found], [H2]);
});

test('finds hash parts anywhere inside a long run of base32 characters, even overlapping', () => {
  // H1 followed directly by H2, then H1 again overlapping H2's tail: every window is tried.
  const run = `${H1}${H2}`;
  assert.deepEqual([...scan([`aaa${run}aaa`]).found].sort(), [H1, H2].sort());
  assert.deepEqual([...scan([`00000${H2}00000`]).found], [H2]);
});

test('finds a hash part whose run began several small pushes earlier', () => {
  const text = `--${H1}--`;
  const pieces = [text.slice(0, 5), text.slice(5, 12), text.slice(12, 20), text.slice(20, 33), text.slice(33)];
  assert.deepEqual([...scan(pieces).found], [H1]);
});

test('upper-case letters and excluded letters (e o u t) break a window', () => {
  assert.deepEqual([...scan([H1.toUpperCase(), ' ', H1.replace('a', 'e')]).found], []);
});

test('binary data around a hash part does not matter', () => {
  const bin = Buffer.alloc(4096);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 131) & 0xff;
  const s = scan([bin, Buffer.from(H2), bin]);
  assert.deepEqual([...s.found], [H2]);
});

test('every distinct window is remembered (for the cache) until the limit, then only matches', () => {
  const s = new RefScanner(targets, 2);
  s.push(Buffer.from(`${H1} ${'a'.repeat(32)}`));
  assert.deepEqual([...(s.windows ?? [])].sort(), [H1, 'a'.repeat(32)].sort());
  s.push(Buffer.from(` ${'b'.repeat(32)} ${H2}`));
  assert.equal(s.windows, undefined);
  assert.deepEqual([...s.found].sort(), [H1, H2].sort());
});

test('agrees with a naive every-window search on random data cut into random chunks', () => {
  // Seeded xorshift: the same cases on every run.
  const next = xorshift32(0x9e3779b9);
  const rnd = (n: number): number => next() % n;
  const alphabet = '0123456789abcdfghijklmnpqrsvwxyz';
  const hashes = Array.from({ length: 6 }, () => Array.from({ length: 32 }, () => alphabet[rnd(32)]).join(''));
  const set = new Set(hashes.slice(0, 4)); // two of them are never looked for
  let matches = 0;
  for (let round = 0; round < 200; round++) {
    // Mostly base32 characters, so long runs and near-misses are common.
    const parts: string[] = [];
    while (parts.join('').length < 400) {
      const r = rnd(10);
      if (r < 2) parts.push(hashes[rnd(hashes.length)]!);
      else if (r < 8) parts.push(alphabet[rnd(32)]!.repeat(1 + rnd(3)));
      else parts.push(String.fromCharCode(rnd(256)));
    }
    const data = Buffer.from(parts.join(''), 'latin1');
    const expected = new Set<string>();
    for (let i = 0; i + 32 <= data.length; i++) {
      const w = data.toString('latin1', i, i + 32);
      if (set.has(w)) expected.add(w);
    }
    const s = new RefScanner(set);
    for (let i = 0; i < data.length; ) {
      const n = 1 + rnd(70);
      s.push(data.subarray(i, i + n));
      i += n;
    }
    assert.deepEqual([...s.found].sort(), [...expected].sort(), `round ${round}`);
    matches += expected.size;
  }
  assert.ok(matches > 200, `the cases must contain hash parts to find (found ${matches})`);
});
