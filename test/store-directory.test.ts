import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, utimesSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { readScanRecords } from '../builder/store/scan-cache.js';
import { StoreError } from '../builder/errors.js';
import { writeTree, type TreeSpec } from './helpers/nix.js';
import { pastRacyWindow, writeKeepingTimes } from './helpers/store-changes.js';

const SD = '/nix/store';

/** A hash part made of one repeated letter and a counter, so each test's paths are easy to read. */
function hashPart(seed: string): string {
  return (seed + '0123456789abcdfghijklmnpqrsvwxyz').slice(0, 32);
}

function tempStore(entries: Record<string, TreeSpec | string>): { dir: string; cache: string; done: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'imgbuild-store-'));
  const dir = join(root, 'store');
  for (const [base, spec] of Object.entries(entries)) {
    if (typeof spec === 'string') {
      writeTree(dir, {});
      writeFileSync(join(dir, base), spec);
    } else writeTree(join(dir, base), spec);
  }
  return { dir, cache: join(root, 'cache'), done: () => rmSync(root, { recursive: true, force: true }) };
}

const A = `${hashPart('aaaa')}-app`;
const B = `${hashPart('bbbb')}-lib`;
const C = `${hashPart('cccc')}-data`;
const D = `${hashPart('dddd')}-named`;
const U = `${hashPart('ffff')}-unrelated`;

test('references are the hash parts found in file bytes, symlink targets and entry names, self included', async (t) => {
  const s = tempStore({
    [A]: {
      'bin/app': { content: `#!${SD}/${B}/bin/sh\nexec ${SD}/${A}/libexec/x\n`, executable: true },
      'share/data': { symlink: `${SD}/${C}/share` },
      [`links/${D}`]: 'named after D',
    },
    [B]: { 'bin/sh': 'no refs here' },
    [C]: { share: { dir: true } },
    [D]: 'plain file path',
    [U]: 'never referenced',
  });
  t.after(s.done);
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: false });
  const g = await src.closure([`${SD}/${A}`]);
  assert.deepEqual(g.roots, [`${SD}/${A}`]);
  assert.deepEqual(
    g.paths.map((p) => [p.path, p.references]),
    [
      [`${SD}/${A}`, [`${SD}/${A}`, `${SD}/${B}`, `${SD}/${C}`, `${SD}/${D}`].sort()],
      [`${SD}/${B}`, []],
      [`${SD}/${C}`, []],
      [`${SD}/${D}`, []],
    ].sort(),
  );
});

test('a hash part split across the 1 MiB read boundary is found', async (t) => {
  // 1 MiB minus 10 bytes of filler, then the hash: the first read ends inside it.
  const filler = Buffer.alloc((1 << 20) - 10, 0x2e);
  const content = Buffer.concat([filler, Buffer.from(`${SD}/${B}`.slice(-(32 + 4)))]);
  const s = tempStore({ [A]: { big: { content } }, [B]: 'x' });
  t.after(s.done);
  const g = await new DirectoryStoreSource(s.dir, SD, { cacheDir: false }).closure([`${SD}/${A}`]);
  assert.deepEqual(g.paths.find((p) => p.path === `${SD}/${A}`)?.references, [`${SD}/${B}`]);
});

test('a hash part inside a longer run of base32 characters still counts (every 32-byte window is tried)', async (t) => {
  const s = tempStore({ [A]: `xyz0${hashPart('bbbb')}lmn`, [B]: 'x' });
  t.after(s.done);
  const g = await new DirectoryStoreSource(s.dir, SD, { cacheDir: false }).closure([`${SD}/${A}`]);
  assert.deepEqual(g.paths.map((p) => p.path), [`${SD}/${A}`, `${SD}/${B}`]);
});

test('the closure is transitive and each path appears once', async (t) => {
  const s = tempStore({ [A]: `uses ${B} and ${C}`, [B]: `uses ${C}`, [C]: `uses ${D}`, [D]: 'leaf', [U]: `uses ${A}` });
  t.after(s.done);
  const g = await new DirectoryStoreSource(s.dir, SD, { cacheDir: false }).closure([`${SD}/${A}`, `${SD}/${B}`]);
  assert.deepEqual(g.roots, [`${SD}/${A}`, `${SD}/${B}`]);
  assert.deepEqual(g.paths.map((p) => p.path), [A, B, C, D].map((b) => `${SD}/${b}`));
  assert.deepEqual(g.paths.find((p) => p.path === `${SD}/${C}`)?.references, [`${SD}/${D}`]);
});

test('narSize is the exact NAR size: a 6-byte file is 120 bytes, as nix path-info reports', async (t) => {
  const s = tempStore({ [A]: 'hello\n' });
  t.after(s.done);
  const g = await new DirectoryStoreSource(s.dir, SD, { cacheDir: false }).closure([`${SD}/${A}`]);
  assert.equal(g.paths[0]?.narSize, 120);
});

test('fsPath maps a logical store path to the directory', () => {
  const src = new DirectoryStoreSource('/ci/store', SD, { cacheDir: false });
  assert.equal(src.fsPath(`${SD}/${A}`), `/ci/store/${A}`);
});

test('a content path outside the store dir is refused, naming it', async (t) => {
  const s = tempStore({ [A]: 'x' });
  t.after(s.done);
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: false });
  await assert.rejects(src.closure([`/opt/store/${A}`]), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.equal(e.message, `content path "/opt/store/${A}" is not under the store dir /nix/store`);
    return true;
  });
});

test('a content path that is not <hash>-<name> is refused with the reason', async (t) => {
  const s = tempStore({ [A]: 'x' });
  t.after(s.done);
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: false });
  await assert.rejects(src.closure([`${SD}/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x`]), {
    name: 'StoreError',
    message: `content path "${SD}/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x" is not a valid store path: its hash part is not 32 characters of nix-base32 (0-9 a-z without e o u t)`,
  });
  await assert.rejects(src.closure([`${SD}/${hashPart('aaaa')}-bad name`]), {
    message: `content path "${SD}/${hashPart('aaaa')}-bad name" is not a valid store path: the name contains the character " " (allowed: A-Z a-z 0-9 + - . _ ? =)`,
  });
  await assert.rejects(src.closure([`${SD}/${A}/bin/app`]), {
    message: `content path "${SD}/${A}/bin/app" is a path inside a store path, not a store path`,
  });
});

test('a root missing from the directory is refused, naming it and where it was expected', async (t) => {
  const s = tempStore({ [A]: 'x' });
  t.after(s.done);
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: false });
  await assert.rejects(src.closure([`${SD}/${B}`]), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.equal(e.message, `${SD}/${B} is not in directory ${s.dir} (as /nix/store)`);
    assert.equal(e.hint, `expected it at ${join(s.dir, B)}`);
    assert.deepEqual(e.paths, [`${SD}/${B}`]);
    return true;
  });
});

test('a reference cycle between distinct paths is refused, naming the cycle', async (t) => {
  const s = tempStore({ [A]: `-> ${B}`, [B]: `-> ${C}`, [C]: `-> ${A} and itself ${C}` });
  t.after(s.done);
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: false });
  await assert.rejects(src.closure([`${SD}/${A}`]), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.equal(
      e.message,
      `reference cycle between distinct store paths: ${SD}/${A} -> ${SD}/${B} -> ${SD}/${C} -> ${SD}/${A}`,
    );
    assert.deepEqual(e.paths, [`${SD}/${A}`, `${SD}/${B}`, `${SD}/${C}`]);
    return true;
  });
});

test('a fifo inside a store path is refused, naming the file', async (t) => {
  const s = tempStore({ [A]: { f: 'x' } });
  t.after(s.done);
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [join(s.dir, A, 'pipe')]);
  await assert.rejects(new DirectoryStoreSource(s.dir, SD, { cacheDir: false }).closure([`${SD}/${A}`]), {
    name: 'StoreError',
    message: `${join(s.dir, A, 'pipe')} is neither a regular file, a directory nor a symlink; a store path cannot hold it`,
  });
});

test('a store dir other than /nix/store works', async (t) => {
  const s = tempStore({ [A]: `/gnu/store/${B}`, [B]: 'x' });
  t.after(s.done);
  const g = await new DirectoryStoreSource(s.dir, '/gnu/store/', { cacheDir: false }).closure([`/gnu/store/${A}`]);
  assert.equal(g.storeDir, '/gnu/store');
  assert.deepEqual(g.paths.map((p) => p.references), [[`/gnu/store/${B}`], []]);
});

test('scan results are cached on disk and reused by a new source', async (t) => {
  const s = tempStore({ [A]: `-> ${B}`, [B]: 'leaf' });
  t.after(s.done);
  await pastRacyWindow(); // a scan within a clock tick of the files makes no record
  const first = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache });
  const g1 = await first.closure([`${SD}/${A}`]);
  assert.deepEqual(first.stats, { scanned: 2, cached: 0 });
  assert.equal(readScanRecords(s.cache).length, 2);
  const second = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache });
  assert.deepEqual(await second.closure([`${SD}/${A}`]), g1);
  assert.deepEqual(second.stats, { scanned: 0, cached: 2 });
});

test('a changed file (new mtime) is scanned again', async (t) => {
  const s = tempStore({ [A]: `-> ${B}`, [B]: 'leaf', [C]: 'leaf' });
  t.after(s.done);
  await new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache }).closure([`${SD}/${A}`]);
  // Same size, other content and mtime.
  writeFileSync(join(s.dir, A), `-> ${C}`);
  utimesSync(join(s.dir, A), 1000, 1000);
  const again = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache });
  const g = await again.closure([`${SD}/${A}`]);
  assert.deepEqual(g.paths.map((p) => p.path), [`${SD}/${A}`, `${SD}/${C}`]);
  assert.deepEqual(again.stats, { scanned: 2, cached: 0 });
});

test('a file edited in place (same size, mtime put back) is scanned again, and the path gets a new content id', async (t) => {
  const s = tempStore({ [A]: { 'lib/ref': `-> ${B}` }, [B]: 'leaf', [C]: 'leaf' });
  t.after(s.done);
  await pastRacyWindow(); // a scan within a clock tick of the files makes no record
  const first = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache });
  await first.closure([`${SD}/${A}`]);
  const before = await first.pathContentId(`${SD}/${A}`);
  writeKeepingTimes(join(s.dir, A, 'lib/ref'), `-> ${C}`);
  await pastRacyWindow();
  const again = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache });
  const g = await again.closure([`${SD}/${A}`]);
  assert.deepEqual(g.paths.map((p) => p.path), [`${SD}/${A}`, `${SD}/${C}`]);
  assert.deepEqual(again.stats, { scanned: 2, cached: 0 });
  assert.notEqual(await again.pathContentId(`${SD}/${A}`), before);
  // The record written by that scan answers the next build.
  const third = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache });
  await third.closure([`${SD}/${A}`]);
  assert.deepEqual(third.stats, { scanned: 0, cached: 2 });
  assert.equal(await third.pathContentId(`${SD}/${A}`), await again.pathContentId(`${SD}/${A}`));
});

test('a cached scan still finds a reference to a path added to the store after it was scanned', async (t) => {
  const s = tempStore({ [A]: `-> ${B}` });
  t.after(s.done);
  await pastRacyWindow(); // a scan within a clock tick of the files makes no record
  const g1 = await new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache }).closure([`${SD}/${A}`]);
  assert.deepEqual(g1.paths[0]?.references, []);
  writeFileSync(join(s.dir, B), 'now present');
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache });
  const g2 = await src.closure([`${SD}/${A}`]);
  assert.deepEqual(g2.paths.map((p) => p.path), [`${SD}/${A}`, `${SD}/${B}`]);
  assert.deepEqual(src.stats, { scanned: 1, cached: 1 });
});

test('entries that are not store paths (.links, lock files with bad names) are ignored', async (t) => {
  const s = tempStore({ [A]: `-> ${B}`, [B]: 'x', '.links': { f: 'x' } });
  t.after(s.done);
  const g = await new DirectoryStoreSource(s.dir, SD, { cacheDir: false }).closure([`${SD}/${A}`]);
  assert.equal(g.paths.length, 2);
});

test('a hash part shared by two entries is refused when a path references it, naming both', async (t) => {
  const B2 = `${hashPart('bbbb')}-lib-old`;
  const s = tempStore({ [A]: `-> ${hashPart('bbbb')}`, [B]: 'x', [B2]: 'y' });
  t.after(s.done);
  await assert.rejects(new DirectoryStoreSource(s.dir, SD, { cacheDir: false }).closure([`${SD}/${A}`]), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.equal(e.message, `${SD}/${A} contains the hash ${hashPart('bbbb')}, which more than one entry of ${s.dir} has: ${B}, ${B2}`);
    assert.deepEqual(e.paths, [`${SD}/${A}`, `${SD}/${B}`, `${SD}/${B2}`]);
    return true;
  });
});

test('two builds scanning into one cache at the same time both get the right closure and leave valid records', async (t) => {
  const s = tempStore({ [A]: `-> ${B} ${C}`, [B]: `-> ${D}`, [C]: 'c', [D]: 'd' });
  t.after(s.done);
  await pastRacyWindow(); // a scan within a clock tick of the files makes no record
  const [g1, g2] = await Promise.all([
    new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache }).closure([`${SD}/${A}`]),
    new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache }).closure([`${SD}/${A}`]),
  ]);
  assert.deepEqual(g1, g2);
  assert.equal(g1.paths.length, 4);
  const files = readdirSync(s.cache);
  assert.deepEqual(files.filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
  // A pack from each build that scanned (the second may find the first's), every line a whole record.
  const records = readScanRecords(s.cache);
  assert.deepEqual([...new Set(records.map((r) => r.fsPath))].sort(), [A, B, C, D].map((n) => join(s.dir, n)).sort());
  assert.equal(records.length, 4 * files.length);
  const again = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache });
  assert.deepEqual(await again.closure([`${SD}/${A}`]), g1);
  assert.deepEqual(again.stats, { scanned: 0, cached: 4 });
});

test('a store directory that does not exist is refused, naming it', async () => {
  const src = new DirectoryStoreSource('/nonexistent/store', SD, { cacheDir: false });
  await assert.rejects(src.closure([`${SD}/${A}`]), {
    name: 'StoreError',
    message: "cannot list the store directory /nonexistent/store: ENOENT: no such file or directory, scandir '/nonexistent/store'",
  });
});
