// The per-node reads of a split scan (store/split-read.ts), on a hand-made share: a node listed
// as a regular file is opened and fstat-ed (one lookup of its path), so what is there now, not
// what the listing saw, decides; anything but a regular file gives the split up (the plain
// scan then says what it is), and never waits on a fifo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHUNK_NODES, DONE, FAILED, KIND, LISTED, LISTING_DONE, PER_NODE, PRE_READ_MAX, SplitReader, type SplitShare } from '../builder/store/split-read.js';
import { tempDir } from './helpers/tmp.js';

/** A share of `root` and its entries `names`, each listed with `kind`, as the listing thread publishes them. */
function share(root: string, names: string[], kind: number): SplitShare {
  const nodes = names.length + 1;
  const nameBytes = Buffer.from(names.join(''), 'latin1');
  const s: SplitShare = {
    root,
    names: new SharedArrayBuffer(Math.max(1, nameBytes.length)),
    nameEnds: new SharedArrayBuffer(4 * nodes),
    parents: new SharedArrayBuffer(4 * nodes),
    kinds: new SharedArrayBuffer(nodes),
    values: new SharedArrayBuffer(8 * PER_NODE * nodes),
    places: new SharedArrayBuffer(8 * nodes),
    ctl: new SharedArrayBuffer(16),
    chunks: new SharedArrayBuffer(4 * Math.ceil(nodes / CHUNK_NODES)),
    owners: new SharedArrayBuffer(Math.ceil(nodes / CHUNK_NODES)),
    areas: [new SharedArrayBuffer(1 << 20)],
  };
  Buffer.from(s.names).set(nameBytes);
  const ends = new Int32Array(s.nameEnds);
  const parents = new Int32Array(s.parents);
  const kinds = new Uint8Array(s.kinds);
  kinds[0] = KIND.DIR;
  parents[0] = -1;
  let at = 0;
  names.forEach((name, k) => {
    at += name.length;
    ends[k + 1] = at;
    parents[k + 1] = 0;
    kinds[k + 1] = kind;
  });
  const ctl = new Int32Array(s.ctl);
  ctl[LISTED] = nodes;
  ctl[LISTING_DONE] = 1;
  return s;
}

test('a node listed as a regular file has its lstat values and bytes, read through one open', async () => {
  const dir = await tempDir('imgbuild-split-read-');
  writeFileSync(join(dir, 'a'), 'tiny file');
  writeFileSync(join(dir, 'b'), Buffer.alloc(PRE_READ_MAX + 1, 7));
  const s = share(dir, ['a', 'b'], KIND.FILE);
  assert.equal(new SplitReader(s, 0, ['', 'a', 'b']).chunk(0), true);
  assert.equal(new Int32Array(s.chunks)[0], DONE);
  const values = new Float64Array(s.values);
  for (const [i, name] of [[1, 'a'], [2, 'b']] as const) {
    const st = lstatSync(join(dir, name));
    assert.deepEqual([...values.subarray(PER_NODE * i, PER_NODE * (i + 1))], [st.mode, st.size, st.mtimeMs, st.ctimeMs]);
  }
  const places = new Int32Array(s.places);
  assert.equal(Buffer.from(s.areas[0]!, places[2], places[3]).toString(), 'tiny file');
  // Over the pre-read size: left to the NAR's dump.
  assert.equal(places[4], -1);
});

for (const [what, make] of [
  ['a fifo', (p: string) => execFileSync('mkfifo', [p])],
  ['a symlink to a file', (p: string) => symlinkSync('a', p)],
  ['a directory', (p: string) => mkdirSync(p)],
] as const) {
  test(`a node listed as a regular file that is now ${what} gives the split up, without waiting`, async () => {
    const dir = await tempDir('imgbuild-split-read-');
    writeFileSync(join(dir, 'a'), 'a file');
    make(join(dir, 'x'));
    const s = share(dir, ['x'], KIND.FILE);
    assert.equal(new SplitReader(s, 0, ['', 'x']).chunk(0), false);
    assert.equal(new Int32Array(s.chunks)[0], FAILED);
  });
}

test('a node listed as a regular file that is gone gives the split up', async () => {
  const dir = await tempDir('imgbuild-split-read-');
  const s = share(dir, ['gone'], KIND.FILE);
  assert.equal(new SplitReader(s, 0, ['', 'gone']).chunk(0), false);
  assert.equal(new Int32Array(s.chunks)[0], FAILED);
});
