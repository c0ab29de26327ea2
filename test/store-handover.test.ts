// A directory store's scan hands what it learned of each path's files (store/handover.ts) to
// the layer writer and the closure record: a layer written from it is the layer written by
// walking the files, and a closure record made from its lstat values is the one made by
// lstat-ing them again, and notices the same changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { HandoverArena } from '../builder/store/handover-arena.js';
import { FLAG_ALL_INLINE, handoverAllInline } from '../builder/store/handover.js';
import { storeLayerEntries, storeLayerOutline } from '../builder/layer/tree-entries.js';
import { measureLayer } from '../builder/layer/write-layer.js';
import type { LayerEntry, LayerWriteOptions } from '../builder/layer/types.js';
import { BuildWorkerPool } from '../builder/workers/pool.js';
import { closureDigest } from '../builder/build/plan.js';
import { writeTree, type TreeSpec } from './helpers/nix.js';
import { inPlaceChanges, pastRacyWindow, writeKeepingTimes } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const hashPart = (seed: string) => (seed + '0123456789abcdfghijklmnpqrsvwxyz').slice(0, 32);
const APP = `${hashPart('aaaa')}-app`;
const LIB = `${hashPart('bbbb')}-lib`;
const ONE = `${hashPart('cccc')}-one-file`;
const LINK = `${hashPart('dddd')}-one-link`;
const ROOTS = [APP, ONE, LINK].map((b) => `${SD}/${b}`);

const APP_TREE: TreeSpec = {
  'bin/app': { content: `#!/bin/sh\nexec ${SD}/${LIB}/lib/libx.so\n`, executable: true },
  'share/deep/nested/conf': 'plain text of some length',
  'share/link': { symlink: 'deep/nested/conf' },
  'share/deep/other': 'other',
  'share/empty': '',
  'share/no-dir': { dir: true },
  'share/café.txt': 'a name that is UTF-8 but not ASCII',
  // Over INLINE_FILE_MAX: listed, and read from disk by the writer.
  'share/big': { content: Buffer.alloc(40 * 1024, 7) },
};

async function store(): Promise<string> {
  const dir = join(await tempDir('imgbuild-handover-'), 'store');
  writeTree(join(dir, APP), APP_TREE);
  chmodSync(join(dir, APP, 'bin'), 0o1755); // a sticky directory: its special bit reaches the layer
  writeFileSync(join(dir, APP, 'bin/helper'), 'setuid helper');
  chmodSync(join(dir, APP, 'bin/helper'), 0o4755);
  writeTree(join(dir, LIB), { 'lib/libx.so': 'no references' });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, ONE), `a store path that is one file naming ${SD}/${LIB}`);
  writeTree(dir, { [LINK]: { symlink: `${LIB}/lib/libx.so` } });
  await pastRacyWindow();
  return dir;
}

const HEADER = { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' };

/** The entries as data (a file's bytes read), to compare a walk with a hand-over. */
function entryData(entries: Iterable<LayerEntry>): unknown[] {
  return [...entries].map((e) => {
    if (e.kind !== 'file') return e;
    const c = e.content;
    const bytes = c.from === 'disk' ? readFileSync(c.fsPath) : c.from === 'bytes' ? Buffer.from(c.data) : undefined;
    return { kind: e.kind, path: e.path, mode: e.mode, bytes: bytes?.toString('hex') };
  });
}

async function scanned(dir: string, budget = 1 << 20, cacheDir?: string, pool?: BuildWorkerPool) {
  const src = new DirectoryStoreSource(dir, SD, cacheDir ? { cacheDir } : {});
  src.keepHandovers(budget);
  if (pool) src.scanWith((job) => pool.run('scan-store-path', job));
  const closure = await src.closure(ROOTS);
  src.scanWith(undefined);
  return { src, paths: closure.paths.map((p) => p.path) };
}

test('a layer written from the scans\' hand-over is the layer written by walking the files', async () => {
  const dir = await store();
  const { src, paths } = await scanned(dir);
  assert.equal(paths.length, 4);
  for (const p of paths) assert.ok(src.handoverOf(p), `${p} was handed over`);
  const fsPathOf = (p: string) => src.fsPath(p);
  const handed = (p: string) => src.handoverOf(p);
  const walked = entryData(storeLayerEntries(paths, fsPathOf, SD));
  assert.deepEqual(entryData(storeLayerEntries(paths, fsPathOf, SD, handed)), walked);
  // The special bits and the UTF-8 name are there, and the big file is read from disk.
  const kinds = [...storeLayerEntries(paths, fsPathOf, SD, handed)];
  const modeOf = (suffix: string) => (kinds.find((e) => e.path.endsWith(suffix)) as { mode?: number } | undefined)?.mode;
  assert.equal(modeOf('bin/helper'), 0o4555);
  assert.equal(modeOf(`${APP}/bin`), 0o1555);
  assert.ok(kinds.some((e) => e.path.endsWith('share/café.txt')));
  const big = kinds.find((e) => e.path.endsWith('share/big'));
  assert.equal(big?.kind === 'file' && big.content.from, 'disk');
  // Whether a layer of them is made from memory alone (then a build writes it on its own thread).
  assert.equal(src.handoverHoldsAll([LIB, ONE, LINK].map((b) => `${SD}/${b}`)), true);
  assert.equal(src.handoverHoldsAll(paths), false);
  for (const compressor of ['none', 'gzip'] as const) {
    const options: LayerWriteOptions = { header: HEADER, compressor };
    assert.deepEqual(await measureLayer(storeLayerEntries(paths, fsPathOf, SD, handed), options), await measureLayer(storeLayerEntries(paths, fsPathOf, SD), options));
  }
});

test('a layer worker given the hand-over of scans made on a worker writes the layer a walk writes', async () => {
  const dir = await store();
  const pool = new BuildWorkerPool(1);
  try {
    const { src, paths } = await scanned(dir, 1 << 20, undefined, pool);
    // Made on the worker: one shared buffer for the batch, kept by this thread as it came.
    for (const p of paths) assert.ok(src.handoverOf(p)!.buffer instanceof SharedArrayBuffer, p);
    const sorted = storeLayerOutline(paths, SD).sorted;
    const handover = src.handoverJob(sorted);
    assert.ok(handover);
    for (const compressor of ['none', 'gzip'] as const) {
      const inWorker = await pool.writeStoreLayer({ paths, fsDir: src.fsDir, storeDir: SD, header: HEADER, compressor, handover });
      assert.deepEqual(inWorker, await measureLayer(storeLayerEntries(paths, (p) => src.fsPath(p), SD), { header: HEADER, compressor }));
    }
  } finally {
    await pool.close();
  }
});

test('the hand-over gives a path of small files as the scan read them, and one with a big file as it is on disk', async () => {
  const dir = await store();
  const { src } = await scanned(dir);
  // Edited after the scan (same size): the layer from the hand-over holds what the scan read,
  // which is what the path's content id (the layer cache's key) was made of.
  writeKeepingTimes(join(dir, LIB, 'lib/libx.so'), 'NO REFERENCES');
  writeKeepingTimes(join(dir, APP, 'share/deep/nested/conf'), 'PLAIN TEXT OF SOME LENGTH');
  const fileOf = (storePath: string, suffix: string) => {
    const data = entryData(storeLayerEntries([storePath], (p) => src.fsPath(p), SD, (p) => src.handoverOf(p)));
    return Buffer.from((data.find((e) => (e as { path: string }).path.endsWith(suffix)) as { bytes: string }).bytes, 'hex').toString();
  };
  assert.equal(fileOf(`${SD}/${LIB}`, 'lib/libx.so'), 'no references');
  // A path holding a file over INLINE_FILE_MAX keeps no file's bytes: its files are read when the layer is written.
  assert.equal(fileOf(`${SD}/${APP}`, 'nested/conf'), 'PLAIN TEXT OF SOME LENGTH');
});

test('a record given for another path is not used: that path is walked', async () => {
  const dir = await store();
  const { src } = await scanned(dir);
  const app = `${SD}/${APP}`;
  const lib = `${SD}/${LIB}`;
  const wrong = entryData(storeLayerEntries([lib], (p) => src.fsPath(p), SD, () => src.handoverOf(app)));
  assert.deepEqual(wrong, entryData(storeLayerEntries([lib], (p) => src.fsPath(p), SD)));
});

test('past the budget, paths are not handed over and are walked, the same bytes', async () => {
  const dir = await store();
  const { src, paths } = await scanned(dir, 200);
  const kept = paths.filter((p) => src.handoverOf(p));
  assert.ok(kept.length < paths.length, 'the budget left some out');
  const options: LayerWriteOptions = { header: HEADER, compressor: 'gzip' };
  const fsPathOf = (p: string) => src.fsPath(p);
  assert.deepEqual(await measureLayer(storeLayerEntries(paths, fsPathOf, SD, (p) => src.handoverOf(p)), options), await measureLayer(storeLayerEntries(paths, fsPathOf, SD), options));
  src.dropHandovers();
  assert.equal(paths.some((p) => src.handoverOf(p)), false);
});

test('a path with a name that is not UTF-8 is not handed over: the writer walks it and refuses it as before', async () => {
  const dir = await store();
  writeFileSync(Buffer.concat([Buffer.from(join(dir, APP, 'share/')), Buffer.from([0x66, 0xff])]), 'bad name');
  const { src } = await scanned(dir);
  const app = `${SD}/${APP}`;
  assert.equal(src.handoverOf(app), undefined);
  assert.throws(() => [...storeLayerEntries([app], (p) => src.fsPath(p), SD, (p) => src.handoverOf(p))], /not valid UTF-8/);
});

/** A build's closure with closure records (each test its own cache), with or without hand-overs. */
async function recordBuild(dir: string, cache: string, handover: boolean) {
  const src = new DirectoryStoreSource(dir, SD, { cacheDir: join(cache, 'scan'), closureCacheDir: join(cache, 'closures') });
  if (handover) src.keepHandovers(1 << 20);
  const closure = await src.closure([`${SD}/${APP}`]);
  return { closure, digest: closureDigest(closure), stats: { ...src.stats }, ids: await src.pathContentIds(closure.paths.map((p) => p.path)) };
}

test('the closure record made from the scans\' lstat values is the one made by lstat-ing the files again', async () => {
  const dir = await store();
  const root = await tempDir('imgbuild-handover-cache-');
  const a = join(root, 'a');
  const b = join(root, 'b');
  await recordBuild(dir, a, true);
  await recordBuild(dir, b, false);
  const file = (c: string) => readFileSync(join(c, 'closures', readdirSync(join(c, 'closures'))[0]!), 'utf8');
  assert.equal(file(a), file(b));
  assert.deepEqual((await recordBuild(dir, a, true)).stats, { scanned: 0, cached: 2 });
});

test('a closure record held past a change keeps the values its scans vouched with: the next build notices the change', async () => {
  const dir = await store();
  const cache = await tempDir('imgbuild-handover-cache-');
  const src = new DirectoryStoreSource(dir, SD, { cacheDir: join(cache, 'scan'), closureCacheDir: join(cache, 'closures') });
  src.keepHandovers(1 << 20);
  src.holdClosureRecords();
  const cold = await src.closure([`${SD}/${APP}`]);
  const coldIds = await src.pathContentIds(cold.paths.map((p) => p.path));
  await sleep(30);
  writeKeepingTimes(join(dir, APP, 'share/deep/nested/conf'), 'PLAIN TEXT OF SOME LENGTH');
  // Written from the scans' values, not lstats taken now (which would see the change and write no record).
  src.writeHeldClosureRecords();
  assert.equal(readdirSync(join(cache, 'closures')).length, 1);
  const after = await recordBuild(dir, cache, true);
  assert.equal(after.stats.scanned, 1);
  assert.notDeepEqual(after.ids, coldIds);
});

for (const [what, change] of inPlaceChanges(`${SD}/${LIB}`)) {
  test(`a closure record made from the hand-over notices ${what}`, async () => {
    const dir = await store();
    const cache = await tempDir('imgbuild-handover-cache-');
    const cold = await recordBuild(dir, cache, true);
    assert.deepEqual((await recordBuild(dir, cache, true)).stats, { scanned: 0, cached: 2 });
    // Past the file system's clock tick of the files' creation, so that the change moves a ctime.
    await sleep(30);
    change((rel) => join(dir, APP, rel));
    const after = await recordBuild(dir, cache, true);
    assert.equal(after.stats.scanned >= 1, true, `${what} went unnoticed`);
    assert.notDeepEqual(after.ids, cold.ids);
  });
}

test('after the hand-over is let go of, the checks it held still make the closure record a build by lstat makes', async () => {
  const dir = await store();
  const root = await tempDir('imgbuild-handover-cache-');
  const open = (c: string) => new DirectoryStoreSource(dir, SD, { cacheDir: join(root, c, 'scan'), closureCacheDir: join(root, c, 'closures') });
  const src = open('a');
  src.keepHandovers(1 << 20);
  await src.closure([`${SD}/${LIB}`]);
  src.dropHandovers();
  assert.equal(src.handoverOf(`${SD}/${LIB}`), undefined);
  src.keepHandovers(1 << 20);
  // LIB is known from before (its check no longer in a hand-over), APP scanned now.
  await src.closure([`${SD}/${APP}`]);
  await open('b').closure([`${SD}/${APP}`]);
  const files = (c: string) => readdirSync(join(root, c, 'closures')).map((f) => readFileSync(join(root, c, 'closures', f), 'utf8'));
  assert.equal(files('a').length, 2);
  assert.ok(files('a').includes(files('b')[0]!));
});

test('an arena reads a record\'s all-inline flag in place, and knows nothing of a place from an arena made before it', () => {
  /** A record of 16 bytes: its length, no values, the flags. */
  const record = (flags: number) => Uint8Array.from([16, 0, 0, 0, 0, 0, 0, flags, 0, 0, 0, 0, 0, 0, 0, 0]);
  const old = new HandoverArena(1 << 20);
  const whole = old.place(record(FLAG_ALL_INLINE));
  const partial = old.place(record(0));
  assert.deepEqual([old.allInline(whole), old.allInline(partial)], [true, false]);
  assert.deepEqual([whole, partial].map((at) => handoverAllInline(old.record(at)!)), [true, false]);
  const next = new HandoverArena(1 << 20, old.end);
  next.place(record(FLAG_ALL_INLINE));
  assert.equal(next.allInline(whole), false);
  assert.equal(next.record(whole), undefined);
});
