// A closure record's lstats shared with a stat thread (stat-list-split.ts), as a warm build that
// may use threads does past SPLIT_MIN_NODES nodes: both threads claim chunks of paths, and the
// answer is the one a single thread gives; an edit in place is noticed in any chunk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { ClosureRecords, RECORD_BYTES_PER_NODE } from '../builder/store/closure-record.js';
import { closureDigest } from '../builder/build/plan.js';
import { CHUNK_PATHS, claimChunks, placesOf, SPLIT_MIN_NODES, startStatThread, statListsValues, type StatLists } from '../builder/store/stat-list-split.js';
import { PER_NODE, statListValues } from '../builder/store/stat-list.js';
import { writeTree } from './helpers/nix.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { writeKeepingTimes } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';
/** A distinct valid hash part for each number. */
const hashPart = (k: number) => Array.from({ length: 32 }, (_, i) => BASE32[i < 26 ? (k >> (5 * Math.min(i, 5))) & 31 : i]).join('');
/** More paths than two chunks hold, so that both threads can claim some. */
const LIBS = 2 * CHUNK_PATHS + 100;
const APP = `${hashPart(0)}-app`;
const lib = (k: number) => `${hashPart(k + 1)}-lib-${k}`;

/** An app that names every lib (its closure), each lib a dir, a subdir and a file. */
async function store() {
  const root = await tempDir('imgbuild-closure-record-thread-');
  const dir = join(root, 'store');
  const libs = Array.from({ length: LIBS }, (_, k) => lib(k));
  writeTree(join(dir, APP), { 'bin/app': { content: libs.map((l) => `${SD}/${l}/lib/x.so`).join('\n'), executable: true }, 'share/doc': 'plain' });
  for (const l of libs) writeTree(join(dir, l), { 'lib/x.so': `no references ${l}` });
  await pastRacyWindow();
  return { dir, cache: join(root, 'cache'), libs };
}

/** A new source's closure of the app, as a build that may use threads (scanWith set) asks it. */
async function build(s: { dir: string; cache: string }, statThreadFrom?: number) {
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: join(s.cache, 'scan'), closureCacheDir: join(s.cache, 'closures'), ...(statThreadFrom !== undefined ? { statThreadFrom } : {}) });
  src.scanWith(() => undefined); // threads allowed; every scan done here
  const closure = await src.closure([`${SD}/${APP}`]);
  const contentIds = await src.pathContentIds(closure.paths.map((p) => p.path));
  return { digest: closureDigest(closure), paths: closure.paths.map((p) => p.path), contentIds, stats: { ...src.stats } };
}

test('a record is shared with a stat thread from SPLIT_MIN_NODES (20,000) nodes on; the answer is the one a single thread gives', async () => {
  assert.equal(SPLIT_MIN_NODES, 20_000);
  const s = await store();
  const cold = await build(s, 1);
  const shared = await build(s, 1);
  const one = await build(s);
  assert.deepEqual(shared.stats, { scanned: 0, cached: LIBS + 1 });
  assert.deepEqual(one.stats, { scanned: 0, cached: LIBS + 1 });
  assert.deepEqual({ ...shared, stats: null }, { ...cold, stats: null });
  assert.deepEqual({ ...one, stats: null }, { ...cold, stats: null });
});

for (const [where, pick] of [
  ['the first chunk', (libs: string[]) => libs[0]!],
  ['the last chunk', (libs: string[]) => libs[libs.length - 1]!],
] as const) {
  test(`a shared record notices a file edited in place in ${where}`, async () => {
    const s = await store();
    const path = pick(s.libs);
    const cold = await build(s, 1);
    assert.deepEqual((await build(s, 1)).stats, { scanned: 0, cached: LIBS + 1 });
    await sleep(30); // past the clock tick of the files' creation, so that the edit moves a ctime
    writeKeepingTimes(join(s.dir, path, 'lib/x.so'), 'EDITED, SAME SIZE AND TIMES'.padEnd(`no references ${path}`.length, '.'));
    const after = await build(s, 1);
    assert.equal(after.stats.scanned, 1, `the edit in ${path} went unnoticed`);
    const i = after.paths.indexOf(`${SD}/${path}`);
    assert.notEqual(after.contentIds[i], cold.contentIds[i]);
  });
}

/** LIBS paths' lists as a record has them (every lib: `lib`, `lib/x.so`), with a chunk of `chunk` paths. */
async function lists(chunk: number): Promise<{ lists: StatLists; dir: string }> {
  const s = await store();
  return { lists: { prefix: `${s.dir}/`, paths: s.libs, names: s.libs.map(() => 'lib\nlib/x.so'), chunk }, dir: s.dir };
}

test('the values read by both threads are each path\'s statListValues, in order, as one thread reads them', async () => {
  const { lists: l } = await lists(16);
  const expected = new Float64Array(PER_NODE * 3 * LIBS);
  l.paths.forEach((p, i) => assert.equal(statListValues(`${l.prefix}${p}`, ['lib', 'lib/x.so'], expected, PER_NODE * 3 * i), true));
  assert.deepEqual(await statListsValues(l, 1), expected);
  assert.deepEqual(await statListsValues(l, undefined), expected);
});

test('a stat thread started before its work is known (while a record is read) is given it, and its values are one thread\'s', async () => {
  const { lists: l } = await lists(16);
  const expected = new Float64Array(PER_NODE * 3 * LIBS);
  l.paths.forEach((p, i) => assert.equal(statListValues(`${l.prefix}${p}`, ['lib', 'lib/x.so'], expected, PER_NODE * 3 * i), true));
  // Used whatever the count of nodes (no threadFrom), and ended with the values.
  const thread = startStatThread();
  assert.deepEqual(await statListsValues(l, undefined, undefined, thread), expected);
  await thread.ended;
});

test('a stat thread started early is stopped when there is nothing to share (one chunk), and the values are read here', async () => {
  const { lists: l } = await lists(LIBS);
  const thread = startStatThread();
  const values = await statListsValues(l, undefined, undefined, thread);
  await thread.ended; // stopped, not left waiting for work (which would keep the process alive)
  assert.ok(values instanceof Float64Array && values.length === PER_NODE * 3 * LIBS);
});

test('an entry gone in any chunk makes the values false, with a thread or without', async () => {
  const { lists: l, dir } = await lists(16);
  rmSync(join(dir, l.paths[LIBS - 1]!, 'lib/x.so'));
  assert.equal(await statListsValues(l, 1), false);
  assert.equal(await statListsValues(l, undefined), false);
  writeFileSync(join(dir, l.paths[LIBS - 1]!, 'lib/x.so'), 'back');
  rmSync(join(dir, l.paths[0]!, 'lib'), { recursive: true });
  assert.equal(await statListsValues(l, 1), false);
  assert.equal(await statListsValues(l, undefined, undefined, startStatThread()), false);
});

test('a claimer takes the chunks left from the shared counter on, marks each done, and leaves the others to whoever claimed them', async () => {
  const { lists: l } = await lists(100);
  const { at, length } = placesOf(l.names);
  assert.equal(length, PER_NODE * 3 * LIBS);
  const values = new Float64Array(length);
  const control = new Int32Array(2);
  const chunks = Math.ceil(LIBS / 100);
  const done = new Uint8Array(chunks);
  control[0] = 2; // chunks 0 and 1 claimed elsewhere
  assert.equal(claimChunks(l, at, values, control, done), true);
  assert.deepEqual([...done], [0, 0, ...Array.from({ length: chunks - 2 }, () => 1)]);
  assert.equal(control[0], chunks + 1); // one claim past the end, which ended the loop
  assert.equal(values[PER_NODE * 3 * 199], 0); // chunk 1's last path: not read here
  assert.notEqual(values[PER_NODE * 3 * 200], 0); // chunk 2's first: read
});

test('a claimer stops at its next claim once the other thread found a check failing', async () => {
  const { lists: l } = await lists(100);
  const { at, length } = placesOf(l.names);
  const control = new Int32Array(2);
  control[1] = 1;
  const done = new Uint8Array(Math.ceil(LIBS / 100));
  assert.equal(claimChunks(l, at, new Float64Array(length), control, done), false);
  assert.deepEqual([...done].filter((d) => d === 1), []);
});

test('a build starts the stat thread before reading a record whose file holds statThreadFrom × RECORD_BYTES_PER_NODE bytes or more; the answer is the same either way', async () => {
  const s = await store();
  const cold = await build(s, 1);
  const bytes = new ClosureRecords(join(s.cache, 'closures')).bytes(s.dir, SD, [`${SD}/${APP}`]);
  assert.ok(bytes > 0);
  assert.equal(new ClosureRecords(join(s.cache, 'closures')).bytes(s.dir, SD, [`${SD}/${lib(0)}`]), 0); // no record of those roots
  const nodes = 2 + 3 + 3 * LIBS; // the app (root, bin, bin/app, share, share/doc) and each lib's three
  // Past the bytes' threshold (started early) and below it but past the nodes' (started late).
  const early = await build(s, Math.floor(bytes / RECORD_BYTES_PER_NODE));
  const late = await build(s, Math.min(nodes, Math.floor(bytes / RECORD_BYTES_PER_NODE) + 1));
  for (const warm of [early, late]) {
    assert.deepEqual(warm.stats, { scanned: 0, cached: LIBS + 1 });
    assert.deepEqual({ ...warm, stats: null }, { ...cold, stats: null });
  }
});
