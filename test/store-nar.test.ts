import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nixBase32Decode, nixBase32Encode, isHashPart } from '../builder/store/nix-base32.js';
import { dumpNar, narHashOf, narSize, readNarTree } from '../builder/store/nar.js';
import { parseNarHash, formatNarHashBase32, formatNarHashSri } from '../builder/store/nar-hash.js';
import { needTool } from './helpers/tools.js';
import { writeTree } from './helpers/nix.js';

// "hello\n" as a store path: its NAR hash as `nix path-info --json` (SRI) and `ca` (nix-base32) printed it.
const HELLO_HEX = '1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13';
const HELLO_B32 = '04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw';
const HELLO_SRI = 'sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=';

test('nix-base32 encodes SHA-256 digests as Nix does', () => {
  assert.equal(nixBase32Encode(Buffer.from(HELLO_HEX, 'hex')), HELLO_B32);
  // sha256 of the empty string, as `nix-hash --to-base32` prints it.
  assert.equal(
    nixBase32Encode(Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex')),
    '0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73',
  );
  // 20 bytes → the 32 characters of a store path hash part.
  assert.equal(nixBase32Encode(new Uint8Array(20)).length, 32);
});

test('nix-base32 decoding inverts encoding and refuses bad text', () => {
  assert.equal(Buffer.from(nixBase32Decode(HELLO_B32, 32)!).toString('hex'), HELLO_HEX);
  assert.equal(nixBase32Decode(HELLO_B32.replace('0', 'e'), 32), undefined); // 'e' is not in the alphabet
  assert.equal(nixBase32Decode(HELLO_B32.slice(1), 32), undefined);
  // 52 characters hold 260 bits: the first may only be 0 or 1, else it encodes bits past the 32 bytes.
  assert.equal(nixBase32Decode(`z${HELLO_B32.slice(1)}`, 32), undefined);
});

test('nix-base32 agrees with nix-hash --to-base32 on many digests', (t) => {
  if (!needTool(t, 'nix-hash')) return;
  const hexes = Array.from({ length: 20 }, (_, i) => execFileSync('sha256sum', { input: `d${i}`, encoding: 'utf8' }).slice(0, 64));
  const theirs = execFileSync('nix-hash', ['--type', 'sha256', '--to-base32', ...hexes], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(hexes.map((h) => nixBase32Encode(Buffer.from(h, 'hex'))), theirs);
});

test('hash parts are exactly 32 nix-base32 characters', () => {
  assert.equal(isHashPart('0123456789abcdfghijklmnpqrsvwxyz'), true);
  assert.equal(isHashPart('0123456789abcdfghijklmnpqrsvwxy'), false);
  assert.equal(isHashPart('0123456789abcdfghijklmnpqrsvwxye'), false);
  assert.equal(isHashPart('0123456789ABCDFGHIJKLMNPQRSVWXYZ'), false);
});

test('NAR hashes are read in every form Nix prints', () => {
  for (const form of [HELLO_SRI, `sha256:${HELLO_B32}`, `sha256:${HELLO_HEX}`, HELLO_HEX, HELLO_B32]) {
    assert.equal(parseNarHash(form)?.toString('hex'), HELLO_HEX, form);
  }
  assert.equal(parseNarHash('md5:0123'), undefined);
  assert.equal(parseNarHash('sha256-short='), undefined);
  assert.equal(formatNarHashSri(Buffer.from(HELLO_HEX, 'hex')), HELLO_SRI);
  assert.equal(formatNarHashBase32(Buffer.from(HELLO_HEX, 'hex')), `sha256:${HELLO_B32}`);
});

test('a 6-byte file serialises to the NAR Nix hashes (size 120, known hash)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-nar-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'f.txt'), 'hello\n');
  assert.deepEqual(await narHashOf(join(dir, 'f.txt')), { narHash: `sha256:${HELLO_B32}`, narSize: 120 });
});

test('the NAR serialisation is byte-identical to nix-store --dump for a varied tree', async (t) => {
  if (!needTool(t, 'nix-store')) return;
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-nar-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  writeTree(root, {
    'bin/run': { content: '#!/bin/sh\necho run\n', executable: true },
    'empty-file': '',
    'eight-byte': '12345678',
    'empty-dir': { dir: true },
    'nested/deeper/leaf': 'leaf',
    'link-rel': { symlink: 'nested/deeper/leaf' },
    'link-abs': { symlink: '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-x/bin/sh' },
    'link-dangling': { symlink: 'does-not-exist' },
    B: 'capital sorts first',
    'a.b': 'dot',
    'a-b': 'dash',
    'ünïcode': 'utf-8 name',
    big: { content: Buffer.alloc((1 << 20) + 13, 7) },
  });
  const tree = await readNarTree(root);
  const chunks: Buffer[] = [];
  await dumpNar(root, tree, (c) => chunks.push(Buffer.from(c)));
  const ours = Buffer.concat(chunks);
  const theirs = execFileSync('nix-store', ['--dump', root], { maxBuffer: 1 << 26 });
  assert.equal(ours.length, theirs.length);
  assert.ok(ours.equals(theirs), 'NAR bytes differ from nix-store --dump');
  assert.equal(narSize(tree), theirs.length);
  // A single file and a single symlink as the top-level node.
  for (const p of [join(root, 'bin/run'), join(root, 'link-abs')]) {
    const node = await readNarTree(p);
    const c: Buffer[] = [];
    await dumpNar(p, node, (b) => c.push(Buffer.from(b)));
    assert.ok(Buffer.concat(c).equals(execFileSync('nix-store', ['--dump', p])), p);
    assert.equal(narSize(node), Buffer.concat(c).length);
  }
});

test('narSize stays exact for files of 2 GiB and more (no 32-bit wrap-around)', () => {
  const file = (size: number) => narSize({ type: 'regular', size, executable: false, mtimeMs: 0, ctimeMs: 0, ino: 0 });
  // A regular file's NAR size grows by exactly its content size padded to 8 bytes.
  const small = file(8);
  assert.equal(file(3 * 2 ** 30) - small, 3 * 2 ** 30 - 8);
  assert.equal(file(2 ** 31 + 1) - small, 2 ** 31 + 8 - 8);
  assert.equal(file(5 * 2 ** 32 + 3) - small, 5 * 2 ** 32 + 8 - 8);
});
