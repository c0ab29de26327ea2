// The per-node reads of a split scan (store/split-read.ts), on a hand-made share: a node listed
// as a regular file is opened and fstat-ed (one lookup of its path), so what is there now, not
// what the listing saw, decides; anything but a regular file gives the split up (the plain
// scan then says what it is), and never waits on a fifo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CHUNK_NODES, DONE, FAILED, KIND, LISTED, LISTING_DONE, PER_NODE, PRE_READ_MAX, SplitReader, type SplitShare } from '../builder/store/split-read.js';
import { runCommand } from './helpers/cli.js';
import { nodeBinaries } from './helpers/nodes.js';
import { repoRoot } from './helpers/paths.js';
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
    assert.deepEqual([...values.subarray(PER_NODE * i, PER_NODE * (i + 1))], [st.mode, st.size, st.mtimeMs, st.ctimeMs, st.ino]);
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

/** Run by each Node: whether the fstat fast path is taken, and what it answers for a file, an executable, a directory and a closed descriptor. */
const FSTAT_PROBE = `
import { fstatSync, openSync, closeSync } from 'node:fs';
const { fastFstatValues } = await import(process.argv[1]);
const dir = process.argv[2];
const probe = openSync(dir + '/file', 'r');
const fast = fastFstatValues(probe, fstatSync);
closeSync(probe);
const out = { taken: fast !== undefined };
if (fast) {
  out.nodes = ['/file', '/tool', ''].map((n) => { const fd = openSync(dir + n, 'r'); const v = new Float64Array(${PER_NODE}); const file = fast(fd, v, 0); closeSync(fd); return [file, ...v]; });
  try { fast(probe, new Float64Array(${PER_NODE}), 0); out.closed = 'no error'; } catch (e) { out.closed = e.code; }
}
process.stdout.write(JSON.stringify(out));
`;

test('Node 20 fstats without a Stats object and answers as fstatSync does, to the bit; Node 22 and 24 keep fstatSync', async () => {
  const dir = await tempDir('imgbuild-split-read-');
  writeFileSync(join(dir, 'file'), 'some bytes');
  utimesSync(join(dir, 'file'), 1_700_000_000.123456, 1_600_000_000.987654);
  writeFileSync(join(dir, 'tool'), '#!/bin/sh\n');
  chmodSync(join(dir, 'tool'), 0o755);
  const module = pathToFileURL(join(repoRoot, 'dist/builder/store/lstat-values.js')).href;
  const values = (p: string) => {
    const st = lstatSync(p);
    return [st.mode, st.size, st.mtimeMs, st.ctimeMs, st.ino];
  };
  for (const [major, node] of await nodeBinaries()) {
    const r = await runCommand(node, ['--input-type=module', '-e', FSTAT_PROBE, module, dir]);
    assert.equal(r.code, 0, `Node ${major}: ${r.stderr}`);
    const got = JSON.parse(r.stdout.toString());
    if (major !== '20') {
      assert.deepEqual(got, { taken: false }, `Node ${major}`);
      continue;
    }
    assert.deepEqual(got, {
      taken: true,
      nodes: [
        [true, ...values(join(dir, 'file'))],
        [true, ...values(join(dir, 'tool'))],
        [false, ...values(dir)],
      ],
      closed: 'EBADF',
    });
  }
});
