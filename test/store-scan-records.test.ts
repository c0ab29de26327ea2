// Scan records of a directory store (scan-cache.ts, stat-list.ts): what a warm closure checks,
// what it writes, how packs merge, and the batches a closure gives to other threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { runStorePathScanJob, scanStorePath, type StorePathScanJob } from '../builder/store/path-scan.js';
import { RACY_COARSE_MS, RACY_FINE_MS, racyCtime } from '../builder/store/racy.js';
import { readScanRecords } from '../builder/store/scan-cache.js';
import { STAT_LIST_MAX } from '../builder/store/stat-list.js';
import { closureDigest } from '../builder/build/plan.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { sha256Digest } from '../oci/digest.js';
import type { ClosureGraph } from '../layering/types.js';
import { writeTree, type TreeSpec } from './helpers/nix.js';
import { inPlaceChanges, pastRacyWindow, writeKeepingTimes } from './helpers/store-changes.js';
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
  await pastRacyWindow();
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
    await pastRacyWindow();
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

/** Every node of a path (its root, then its entries by name): its lstat's size, mode, mtime, ctime and inode. */
function nodeStats(path: string): Array<{ name: string; size: number; mode: number; mtimeMs: number; ctimeMs: number; ino: number }> {
  const names = ['', ...readdirSync(path).sort().map((n) => `/${n}`)];
  return names.map((name) => {
    const st = lstatSync(`${path}${name}`);
    return { name, size: st.size, mode: st.mode, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
  });
}

/**
 * Two store directories holding the same path `<hash>-p` of `files` files, alike but for the
 * bytes of `p/f` (`AAAA` in one, `BBBB` in the other) and the inodes: sizes, modes, mtimes and
 * ctimes equal, node by node. The ctimes are the file system clock's tick in which the times
 * were set, so both are made again until their times were set in one tick; undefined when that
 * never happens (a clock finer than the calls).
 */
async function twinStores(root: string, files: number): Promise<{ dir: string; twin: string } | undefined> {
  const dir = join(root, 'store');
  const twin = join(root, 'twin');
  for (let attempt = 0; attempt < 100; attempt++) {
    for (const d of [dir, twin]) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(join(d, TWIN), { recursive: true });
    }
    for (const [d, content] of [[dir, 'AAAA\n'], [twin, 'BBBB\n']] as const) {
      writeFileSync(join(d, TWIN, 'f'), content);
      for (let i = 1; i < files; i++) writeFileSync(join(d, TWIN, `g${String(i).padStart(3, '0')}`), 'same\n');
    }
    // Setting the times sets every ctime: both trees' one call after the other, a clock tick
    // after the writes (a ctime set within the tick of the file's last write may be kept).
    await sleep(12);
    for (const d of [dir, twin]) {
      for (const n of readdirSync(join(d, TWIN))) utimesSync(join(d, TWIN, n), 1_000_000, 1_000_000);
      utimesSync(join(d, TWIN), 1_000_000, 1_000_000);
    }
    const a = nodeStats(join(dir, TWIN));
    const b = nodeStats(join(twin, TWIN));
    if (a.every((x, i) => x.ctimeMs === b[i]!.ctimeMs)) {
      assert.deepEqual(b.map(({ ino: _, ...rest }) => rest), a.map(({ ino: _, ...rest }) => rest), 'alike but for the inodes');
      assert.ok(a.every((x, i) => x.ino !== b[i]!.ino));
      return { dir, twin };
    }
  }
  return undefined;
}

const TWIN = `${hashPart('abcd')}-p`;

for (const [files, check] of [
  [1, 'an lstat per entry'],
  [STAT_LIST_MAX + 36, 'a walk of its tree'],
] as const) {
  for (const closures of [false, true]) {
    test(`a path replaced by files of the same sizes and times made in one clock tick is scanned again (checked by ${check}${closures ? ', with a closure record' : ''})`, async (t) => {
      const root = await tempDir('imgbuild-scan-twins-');
      const twins = await twinStores(root, files);
      if (!twins) return t.skip('the file system gave no two files the same ctime');
      const cache = join(root, 'cache');
      const open = () => new DirectoryStoreSource(twins.dir, SD, { cacheDir: join(cache, 'scan'), closureCacheDir: closures ? join(cache, 'closures') : false });
      const contentId = async (src: DirectoryStoreSource) => {
        await src.closure([`${SD}/${TWIN}`]);
        return src.pathContentId(`${SD}/${TWIN}`);
      };
      await pastRacyWindow();
      const before = await contentId(open());
      const warm = open();
      assert.equal(await contentId(warm), before);
      assert.deepEqual(warm.stats, { scanned: 0, cached: 1 }, 'recorded');
      // The twin put in its place, as `mv store store.old; mv twin store` does.
      renameSync(twins.dir, `${twins.dir}.old`);
      renameSync(twins.twin, twins.dir);
      const after = open();
      const id = await contentId(after);
      assert.deepEqual(after.stats, { scanned: 1, cached: 0 });
      assert.equal(id, await contentId(new DirectoryStoreSource(twins.dir, SD)), 'the id of the files there now');
      assert.notEqual(id, before);
    });
  }
}

test('a scan whose files changed within a clock tick of its start leaves no record; one a tick later does', async (t) => {
  const root = await tempDir('imgbuild-scan-racy-');
  const dir = join(root, 'store');
  writeTree(join(dir, APP), { 'bin/app': 'the app', 'share/doc': 'its doc' });
  const latest = Math.max(...[APP, `${APP}/bin`, `${APP}/bin/app`, `${APP}/share`, `${APP}/share/doc`].map((n) => lstatSync(join(dir, n)).ctimeMs));
  const scanAt = async (now: number) => {
    t.mock.timers.enable({ apis: ['Date'], now: Math.floor(now) });
    try {
      return await scanStorePath(join(dir, APP), new Set<string>(), () => '', true, SD);
    } finally {
      t.mock.timers.reset();
    }
  };
  // The scan's start as the clock says: the files' latest ctime in the same tick, or later by less than RACY_FINE_MS.
  for (const now of [latest, latest + 1, latest + RACY_FINE_MS - 1]) {
    const scan = await scanAt(now);
    assert.equal(scan.record, undefined, `${now - latest} ms after`);
    assert.equal(scan.check, undefined);
  }
  const later = await scanAt(latest + RACY_FINE_MS + 1);
  assert.ok(later.record);
  assert.deepEqual(later.check!.names, ['bin', 'bin/app', 'share', 'share/doc']);
});

test('a ctime is racy from RACY_FINE_MS before a scan\'s start on; one in whole seconds (a coarse file system) from RACY_COARSE_MS before', () => {
  const start = 1_800_000_000_000;
  assert.equal(racyCtime(start - RACY_FINE_MS - 0.5, start), false);
  assert.equal(racyCtime(start - RACY_FINE_MS + 0.5, start), true);
  assert.equal(racyCtime(start - 0.25, start), true);
  assert.equal(racyCtime(start + 3.5, start), true, 'after the start (another clock)');
  assert.equal(racyCtime(start - 1000, start), true, 'a whole second');
  assert.equal(racyCtime(start - RACY_COARSE_MS, start), false);
  assert.equal(racyCtime(start - 1000.5, start), false);
  assert.equal(racyCtime(-Infinity, start), false, 'no node');
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
  await pastRacyWindow();
  // One build per path but the last: nine packs.
  for (const n of names.slice(0, 9)) await new DirectoryStoreSource(dir, SD, { cacheDir: cache }).closure([`${SD}/${n}`]);
  assert.equal(readdirSync(cache).length, 9);
  await sleep(30);
  writeFileSync(join(dir, names[0]!, 'file'), 'changed');
  await pastRacyWindow();
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
  // Records made by both closures alike (a scan within a clock tick of the files makes none).
  await pastRacyWindow();
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
