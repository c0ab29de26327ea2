// A closure record is written in pieces (recordJsonPieces), not as one JSON.stringify of the
// whole: the file's characters must be exactly JSON.stringify's, whatever the record holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordJsonPieces } from '../builder/store/closure-record.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';

/** Names with what JSON escapes: quotes, backslashes, control characters, non-ASCII, a lone surrogate, empty lines. */
const ODD = ['plain', 'quo"te', 'back\\slash', 'tab\there', 'ctl\u0001\u001f', 'café ✓', 'emoji 😀', 'lone \ud800 surrogate', '', 'del\u007f', 'line\u2028sep'];

function bigRecord(n: number): Record<string, unknown> {
  const names: (string | null)[] = [];
  for (let i = 0; i < n; i++) names.push(i % 7 === 0 ? null : i % 5 === 0 ? '' : `bin\nbin/${ODD[i % ODD.length]}-${i}\n\nlast`);
  return {
    v: 'closure-3/scan-5',
    fsDir: '/var/tmp/store "dir"',
    storeDir: SD,
    roots: [`${SD}/${'a'.repeat(32)}-root`],
    listing: 'f'.repeat(64),
    dir: null,
    closureDigest: `sha256:${'0'.repeat(64)}`,
    paths: Array.from({ length: n }, (_, i) => `${String(i).padStart(32, '0')}-${ODD[i % ODD.length]}`).join('\n'),
    narSize: Array.from({ length: n }, (_, i) => i * 1234567 + 0.5 * (i % 2)),
    refCount: Array.from({ length: n }, (_, i) => i % 3),
    refs: Array.from({ length: 3 * n }, (_, i) => i % n),
    contentId: Array.from({ length: n }, (_, i) => `content:${i.toString(16).padStart(64, '0')}`),
    architectures: { 3: { amd64: 'bin/x' }, 12: { arm64: 'lib/y"z' } },
    absent: { 5: [`${SD}/${'b'.repeat(32)}`] },
    names,
    trees: { 0: 'f'.repeat(64), 7: 'e'.repeat(64) },
    stats: 'd'.repeat(64),
  };
}

test('recordJsonPieces gives JSON.stringify\'s characters, for records small and past a piece, with every kind of character', () => {
  for (const n of [0, 1, 3, 4096, 4097, 10_000]) {
    const rec = bigRecord(n);
    assert.equal([...recordJsonPieces(rec)].join(''), JSON.stringify(rec), `${n} paths`);
  }
  // A `paths` string that starts, ends or doubles its newlines.
  // Long plain ones (store names only: written a piece at a time), newlines at a piece's edges.
  const edge = 1 << 16;
  for (const paths of ['\n', '\n\nx', 'x\n', 'x\n\n', 'a\nb'.repeat(5000), `\n${'y'.repeat(70_000)}\n`, `${'z'.repeat(edge - 1)}\n${'w'.repeat(9)}`, `${'z'.repeat(edge)}\n\nw`, `${'q'.repeat(2 * edge)}\n`]) {
    const rec = { ...bigRecord(2), paths };
    assert.equal([...recordJsonPieces(rec)].join(''), JSON.stringify(rec));
  }
  assert.equal([...recordJsonPieces({})].join(''), '{}');
  assert.equal([...recordJsonPieces({ a: undefined, b: 1 })].join(''), JSON.stringify({ a: undefined, b: 1 }));
});

test('a closure record file of a real closure is JSON.stringify of what it holds, byte for byte', async () => {
  const root = await tempDir('imgbuild-record-json-');
  const dir = join(root, 'store');
  const b32 = '0123456789abcdfghijklmnpqrsvwxyz';
  const bases = Array.from({ length: 300 }, (_, i) => `${b32[i % 32]!.repeat(30)}${b32[Math.floor(i / 32) % 32]}${b32[Math.floor(i / 1024)]}-p${i}`);
  bases.forEach((base, i) => {
    mkdirSync(join(dir, base, 'bin'), { recursive: true });
    writeFileSync(join(dir, base, 'bin', `t${i}`), i === 0 ? bases.slice(1).map((b) => `${SD}/${b}\n`).join('') : `tiny ${i}\n`);
  });
  await pastRacyWindow(); // a scan within a clock tick of the files makes no record (nor a closure record)
  const cacheDir = join(root, 'cache');
  const src = new DirectoryStoreSource(dir, SD, { cacheDir: join(cacheDir, 'scan'), closureCacheDir: join(cacheDir, 'closures') });
  const closure = await src.closure([`${SD}/${bases[0]}`]);
  assert.equal(closure.paths.length, 300);
  const files = readdirSync(join(cacheDir, 'closures'));
  assert.equal(files.length, 1);
  const bytes = readFileSync(join(cacheDir, 'closures', files[0]!));
  assert.deepEqual(bytes, Buffer.from(JSON.stringify(JSON.parse(bytes.toString('utf8')))));
});
