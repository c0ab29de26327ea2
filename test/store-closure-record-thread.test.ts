// A closure record's lstats split with a thread (stat-list-split.ts), as a warm build that may
// use threads does past SPLIT_MIN_NODES nodes: the same answer as on one thread, and an edit in
// place is noticed in either share of the paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { closureDigest } from '../builder/build/plan.js';
import { SPLIT_MIN_NODES } from '../builder/store/stat-list-split.js';
import { threadSplit } from '../builder/store/closure-record.js';
import { writeTree } from './helpers/nix.js';
import { writeKeepingTimes } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const hashPart = (seed: string) => (seed + '0123456789abcdfghijklmnpqrsvwxyz').slice(0, 32);
// Sorted by name: the app's nodes (9) are more than half, so the thread takes lib and tool.
const APP = `${hashPart('aaaa')}-app`;
const LIB = `${hashPart('bbbb')}-lib`;
const TOOL = `${hashPart('cccc')}-tool`;

async function store() {
  const root = await tempDir('imgbuild-closure-record-thread-');
  const dir = join(root, 'store');
  writeTree(join(dir, APP), {
    'bin/app': { content: `#!/bin/sh\nexec ${SD}/${LIB}/lib/libx.so ${SD}/${TOOL}/bin/tool\n`, executable: true },
    'share/deep/nested/conf': 'plain text',
    'share/link': { symlink: 'deep/nested/conf' },
    'share/deep/other': 'other',
  });
  writeTree(join(dir, LIB), { 'lib/libx.so': 'no references' });
  writeTree(join(dir, TOOL), { 'bin/tool': { content: 'no references', executable: true } });
  return { dir, cache: join(root, 'cache') };
}

/** A new source's closure of the app, as a build that may use threads (scanWith set) asks it. */
async function build(s: { dir: string; cache: string }, statThreadFrom?: number) {
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: join(s.cache, 'scan'), closureCacheDir: join(s.cache, 'closures'), ...(statThreadFrom !== undefined ? { statThreadFrom } : {}) });
  src.scanWith(() => undefined); // threads allowed; every scan done here
  const closure = await src.closure([`${SD}/${APP}`]);
  const contentIds = await src.pathContentIds(closure.paths.map((p) => p.path));
  return { digest: closureDigest(closure), paths: closure.paths.map((p) => p.path), contentIds, stats: { ...src.stats } };
}

test('past SPLIT_MIN_NODES (20,000 by default) a record is split; below it, as here, the answer is the same either way', async () => {
  assert.equal(SPLIT_MIN_NODES, 20_000);
  const s = await store();
  const cold = await build(s, 1);
  const split = await build(s, 1);
  const one = await build(s);
  assert.deepEqual(split.stats, { scanned: 0, cached: 3 });
  assert.deepEqual(one.stats, { scanned: 0, cached: 3 });
  assert.deepEqual({ ...split, stats: null }, { ...cold, stats: null });
  assert.deepEqual({ ...one, stats: null }, { ...cold, stats: null });
});

for (const [share, path, file] of [
  ['this thread\'s share (the first paths)', APP, 'share/deep/other'],
  ['the stat thread\'s share (the last paths)', TOOL, 'bin/tool'],
] as const) {
  test(`a split record notices a file edited in place in ${share}`, async () => {
    const s = await store();
    const cold = await build(s, 1);
    assert.deepEqual((await build(s, 1)).stats, { scanned: 0, cached: 3 });
    await sleep(30); // past the clock tick of the files' creation, so that the edit moves a ctime
    writeKeepingTimes(join(s.dir, path, file), 'EDITED, SAME TIMES');
    const after = await build(s, 1);
    assert.equal(after.stats.scanned >= 1, true, `the edit in ${path} went unnoticed`);
    const i = after.paths.indexOf(`${SD}/${path}`);
    assert.notEqual(after.contentIds[i], cold.contentIds[i]);
  });
}

test('the thread takes the named paths from where half of the nodes are done; none below the threshold, none of the tree-checked paths', () => {
  // Nodes: 9, 3, 3, (tree-checked), 1.
  const names = ['bin\nbin/app\nshare\nshare/deep\nshare/deep/nested\nshare/deep/nested/conf\nshare/deep/other\nshare/link', 'lib\nlib/libx.so', 'bin\nbin/tool', null, ''];
  assert.equal(threadSplit(names, 1), 1);
  assert.equal(threadSplit(names, 16), 1);
  assert.equal(threadSplit(names, 17), 5);
  assert.equal(threadSplit(['', '', '', ''], 1), 2);
  assert.equal(threadSplit([''], 1), 1);
});
