// The cache's record of where blobs were pushed (builder/cache/blob-locations.ts): a hint a push
// mounts from, so a lost, torn or foreign record is ignored, never an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobLocationStore, formatRecord, MAX_LOCATIONS, parseRecord } from '../builder/cache/blob-locations.js';
import { tempDir } from './helpers/tmp.js';

const D1 = `sha256:${'1'.repeat(64)}` as const;
const D2 = `sha256:${'2'.repeat(64)}` as const;
const REG = 'registry.example:5000';

async function store(): Promise<BlobLocationStore> {
  return BlobLocationStore.inCache(await tempDir('imgbuild-blob-locations-'));
}

/** The one record file the store holds for D1 (the test wrote nothing else). */
function recordFile(s: BlobLocationStore): string {
  const [regDir] = readdirSync(s.dir);
  return join(s.dir, regDir!, '1'.repeat(64));
}

test('a blob never recorded has no locations', async () => {
  assert.deepEqual((await store()).lookup(REG, D1), []);
});

test('lookup gives the repositories a blob was recorded under, newest first', async () => {
  const s = await store();
  s.record(REG, 'a/app', [D1]);
  s.record(REG, 'b/app', [D1]);
  s.record(REG, 'c/app', [D1, D2]);
  assert.deepEqual(s.lookup(REG, D1), ['c/app', 'b/app', 'a/app']);
  assert.deepEqual(s.lookup(REG, D2), ['c/app']);
});

test(`a record keeps the newest ${MAX_LOCATIONS} repositories`, async () => {
  const s = await store();
  for (const r of ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) s.record(REG, r, [D1]);
  assert.deepEqual(s.lookup(REG, D1), ['r6', 'r5', 'r4', 'r3']);
});

test('recording a repository again moves it to the front, once', async () => {
  const s = await store();
  s.record(REG, 'a', [D1]);
  s.record(REG, 'b', [D1]);
  s.record(REG, 'a', [D1, D1]);
  assert.deepEqual(s.lookup(REG, D1), ['a', 'b']);
});

test('recording the newest repository again rewrites nothing but the record\'s mtime (prune --older-than goes by it)', async () => {
  const s = await store();
  s.record(REG, 'a', [D1]);
  s.record(REG, 'b', [D1]);
  const file = recordFile(s);
  const before = readFileSync(file, 'utf8');
  const monthAgo = new Date(Date.now() - 30 * 86_400_000);
  utimesSync(file, monthAgo, monthAgo);
  const start = Date.now();
  s.record(REG, 'b', [D1]);
  assert.equal(readFileSync(file, 'utf8'), before);
  assert.ok(statSync(file).mtimeMs >= start - 1000, 'touched by the push that used it');
});

test('a record is per registry: another registry\'s is not seen', async () => {
  const s = await store();
  s.record('other.example', 'a/app', [D1]);
  assert.deepEqual(s.lookup(REG, D1), []);
});

test('a record file naming another registry on its first line is ignored', async () => {
  const s = await store();
  s.record(REG, 'a/app', [D1]);
  writeFileSync(recordFile(s), formatRecord('other.example', ['b/app']));
  assert.deepEqual(s.lookup(REG, D1), []);
});

test('a torn record file (cut short of its last newline) is ignored, and the next record replaces it', async () => {
  const s = await store();
  s.record(REG, 'a/app', [D1]);
  writeFileSync(recordFile(s), `${REG}\na/app\nb/ap`);
  assert.deepEqual(s.lookup(REG, D1), []);
  s.record(REG, 'c/app', [D1]);
  assert.equal(readFileSync(recordFile(s), 'utf8'), `${REG}\nc/app\n`);
});

test('a garbage record file is ignored', async () => {
  const s = await store();
  s.record(REG, 'a/app', [D1]);
  writeFileSync(recordFile(s), Buffer.from([0xff, 0x00, 0x0a, 0x41, 0x0a]));
  assert.deepEqual(s.lookup(REG, D1), []);
});

test('parseRecord refuses a record with a line that is not a repository name, a repeated line, or no repository', () => {
  assert.equal(parseRecord(`${REG}\na/app\nNot A Repo\n`, REG), undefined);
  assert.equal(parseRecord(`${REG}\na/app\na/app\n`, REG), undefined);
  assert.equal(parseRecord(`${REG}\n`, REG), undefined);
  assert.deepEqual(parseRecord(`${REG}\na/app\nb\n`, REG), ['a/app', 'b']);
});

test('a digest that is not sha256:<64 hex> is neither recorded nor looked up', async () => {
  const s = await store();
  s.record(REG, 'a/app', ['sha256:../../etc', 'md5:abc']);
  assert.equal(existsSync(s.dir), false);
  assert.deepEqual(s.lookup(REG, 'sha256:../../etc'), []);
});

test('a store that cannot be written records nothing and does not throw', async () => {
  const root = await tempDir('imgbuild-blob-locations-');
  writeFileSync(join(root, 'blob-locations'), 'a file where the directory should be');
  const s = BlobLocationStore.inCache(root);
  s.record(REG, 'a/app', [D1]);
  assert.deepEqual(s.lookup(REG, D1), []);
});

test('the store writes nothing until a record is made', async () => {
  const root = await tempDir('imgbuild-blob-locations-');
  mkdirSync(join(root, 'x'));
  BlobLocationStore.inCache(root).lookup(REG, D1);
  assert.deepEqual(readdirSync(root), ['x']);
});
