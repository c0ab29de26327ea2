// Closure records of a directory store (closure-record.ts): a whole closure kept in one file,
// which answers a build only while the store lists the same entries and every path's files pass
// the same check as its scan record; anything else is found path by path, as without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { runStorePathScanJob, type StorePathScanJob } from '../builder/store/path-scan.js';
import { closureDigest } from '../builder/build/plan.js';
import { STAT_LIST_MAX } from '../builder/store/stat-list.js';
import { dirStamp } from '../builder/store/closure-record.js';
import { sealJson } from '../builder/store/sealed-json.js';
import { writeTree, type TreeSpec } from './helpers/nix.js';
import { AMD64, ARM64, elfFile } from './helpers/elf.js';
import { closureArchitectures } from '../builder/store/closure-architectures.js';
import { warnAbsentMentions } from '../builder/build/build-image.js';
import { inPlaceChanges, pastRacyWindow, writeKeepingTimes } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const hashPart = (seed: string) => (seed + '0123456789abcdfghijklmnpqrsvwxyz').slice(0, 32);
const APP = `${hashPart('aaaa')}-app`;
const LIB = `${hashPart('bbbb')}-lib`;
const DOC = `${hashPart('cccc')}-doc`;
/** Named by the app's files, not in the store until a test adds it. */
const LATE = `${hashPart('dddd')}-late`;

interface Store {
  dir: string;
  scan: string;
  closures: string;
}

async function store(app: TreeSpec): Promise<Store> {
  const root = await tempDir('imgbuild-closure-records-');
  const dir = join(root, 'store');
  writeTree(join(dir, APP), app);
  writeTree(join(dir, LIB), { 'lib/libx.so': 'no references' });
  writeTree(join(dir, DOC), { 'share/doc': 'no references' });
  await pastRacyWindow();
  return { dir, scan: join(root, 'cache', 'scan'), closures: join(root, 'cache', 'closures') };
}

const open = (s: Store, closures = true) => new DirectoryStoreSource(s.dir, SD, { cacheDir: s.scan, closureCacheDir: closures ? s.closures : false });

/** Everything a build takes from the source, from a new source (as a new build sees it). */
async function build(s: Store, roots = [`${SD}/${APP}`], closures = true) {
  const src = open(s, closures);
  const closure = await src.closure(roots);
  const per = await Promise.all(
    closure.paths.map(async (p) => ({ path: p.path, contentId: await src.pathContentId(p.path), architectures: await src.pathArchitectures(p.path), absent: await src.absentMentions(p.path) })),
  );
  return { closure, digest: closureDigest(closure), per, stats: { ...src.stats } };
}

/** The same closure, found path by path with no cache at all. */
async function uncached(s: Store, roots = [`${SD}/${APP}`]) {
  const src = new DirectoryStoreSource(s.dir, SD);
  const closure = await src.closure(roots);
  const per = await Promise.all(
    closure.paths.map(async (p) => ({ path: p.path, contentId: await src.pathContentId(p.path), architectures: await src.pathArchitectures(p.path), absent: await src.absentMentions(p.path) })),
  );
  return { closure, digest: closureDigest(closure), per };
}

const APP_TREE: TreeSpec = {
  'bin/app': { content: `#!/bin/sh\nexec ${SD}/${LIB}/lib/libx.so\n# see ${SD}/${LATE}/share\n`, executable: true },
  'share/deep/nested/conf': 'plain text of some length',
  'share/link': { symlink: 'deep/nested/conf' },
  'share/deep/other': 'other',
};

const without = <T extends { stats: unknown }>(b: T) => {
  const { stats: _, ...rest } = b;
  return rest;
};

test('a second build of the same roots is answered by the closure record, the same in every respect as a build path by path', async () => {
  const s = await store(APP_TREE);
  const cold = await build(s);
  assert.deepEqual(cold.stats, { scanned: 2, cached: 0 });
  assert.equal(readdirSync(s.closures).length, 1, 'one closure record');
  // The scan records gone: only the closure record can answer.
  rmSync(s.scan, { recursive: true });
  const warm = await build(s);
  assert.deepEqual(warm.stats, { scanned: 0, cached: 2 });
  assert.deepEqual(without(warm), without(cold));
  assert.deepEqual(without(warm), await uncached(s));
  assert.deepEqual(
    warm.per.find((p) => p.path.endsWith(APP))!.absent,
    [`${SD}/${hashPart('dddd')}`],
  );
});

test('the record is keyed by the set of roots: their order does not matter, another set is found path by path', async () => {
  const s = await store(APP_TREE);
  await build(s, [`${SD}/${APP}`, `${SD}/${DOC}`]);
  rmSync(s.scan, { recursive: true });
  const swapped = await build(s, [`${SD}/${DOC}`, `${SD}/${APP}`, `${SD}/${DOC}`]);
  assert.deepEqual(swapped.stats, { scanned: 0, cached: 3 });
  assert.deepEqual(swapped.closure.roots, [`${SD}/${DOC}`, `${SD}/${APP}`], 'the roots as asked');
  assert.deepEqual(without(swapped), await uncached(s, [`${SD}/${DOC}`, `${SD}/${APP}`]));
  const other = await build(s, [`${SD}/${APP}`]);
  assert.deepEqual(other.stats, { scanned: 2, cached: 0 });
});

test('a warm build answered by the closure record writes nothing to the cache', async () => {
  const s = await store(APP_TREE);
  await build(s);
  const listing = () => [s.scan, s.closures].flatMap((d) => readdirSync(d).map((n) => [n, statSync(join(d, n)).mtimeMs]));
  const before = listing();
  assert.deepEqual((await build(s)).stats, { scanned: 0, cached: 2 });
  assert.deepEqual(listing(), before);
});

const CHANGES = inPlaceChanges(`${SD}/${DOC}`);

for (const [what, change] of CHANGES) {
  test(`a closure record notices ${what}, and the next build is answered by the new one`, async () => {
    const s = await store(APP_TREE);
    const cold = await build(s);
    assert.deepEqual((await build(s)).stats, { scanned: 0, cached: 2 });
    // Past the file system's clock tick of the files' creation, so that the change moves a ctime.
    await sleep(30);
    change((rel) => join(s.dir, APP, rel));
    await pastRacyWindow();
    const after = await build(s);
    assert.equal(after.stats.scanned >= 1, true, `${what} went unnoticed`);
    assert.notEqual(after.per.find((p) => p.path.endsWith(APP))!.contentId, cold.per.find((p) => p.path.endsWith(APP))!.contentId);
    assert.deepEqual(without(after), await uncached(s));
    rmSync(s.scan, { recursive: true });
    const again = await build(s);
    assert.deepEqual(again.stats, { scanned: 0, cached: after.closure.paths.length });
    assert.deepEqual(without(again), without(after));
  });
}

test('a path of more entries than a stat list holds is checked by a walk of its tree, which notices an edit in place', async () => {
  const files: TreeSpec = {};
  for (let i = 0; i < STAT_LIST_MAX + 5; i++) files[`share/f${i}`] = `file ${i}`;
  const s = await store(files);
  await build(s);
  rmSync(s.scan, { recursive: true });
  assert.deepEqual((await build(s)).stats, { scanned: 0, cached: 1 });
  await sleep(30);
  writeKeepingTimes(join(s.dir, APP, 'share/f7'), 'FILE 7');
  assert.deepEqual((await build(s)).stats, { scanned: 1, cached: 0 });
});

test('a store path added that a file names becomes a reference (the record was made for other entries)', async () => {
  const s = await store(APP_TREE);
  // Past RACY_MS: the record keeps the directory's stat, and the next build checks that.
  await sleep(2100);
  const before = await build(s);
  assert.equal((JSON.parse(readFileSync(join(s.closures, readdirSync(s.closures)[0]!), 'utf8')) as { dir: unknown }).dir !== null, true, 'the stat kept');
  await sleep(30);
  assert.deepEqual(before.closure.paths.map((p) => p.path), [`${SD}/${APP}`, `${SD}/${LIB}`]);
  writeTree(join(s.dir, LATE), { share: 'late' });
  const after = await build(s);
  assert.deepEqual(after.closure.paths.map((p) => p.path), [`${SD}/${APP}`, `${SD}/${LIB}`, `${SD}/${LATE}`]);
  assert.deepEqual(after.per.find((p) => p.path.endsWith(APP))!.absent, []);
  assert.deepEqual(without(after), await uncached(s));
});

test('a store path no file names, added or removed, makes the record miss once; the closure is the same', async () => {
  const s = await store(APP_TREE);
  const first = await build(s);
  writeTree(join(s.dir, `${hashPart('eeee')}-unrelated`), { x: 'x' });
  const added = await build(s);
  assert.deepEqual(added.stats, { scanned: 0, cached: 2 }, 'the scan records answer');
  assert.deepEqual(without(added), without(first));
  rmSync(s.scan, { recursive: true });
  assert.deepEqual((await build(s)).stats, { scanned: 0, cached: 2 }, 'a new closure record');
});

test('a referenced store path removed leaves the closure (now an absent mention), as without a record', async () => {
  const s = await store(APP_TREE);
  await build(s);
  rmSync(join(s.dir, LIB), { recursive: true });
  const after = await build(s);
  assert.deepEqual(after.closure.paths.map((p) => p.path), [`${SD}/${APP}`]);
  assert.deepEqual(without(after), await uncached(s));
});

test('a damaged or foreign closure record is not used, and is replaced', async () => {
  const s = await store(APP_TREE);
  const cold = await build(s);
  const [name] = readdirSync(s.closures);
  const file = join(s.closures, name!);
  const good = readFileSync(file, 'utf8');
  const { sum: _, ...rec } = JSON.parse(good) as Record<string, unknown>;
  // Sealed with a checksum that matches: each is refused for what it says, not for its checksum.
  const sealed = (r: object) => sealJson(JSON.stringify(r));
  const damaged: Array<[string, string]> = [
    ['not JSON', good.slice(0, good.length >> 1)],
    ['one character of a content id flipped (the checksum does not match)', good.replace('"contentId":["content:', '"contentId":["content:x')],
    ['without a checksum (an older format)', JSON.stringify(rec)],
    ['another version', sealed({ ...rec, v: 'closure-0/scan-4' })],
    ['another store directory', sealed({ ...rec, fsDir: '/elsewhere' })],
    ['a reference out of range', sealed({ ...rec, refs: (rec.refs as number[]).map(() => 99) })],
    ['a column of the wrong length', sealed({ ...rec, narSize: [] })],
    ['lstats that do not match', sealed({ ...rec, stats: '0'.repeat(64) })],
    ['names that are not the entries', sealed({ ...rec, names: (rec.names as string[]).map((n) => n.replace('bin', 'lib')) })],
  ];
  for (const [what, text] of damaged) {
    writeFileSync(file, text);
    const b = await build(s);
    assert.deepEqual(without(b), without(cold), what);
    assert.equal(b.stats.cached, 2, what);
    assert.equal(readFileSync(file, 'utf8'), good, `${what}: written again`);
  }
});

test('a path changed after its scan and before the closure ends is not recorded: the next build scans it again', async () => {
  const s = await store(APP_TREE);
  const src = open(s);
  // The scans run as on a worker; the app's file is changed before their results come back.
  src.scanWith(async (job: StorePathScanJob) => {
    const scans = await runStorePathScanJob(job);
    if (job.fsPaths.some((p) => p.endsWith(APP))) {
      await sleep(30);
      writeFileSync(join(s.dir, APP, 'share/deep/other'), 'changed after the scan');
    }
    return scans;
  });
  await src.closure([`${SD}/${APP}`]);
  assert.equal(existsSync(s.closures), false, 'no closure record');
  const next = await build(s);
  assert.deepEqual(next.stats, { scanned: 1, cached: 1 });
  assert.deepEqual(without(next), await uncached(s));
});

test('the directory\'s stat stands for its listing only when it had not changed for 2 s before it, and it moves with any entry added, removed or renamed', async () => {
  const root = await tempDir('imgbuild-closure-dir-');
  const dir = join(root, 'store');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a'), 'a');
  assert.equal(dirStamp(dir)!.racy, true, 'just made');
  await sleep(2100);
  const first = dirStamp(dir)!;
  assert.equal(first.racy, false);
  assert.deepEqual(dirStamp(dir), first, 'unchanged');
  const changes: Array<[string, () => void]> = [
    ['an entry added', () => writeFileSync(join(dir, 'b'), 'b')],
    ['an entry renamed', () => renameSync(join(dir, 'b'), join(dir, 'c'))],
    ['an entry removed', () => rmSync(join(dir, 'c'))],
    ['a directory made', () => mkdirSync(join(dir, 'd'))],
  ];
  let last = first;
  for (const [what, change] of changes) {
    await sleep(30);
    change();
    const now = dirStamp(dir)!;
    assert.notEqual(now.stamp, last.stamp, what);
    assert.equal(now.racy, true, `${what}: racy again`);
    last = now;
  }
  assert.equal(dirStamp(join(root, 'none')), undefined);
});

test('the closure\'s paths with ELF files or absent mentions, known to the source, give what asking path by path gives', async () => {
  const s = await store({ ...APP_TREE, 'bin/tool': { content: elfFile(AMD64, 200) }, 'lib/arm': { content: elfFile(ARM64, 200) } });
  writeTree(join(s.dir, LIB), { 'lib/libx.so': { content: elfFile(AMD64, 300) }, 'share/n': `${SD}/${hashPart('ffff')}-gone/x` });
  for (const round of ['cold', 'closure record']) {
    const src = open(s);
    const closure = await src.closure([`${SD}/${APP}`]);
    assert.ok(src.closureFacts(closure), round);
    // Another object of the same paths: asked path by path.
    const copy = { ...closure };
    assert.equal(src.closureFacts(copy), undefined);
    assert.deepEqual(await closureArchitectures(src, closure), await closureArchitectures(src, copy), round);
    assert.deepEqual(Object.keys((await closureArchitectures(src, closure))!).sort(), ['amd64', 'arm64'], round);
    const warned = async (g: typeof closure) => {
      const lines: string[] = [];
      await warnAbsentMentions(src, g, (l) => lines.push(l));
      return lines;
    };
    assert.deepEqual(await warned(closure), await warned(copy), round);
    assert.equal((await warned(closure)).length, 3, `${round}: two absent paths and the hint`);
  }
});
