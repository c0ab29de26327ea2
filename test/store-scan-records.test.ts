// Scan records of a directory store (scan-cache.ts, stat-list.ts): what a warm closure checks,
// what it writes, how packs merge, and the batches a closure gives to other threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { runStorePathScanJob, type StorePathScanJob } from '../builder/store/path-scan.js';
import { readScanRecords } from '../builder/store/scan-cache.js';
import { STAT_LIST_MAX } from '../builder/store/stat-list.js';
import { closureDigest } from '../builder/build/plan.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { sha256Digest } from '../oci/digest.js';
import type { ClosureGraph } from '../layering/types.js';
import { writeTree, type TreeSpec } from './helpers/nix.js';
import { inPlaceChanges, writeKeepingTimes } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const hashPart = (seed: string) => (seed + '0123456789abcdfghijklmnpqrsvwxyz').slice(0, 32);
const APP = `${hashPart('aaaa')}-app`;
const LIB = `${hashPart('bbbb')}-lib`;
const DOC = `${hashPart('cccc')}-doc`;

async function store(app: TreeSpec): Promise<{ dir: string; cache: string }> {
  const root = await tempDir('imgbuild-scan-records-');
  const dir = join(root, 'store');
  writeTree(join(dir, APP), app);
  writeTree(join(dir, LIB), { 'lib/libx.so': 'no references' });
  writeTree(join(dir, DOC), { 'share/doc': 'no references' });
  return { dir, cache: join(root, 'cache') };
}

const open = (s: { dir: string; cache: string }) => new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cache });

/** The app's closure, content id and stats, from a new source (as a new build sees them). */
async function build(s: { dir: string; cache: string }) {
  const src = open(s);
  const closure = await src.closure([`${SD}/${APP}`]);
  return { paths: closure.paths.map((p) => p.path.slice(SD.length + 1)), contentId: await src.pathContentId(`${SD}/${APP}`), stats: { ...src.stats } };
}

const APP_TREE: TreeSpec = {
  'bin/app': { content: `#!/bin/sh\nexec ${SD}/${LIB}/lib/libx.so\n`, executable: true },
  'share/deep/nested/conf': 'plain text of some length',
  'share/link': { symlink: 'deep/nested/conf' },
  'share/deep/other': 'other',
};

const CHANGES = inPlaceChanges(`${SD}/${DOC}`);

for (const [what, change] of CHANGES) {
  test(`a recorded small path is checked by an lstat per entry, and notices ${what}`, async () => {
    const s = await store(APP_TREE);
    const cold = await build(s);
    assert.deepEqual(cold.stats, { scanned: 2, cached: 0 });
    const record = readScanRecords(s.cache).find((r) => r.fsPath.endsWith(APP))!;
    assert.deepEqual(record.names, ['bin', 'bin/app', 'share', 'share/deep', 'share/deep/nested', 'share/deep/nested/conf', 'share/deep/other', 'share/link']);
    assert.deepEqual(await build(s), { ...cold, stats: { scanned: 0, cached: 2 } });
    // Past the file system's clock tick of the files' creation, so that the change moves a ctime.
    await sleep(30);
    change((rel) => join(s.dir, APP, rel));
    const after = await build(s);
    assert.equal(after.stats.scanned >= 1, true, `${what} went unnoticed`);
    assert.notEqual(after.contentId, cold.contentId);
    // The new record answers the next build.
    assert.deepEqual((await build(s)).stats, { scanned: 0, cached: after.paths.length });
  });
}

test('a path of more entries than a stat list holds is checked by a walk of its tree, which notices an edit in place', async () => {
  const files: TreeSpec = {};
  for (let i = 0; i < STAT_LIST_MAX + 5; i++) files[`share/f${i}`] = `file ${i}`;
  const s = await store(files);
  const cold = await build(s);
  assert.equal(readScanRecords(s.cache).find((r) => r.fsPath.endsWith(APP))!.names, null);
  assert.deepEqual((await build(s)).stats, { scanned: 0, cached: 1 });
  await sleep(30);
  writeKeepingTimes(join(s.dir, APP, 'share/f7'), 'FILE 7');
  const after = await build(s);
  assert.deepEqual(after.stats, { scanned: 1, cached: 0 });
  assert.notEqual(after.contentId, cold.contentId);
});

test('a path with a name that is not printable ASCII is checked by a walk of its tree', async () => {
  const s = await store({ 'share/naïve': 'x', 'share/tab\there': 'y' });
  await build(s);
  assert.equal(readScanRecords(s.cache).find((r) => r.fsPath.endsWith(APP))!.names, null);
  assert.deepEqual((await build(s)).stats, { scanned: 0, cached: 1 });
});

test('a warm closure whose every path has a record writes nothing to the scan cache', async () => {
  const s = await store(APP_TREE);
  await build(s);
  const listing = () => readdirSync(s.cache).map((n) => [n, statSync(join(s.cache, n)).mtimeMs]);
  const before = listing();
  assert.equal(before.length, 1, 'one pack for the build');
  assert.deepEqual((await build(s)).stats, { scanned: 0, cached: 2 });
  assert.deepEqual(listing(), before);
});

test('more than 8 packs are merged into one by the next closure that reads them, leaving out the records of changed paths', async () => {
  const root = await tempDir('imgbuild-scan-merge-');
  const dir = join(root, 'store');
  const cache = join(root, 'cache');
  const names = Array.from({ length: 10 }, (_, i) => `${hashPart(`p${i}`)}-p${i}`);
  for (const n of names) writeTree(join(dir, n), { file: `path ${n}` });
  // One build per path but the last: nine packs.
  for (const n of names.slice(0, 9)) await new DirectoryStoreSource(dir, SD, { cacheDir: cache }).closure([`${SD}/${n}`]);
  assert.equal(readdirSync(cache).length, 9);
  await sleep(30);
  writeFileSync(join(dir, names[0]!, 'file'), 'changed');
  const all = new DirectoryStoreSource(dir, SD, { cacheDir: cache });
  await all.closure(names.map((n) => `${SD}/${n}`));
  assert.deepEqual(all.stats, { scanned: 2, cached: 8 });
  assert.equal(readdirSync(cache).length, 1, 'merged');
  const records = readScanRecords(cache);
  assert.deepEqual(records.map((r) => r.fsPath).sort(), names.map((n) => join(dir, n)).sort(), 'one record a path: the changed path only its new one');
  const again = new DirectoryStoreSource(dir, SD, { cacheDir: cache });
  await again.closure(names.map((n) => `${SD}/${n}`));
  assert.deepEqual(again.stats, { scanned: 0, cached: 10 });
});

test('paths a record does not answer go to another thread in batches, with the results of scanning them here', async () => {
  const root = await tempDir('imgbuild-scan-batches-');
  const dir = join(root, 'store');
  // 40 paths: the first names all the others, each other one the next.
  const names = Array.from({ length: 40 }, (_, i) => `${hashPart(`q${i}`)}-q${i}`);
  names.forEach((n, i) => writeTree(join(dir, n), { 'bin/x': i === 0 ? names.map((m) => `${SD}/${m}/bin/x`).join('\n') : `#!${SD}/${names[i + 1] ?? n}/bin/x\n` }));
  const results = [];
  const batches: number[] = [];
  for (const offload of [false, true]) {
    const cache = join(root, `cache-${offload}`);
    const src = new DirectoryStoreSource(dir, SD, { cacheDir: cache });
    // Always taken (as by a free worker), run in this thread by the worker's own function.
    if (offload) src.scanWith((job: StorePathScanJob) => (batches.push(job.fsPaths.length), runStorePathScanJob(job)));
    const closure = await src.closure([`${SD}/${names[0]}`]);
    const ids = await Promise.all(closure.paths.map((p) => src.pathContentId(p.path)));
    results.push({ closure, ids, stats: { ...src.stats }, records: readScanRecords(cache).map((r) => JSON.stringify(r)).sort() });
  }
  assert.equal(results[0]!.closure.paths.length, 40);
  assert.deepEqual(results[1], results[0]);
  assert.equal(batches.reduce((a, b) => a + b, 0), 40, 'every path scanned on the other thread');
  assert.ok(batches.some((n) => n > 1), `some batch holds more than one path: ${batches.join(' ')}`);
});

test('a batch answered while this thread reads a big path hands the free thread its next batch at once', async () => {
  const root = await tempDir('imgbuild-scan-refill-');
  const dir = join(root, 'store');
  // Nine roots: eight tiny paths and one of 4 MiB, which this thread reads with turns of the loop between its MiBs.
  const small = Array.from({ length: 8 }, (_, i) => `${hashPart(`s${i}`)}-s${i}`);
  const big = `${hashPart('big')}-big`;
  for (const n of small) writeTree(join(dir, n), { 'bin/x': n });
  writeTree(join(dir, big), { 'lib/blob': 'x'.repeat(4 * 1024 * 1024) });
  const results = [];
  let readingHere = 0;
  const offloadedWhileReading: number[] = [];
  for (const offload of [false, true]) {
    const src = new DirectoryStoreSource(dir, SD, { cacheDir: join(root, `cache-${offload}`) });
    const here = src as unknown as { scanHere: (...args: unknown[]) => Promise<unknown> };
    const scanHere = here.scanHere.bind(src);
    here.scanHere = async (...args) => {
      readingHere++;
      try {
        return await scanHere(...args);
      } finally {
        readingHere--;
      }
    };
    // One batch at a time, as one worker takes them; answered a turn of the loop later.
    let busy = false;
    if (offload) {
      src.scanWith((job: StorePathScanJob) => {
        if (busy) return undefined;
        busy = true;
        if (readingHere > 0) offloadedWhileReading.push(job.fsPaths.length);
        return new Promise((resolve) => setImmediate(resolve)).then(() => runStorePathScanJob(job)).finally(() => (busy = false));
      });
    }
    const closure = await src.closure([...small, big].map((n) => `${SD}/${n}`));
    results.push({ closure, ids: await Promise.all(closure.paths.map((p) => src.pathContentId(p.path))) });
  }
  assert.equal(results[0]!.closure.paths.length, 9);
  assert.deepEqual(results[1], results[0]);
  // The big path is this thread's (the first of the queue; batches come from its end), and the
  // tiny paths it left go out in a batch as the first batch's answer comes in.
  assert.ok(offloadedWhileReading.length > 0, 'a batch was handed out while this thread read the big path');
});

test('closureDigest is the sha256 of the canonical JSON of the sorted paths, sizes and references', () => {
  const graph: ClosureGraph = {
    storeDir: '/nix/store',
    roots: ['/nix/store/b-x'],
    paths: [
      { path: '/nix/store/b-x', narSize: 120, references: ['/nix/store/b-x', '/nix/store/a-\u00e9\u{1F600}"q'] },
      { path: '/nix/store/a-\u00e9\u{1F600}"q', narSize: 0, references: [] },
      { path: '/nix/store/c-z', narSize: 2 ** 40, references: ['/nix/store/b-x', '/nix/store/a-\u00e9\u{1F600}"q'] },
    ],
  };
  const expected = (g: ClosureGraph) =>
    sha256Digest(
      canonicalJson({
        storeDir: g.storeDir,
        paths: [...g.paths].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((p) => [p.path, p.narSize, [...p.references].sort()]),
      }),
    );
  assert.equal(closureDigest(graph), expected(graph));
  const sorted = { ...graph, paths: [...graph.paths].sort((a, b) => (a.path < b.path ? -1 : 1)).map((p) => ({ ...p, references: [...p.references].sort() })) };
  assert.equal(closureDigest(sorted), expected(graph));
  // A large closure: the document is hashed in pieces.
  const big: ClosureGraph = { storeDir: '/nix/store', roots: [], paths: Array.from({ length: 3000 }, (_, i) => ({ path: `/nix/store/${String(i).padStart(5, '0')}-p`, narSize: i, references: [`/nix/store/${String(i).padStart(5, '0')}-p`] })) };
  assert.equal(closureDigest(big), expected(big));
});
