import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNarTree, type NarNode } from '../builder/store/nar.js';
import { FingerprintText, fingerprintTree, treeFingerprint } from '../builder/store/tree-fingerprint.js';
import { createHash } from 'node:crypto';
import { writeTree } from './helpers/nix.js';

function tempRoot(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-fingerprint-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The digest both ways: off the disk directly, and from the tree a scan reads. */
async function both(path: string): Promise<{ walked: string; fromTree: string }> {
  return { walked: fingerprintTree(path), fromTree: treeFingerprint(await readNarTree(path)) };
}

/**
 * A tree whose names need every branch of the walk: ASCII directories (walked on string paths,
 * the top one included), and under `names/` UTF-8 names, names that are not UTF-8 at all, an
 * astral character (UTF-16 and byte order disagree) and a symlink target that is not UTF-8
 * (walked on bytes).
 */
const RAW_DIR = Buffer.from([0xff, 0x64, 0x69, 0x72]);

function rawPath(root: string, rel: string, raw: Buffer, after = ''): Buffer {
  return Buffer.concat([Buffer.from(`${root}/${rel}`), raw, Buffer.from(after)]);
}

function variedTree(root: string): void {
  writeTree(root, {
    'bin/run': { content: '#!/bin/sh\necho run\n', executable: true },
    'empty-file': '',
    'empty-dir': { dir: true },
    'nested/deeper/leaf': 'leaf',
    'link-rel': { symlink: 'nested/deeper/leaf' },
    'link-dangling': { symlink: 'does-not-exist' },
    B: 'capital sorts first',
    'a.b': 'dot',
    'a-b': 'dash',
    'names/ünïcode/inside': 'utf-8 directory name',
    'names/z\u{1F600}': 'astral: after U+FFFD in bytes, before it in UTF-16 units',
    'names/z\uFFFD': 'U+FFFD itself',
    'names/plain': 'ascii beside the others',
  });
  writeFileSync(rawPath(root, 'nested/', Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0xe9])), 'a name that is not UTF-8');
  mkdirSync(rawPath(root, 'names/', RAW_DIR));
  writeFileSync(rawPath(root, 'names/', RAW_DIR, '/child'), 'under a non-UTF-8 directory');
  symlinkSync(Buffer.from([0x2e, 0x2e, 0x2f, 0xfe]), `${root}/names/link-raw`);
}

test('the walk off the disk gives the digest of the tree a scan reads, for every kind of name, file and link', async (t) => {
  const root = join(tempRoot(t), 'root');
  variedTree(root);
  const { walked, fromTree } = await both(root);
  assert.match(walked, /^[0-9a-f]{64}$/);
  assert.equal(walked, fromTree);
  // Subtrees on their own: ASCII only, walked on bytes, a single file and a single symlink.
  for (const p of [join(root, 'bin'), join(root, 'names'), join(root, 'bin/run'), join(root, 'link-rel')]) {
    const one = await both(p);
    assert.equal(one.walked, one.fromTree, p);
  }
});

test('the fingerprint hashes each file\'s size, times and inode number, spelt as the format says', () => {
  // Scan records (version 7 on), closure records and layer keys hold such digests: a change to
  // the text changes them all (an older record then misses once, never answers wrongly).
  const b = (s: string) => Buffer.from(s, 'latin1');
  const tree: NarNode = {
    type: 'directory',
    entries: [
      [b('bin'), { type: 'directory', entries: [[b('tool'), { type: 'regular', size: 1234, executable: true, mtimeMs: 1000.5, ctimeMs: 1700000000123.25, ino: 4242 }]] }],
      [Buffer.from('café'), { type: 'regular', size: 0, executable: false, mtimeMs: 1, ctimeMs: 2, ino: 7 }],
      [b('\xff\xfe'), { type: 'symlink', target: b('\x80target') }],
      [b('empty'), { type: 'directory', entries: [] }],
      [b('lib'), { type: 'symlink', target: b('../x/lib') }],
    ],
  };
  const text = Buffer.concat([
    b('d5(3:bind1(4:toolrx1234:1000.5:1700000000123.25:4242;)'),
    b('5:'),
    Buffer.from('café'),
    b('r-0:1:2:7;2:\xff\xfel7:\x80target5:emptyd0()3:libl8:../x/lib)'),
  ]);
  assert.equal(treeFingerprint(tree), createHash('sha256').update(text).digest('hex'));
  assert.equal(treeFingerprint(tree), 'aeb6868f8d31b94e3d3c18edd78283a35c547cccb464cbd7d8c600c1a2a4f540');
});

test('every in-place change a store path could undergo changes the fingerprint', async (t) => {
  const root = join(tempRoot(t), 'root');
  variedTree(root);
  const seen = new Set([fingerprintTree(root)]);
  const changed = (what: string) => {
    const now = fingerprintTree(root);
    assert.ok(!seen.has(now), `${what} went unnoticed`);
    seen.add(now);
  };
  const leaf = join(root, 'nested/deeper/leaf');
  const before = statSync(leaf);
  writeFileSync(leaf, 'LEAF');
  utimesSync(leaf, before.atime, before.mtime);
  changed('new content of the same size, mtime put back (ctime moves)');
  utimesSync(leaf, 1000, 1000);
  changed('a new mtime');
  chmodSync(join(root, 'empty-file'), 0o755);
  changed('an executable bit');
  execFileSync('ln', ['-sfn', 'nested/deeper', join(root, 'link-rel')]);
  changed('a symlink pointing elsewhere');
  mkdirSync(join(root, 'empty-dir/sub'));
  changed('a new empty directory');
  execFileSync('mv', [join(root, 'a.b'), join(root, 'a.c')]);
  changed('a renamed file');
  writeFileSync(rawPath(root, 'names/', RAW_DIR, '/child'), 'longer than before, under a non-UTF-8 directory');
  changed('a file under a directory walked by bytes');
});

test('a fifo or a missing path is refused with a StoreError naming it', (t) => {
  const root = join(tempRoot(t), 'root');
  writeTree(root, { f: 'x' });
  execFileSync('mkfifo', [join(root, 'pipe')]);
  assert.throws(() => fingerprintTree(root), {
    name: 'StoreError',
    message: `${join(root, 'pipe')} is neither a regular file, a directory nor a symlink; a store path cannot hold it`,
  });
  assert.throws(() => fingerprintTree(join(root, 'absent')), { name: 'StoreError', message: new RegExp(`^cannot read ${join(root, 'absent')}: ENOENT`) });
});

test('files that share their times, and files that do not, are hashed as each entry written out in full', () => {
  // [executable, size, mtimeMs, ctimeMs, ino]: runs of equal times (a coarse clock; Nix's mtime
  // 1), a change in one time only, fractions, 0 and -0 (both "0"), NaN (never equal to itself),
  // equal and unequal inode numbers (one past 2^53, written as its text).
  const files: Array<[boolean, number, number, number, number]> = [
    [false, 63, 1000, 1796402417409.4199, 12],
    [false, 64, 1000, 1796402417409.4199, 12],
    [true, 64, 1000, 1796402417409.4199, 13],
    [false, 63, 1000, 1796402417413.5, 3000000000],
    [false, 63, 1796402417413.5, 1796402417413.5, 3000000000],
    [false, 1, 0, -0, 0],
    [false, 1, -0, 0, 1],
    [false, 2, NaN, NaN, 2 ** 53 + 2],
    [false, 2, NaN, 1000, 2 ** 53 + 2],
    [false, 3, 1000, 1000, 5],
    // Sizes of every digit count, and numbers that are not safe integers (written as their text).
    [false, 0, 1000, 1000, 5],
    [false, 9, 1000, 1000, 5],
    [false, 10, 1000, 1000, 5],
    [false, 99, 1000, 1000, 5],
    [false, 100, 1000, 1000, 5],
    [false, 12345678901234, 1000, 1000, 5],
    [false, 2 ** 53 - 1, 1000, 1000, 5],
    [false, 2 ** 53 + 2, 1000, 1000, 5],
    [false, 1.5, 1000, 1000, 5],
    [false, -1, 1000, 1000, 5],
  ];
  const out = new FingerprintText();
  let text = '';
  for (const [x, size, m, c, ino] of files) {
    out.regular(x, size, m, c, ino);
    text += `r${x ? 'x' : '-'}${size}:${m}:${c}:${ino};`;
  }
  assert.equal(out.digest(), createHash('sha256').update(text, 'latin1').digest('hex'));
});

test('text, names and targets are hashed as their bytes, across the gathering buffer\'s edge and past its size', () => {
  const out = new FingerprintText();
  const parts: Buffer[] = [];
  const latin1 = Buffer.from([0x6e, 0xe9, 0xff, 0x80]).toString('latin1');
  // 70,000 entries of ~20 bytes: several buffers' worth, pieces straddling each buffer's end.
  for (let i = 0; i < 70_000; i++) {
    out.text(`${i}${latin1}(`);
    parts.push(Buffer.from(`${i}${latin1}(`, 'latin1'));
    const name = Buffer.from([0x61 + (i % 26), 0xfe, i & 0xff]);
    out.name(name);
    parts.push(Buffer.from(`${name.length}:`), name);
    out.latin1Name(name.toString('latin1'));
    parts.push(Buffer.from(`${name.length}:`), name);
  }
  // Pieces bigger than the buffer.
  const long = 'x'.repeat(100_000);
  out.text(long);
  parts.push(Buffer.from(long));
  const target = Buffer.alloc(70_000, 0xc3);
  out.symlink(target);
  parts.push(Buffer.from(`l${target.length}:`), target);
  assert.equal(out.digest(), createHash('sha256').update(Buffer.concat(parts)).digest('hex'));
});
