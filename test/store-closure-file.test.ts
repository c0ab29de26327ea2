import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseClosureFile } from '../builder/store/closure-file.js';
import { ClosureFileStoreSource } from '../builder/store/closure-file-source.js';
import { openStoreSource } from '../builder/store/open.js';
import { formatClosure } from '../builder/store/format.js';
import { parseStorePath, checkStorePathName } from '../builder/store/store-path.js';
import { StoreError } from '../builder/errors.js';
import { writeTree } from './helpers/nix.js';

const SD = '/nix/store';
const A = `${SD}/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app`;
const B = `${SD}/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib`;
const HASH = 'sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=';

test('registration text (closureInfo, --dump-db) is read with hashes, sizes and references', () => {
  const text = `${A}\nsha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw\n120\n\n2\n${A}\n${B}\n${B}\n${HASH}\n8\n/nix/store/cccccccccccccccccccccccccccccccc-b.drv\n0\n`;
  const parsed = parseClosureFile(text, 'reg');
  assert.equal(parsed.format, 'registration');
  assert.deepEqual(parsed.entries, [
    { path: A, narHash: 'sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw', narSize: 120, references: [A, B] },
    { path: B, narHash: HASH, narSize: 8, deriver: '/nix/store/cccccccccccccccccccccccccccccccc-b.drv', references: [] },
  ]);
});

test('exportReferencesGraph text (no hashes) is read with derivers and references', () => {
  const parsed = parseClosureFile(`${A}\n\n1\n${B}\n${B}\n/nix/store/cccccccccccccccccccccccccccccccc-b.drv\n0\n`, 'graph');
  assert.equal(parsed.format, 'references-graph');
  assert.deepEqual(parsed.entries, [
    { path: A, references: [B] },
    { path: B, deriver: '/nix/store/cccccccccccccccccccccccccccccccc-b.drv', references: [] },
  ]);
});

test('Nix ≥ 2.19 path-info objects may give references as base names', () => {
  const parsed = parseClosureFile(
    JSON.stringify({ [A]: { narHash: HASH, narSize: 1, references: ['bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib'] }, [B]: { narHash: HASH, narSize: 2, references: [] } }),
    'obj',
  );
  assert.equal(parsed.format, 'path-info-object');
  assert.deepEqual(parsed.entries.map((e) => e.references), [[B], []]);
});

test('malformed closure files are refused, naming the file and the place', () => {
  const cases: Array<[string, string]> = [
    ['{"x": 1}', 'closure file f: unrecognised JSON: expected nix path-info --json output or a structured-attrs file with an exportReferencesGraph array'],
    [`[{"path": "${A}", "narSize": -1}]`, `closure file f: [0]: ${A}: "narSize" must be a non-negative integer`],
    [`{"${A}": null}`, `closure file f: "${A}": the path is not valid in the store that exported this file (null entry)`],
    [`[{"path": "${A}", "narSize": 1, "narHash": "md5:x"}]`, `closure file f: [0]: ${A}: "narHash" is not a SHA-256 hash`],
    [`${A}\n${HASH}\nbig\n\n0\n`, `closure file f: line 3: ${A}: NAR size "big" is not a number`],
    [`${A}\n\n2\n${B}\n`, 'closure file f: line 5: the file ends where a reference was expected'],
    ['', 'closure file f: line 1: the file is empty'],
    ['[1,', 'closure file f: not valid JSON: '],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseClosureFile(text, 'f'), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.ok(e.message.startsWith(message), `${e.message}\n  !starts with\n${message}`);
      return true;
    });
  }
});

test('a closure file naming a path outside the store dir is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-cf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify([{ path: A, narSize: 1, references: ['/gnu/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib'] }]));
  await assert.rejects(ClosureFileStoreSource.open({ closureFile: file, dir }), {
    name: 'StoreError',
    message: `reference of ${A} in closure file ${file}: "/gnu/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib" is not under the store dir /nix/store`,
  });
});

test('the plain exportReferencesGraph format gets NAR sizes from the files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-cf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeTree(join(dir, 'store'), { 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app': 'hello\n', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib/x': '' });
  const file = join(dir, 'graph');
  writeFileSync(file, `${A}\n\n1\n${B}\n${B}\n\n0\n`);
  const src = await openStoreSource({ kind: 'closure-file', closureFile: file, dir: join(dir, 'store') });
  const g = await src.closure([A]);
  assert.deepEqual(g, {
    storeDir: SD,
    roots: [A],
    paths: [
      { path: A, narSize: 120, references: [B] },
      // An empty file in a directory: 280 bytes, as `nix-store --dump | wc -c` counts.
      { path: B, narSize: 280, references: [] },
    ],
  });
});

test('a root that is not in the closure file is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-cf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify([{ path: B, narSize: 1, references: [] }]));
  const src = await ClosureFileStoreSource.open({ closureFile: file, dir });
  await assert.rejects(src.closure([A]), { name: 'StoreError', message: `${A} is not in closure file ${file}` });
});

test('a reference cycle in a closure file is refused, naming the cycle', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-cf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify([{ path: A, narSize: 1, references: [A, B] }, { path: B, narSize: 1, references: [A] }]));
  const src = await ClosureFileStoreSource.open({ closureFile: file, dir });
  await assert.rejects(src.closure([A]), {
    name: 'StoreError',
    message: `reference cycle between distinct store paths: ${A} -> ${B} -> ${A}`,
  });
});

test('openStoreSource refuses incomplete options', async () => {
  await assert.rejects(openStoreSource({ kind: 'directory' }), { message: 'a directory store source needs the directory that holds the store paths' });
  await assert.rejects(openStoreSource({ kind: 'closure-file' }), { message: 'a closure-file store source needs the closure file' });
  await assert.rejects(openStoreSource({ kind: 'directory', dir: '/x', verify: true }), {
    message: '--verify-store needs a source that gives NAR hashes (nix or a closure file); a scanned directory has none',
  });
  await assert.rejects(openStoreSource({ kind: 'closure-file', closureFile: '/nonexistent/c.json' }), {
    name: 'StoreError',
    message: "cannot read closure file /nonexistent/c.json: ENOENT: no such file or directory, open '/nonexistent/c.json'",
  });
});

test('formatClosure prints a table of paths, NAR sizes and references, roots marked', () => {
  const out = formatClosure({
    storeDir: SD,
    roots: [A],
    paths: [
      { path: A, narSize: 120, references: [A, B] },
      { path: B, narSize: 3 * 1024 * 1024, references: [] },
    ],
  });
  assert.equal(
    out,
    [
      `${'PATH'.padEnd(A.length + 2)}  NAR SIZE  REFERENCES`,
      `${A} *     120 B  self, bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib`,
      `${B}     3.0 MiB  -`,
      '2 paths, 3.0 MiB (3145848 bytes) of NAR; * = root',
      '',
    ].join('\n'),
  );
});

test('store path names follow Nix\'s rules', () => {
  assert.equal(checkStorePathName('hello-2.12.1'), undefined);
  assert.equal(checkStorePathName('a+b=c?d_e'), undefined);
  assert.equal(checkStorePathName('.hidden'), undefined);
  assert.equal(checkStorePathName(''), 'the name is empty');
  assert.equal(checkStorePathName('x'.repeat(212)), 'the name is longer than 211 characters');
  assert.equal(checkStorePathName('..'), 'the name ".." is reserved');
  assert.equal(checkStorePathName('.-x'), 'the name ".-x" is reserved');
  assert.equal(checkStorePathName('a/b'), 'the name contains the character "/" (allowed: A-Z a-z 0-9 + - . _ ? =)');
  const sp = parseStorePath(`${A}`, '/nix/store/');
  assert.deepEqual(sp, { storeDir: SD, hashPart: 'a'.repeat(32), name: 'app', baseName: `${'a'.repeat(32)}-app`, path: A });
});

test('a path listed twice with the same entry is read once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-cf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.json');
  const a = { path: A, narSize: 1, narHash: HASH, references: [B] };
  writeFileSync(file, JSON.stringify([a, { path: B, narSize: 2, references: [] }, { ...a, references: [B, B] }]));
  const src = await ClosureFileStoreSource.open({ closureFile: file, dir });
  assert.deepEqual(src.topLevelPaths(), [A]);
});

for (const [what, later, message] of [
  ['references', { references: [] }, `references (only the first: ${B})`],
  ['narHash', { narHash: 'sha256-' + 'A'.repeat(43) + '=' }, `narHash (${HASH}, then sha256-${'A'.repeat(43)}=)`],
  ['narSize', { narSize: 7 }, 'narSize (1, then 7)'],
] as const) {
  test(`a path listed twice with different ${what} is refused, naming the file, the path and what differs`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'imgbuild-cf-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'c.json');
    const a = { path: A, narSize: 1, narHash: HASH, references: [B] };
    writeFileSync(file, JSON.stringify([a, { path: B, narSize: 2, references: [] }, { ...a, ...later }]));
    await assert.rejects(ClosureFileStoreSource.open({ closureFile: file, dir }), {
      name: 'StoreError',
      message: `closure file ${file} lists ${A} twice, with different ${message}`,
    });
  });
}

test('a path given twice with different references in concatenated exportReferencesGraph files is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-cf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeTree(join(dir, 'store'), { 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app': 'hello\n', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib/x': '' });
  const file = join(dir, 'graph');
  writeFileSync(file, `${A}\n\n1\n${B}\n${B}\n\n0\n${A}\n\n0\n`);
  await assert.rejects(ClosureFileStoreSource.open({ closureFile: file, dir: join(dir, 'store') }), {
    name: 'StoreError',
    message: `closure file ${file} lists ${A} twice, with different references (only the first: ${B})`,
  });
});

test('a path of a plain exportReferencesGraph file missing from the store dir is named with the closure file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-cf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeTree(join(dir, 'store'), { 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app': 'hello\n' });
  const file = join(dir, 'graph');
  writeFileSync(file, `${A}\n\n1\n${B}\n${B}\n\n0\n`);
  await assert.rejects(ClosureFileStoreSource.open({ closureFile: file, dir: join(dir, 'store') }), {
    name: 'StoreError',
    message: `${B} is in closure file ${file} but missing from the store dir ${join(dir, 'store')}: no ${join(dir, 'store', basename(B))}`,
    hint: 'copy the whole closure into the store dir (nix copy --to <root> <paths> writes <root>/nix/store: pass that with --store; or cp -a of every path); a binary cache made by nix copy --to file://... is read with --substituter instead',
  });
});
