// `imgbuild cache prune`: least recently used blobs go first; layer records stay unless unused for
// --older-than or unreadable (a record without its blob still serves a push, and CI keeps only
// records); the report says what went and why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { cachedLayer } from '../builder/cache/layer-source.js';
import { LayerCache } from '../builder/cache/layer-cache.js';
import { pruneCache, type PruneResult } from '../builder/cache/prune.js';
import { parseAge } from '../builder/commands/cache.js';
import { parseSize } from '../builder/unit-sum.js';
import type { LayerBlob } from '../builder/layer/types.js';
import { writeLayer } from '../builder/layer/write-layer.js';
import type { LayerEntry, LayerWriteOptions } from '../builder/layer/types.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const opts: LayerWriteOptions = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'none' };
const DAY = 86400_000;

/** A cache with three layers of 10, 20 and 30 KiB, last used 30, 20 and 10 days ago, each with a record. */
async function cacheWithThreeLayers(): Promise<{ root: string; blobs: BlobStore; cache: LayerCache; layers: LayerBlob[]; keys: string[]; now: number }> {
  const root = await tempDir('imgbuild-prune-');
  const blobs = new BlobStore(join(root, 'blobs'));
  const cache = new LayerCache(root);
  const now = Date.now();
  const layers: LayerBlob[] = [];
  const keys: string[] = [];
  for (const [i, kib] of [10, 20, 30].entries()) {
    const entries: LayerEntry[] = [{ kind: 'file', path: `f${i}`, mode: 0o444, content: { from: 'bytes', data: Buffer.alloc(kib * 1024 - 1536, i) } }];
    const blob = await writeLayer(entries, opts, blobs);
    const key = String(i).repeat(64);
    await cache.put(key, blob);
    const when = new Date(now - (30 - i * 10) * DAY);
    await utimes(blobs.path(blob.digest), when, when);
    await utimes(cache.recordPath(key), when, when);
    layers.push(blob);
    keys.push(key);
  }
  return { root, blobs, cache, layers, keys, now };
}

test('the three test layers and their records have the sizes the prune tests count on', async () => {
  const c = await cacheWithThreeLayers();
  assert.deepEqual(c.layers.map((l) => l.size), [10 * 1024, 20 * 1024, 30 * 1024]);
  for (const k of c.keys) assert.equal(await bytesOf(c.cache.recordPath(k)), 427); // with the record checksum (`sum`)
});

/** Every count and byte total of a prune that removed nothing, with what it kept. */
function removedNothing(kept: PruneResult['kept']): PruneResult {
  const none = { count: 0, bytes: 0 };
  return {
    removed: { blobs: { olderThan: none, maxSize: none }, layerRecords: { olderThan: none, unreadable: none }, scanRecords: { olderThan: none }, tempFiles: { stale: none } },
    kept,
  };
}

/** The total size of these files. */
/** The cached layer for `key` when its record and its blob are both there (as a build finds it). */
function lookup(cache: LayerCache, key: string): LayerBlob | undefined {
  const record = cache.get(key);
  return record && cache.blobFile(record) ? record : undefined;
}

async function bytesOf(...paths: string[]): Promise<number> {
  let n = 0;
  for (const p of paths) n += (await stat(p)).size;
  return n;
}

test('a prune with no option keeps every blob and every layer record, those whose blob is gone too', async () => {
  const c = await cacheWithThreeLayers();
  await rm(c.blobs.path(c.layers[0]!.digest));
  await rm(c.blobs.path(c.layers[1]!.digest));
  const records = await bytesOf(...c.keys.map((k) => c.cache.recordPath(k)));
  const r = await pruneCache(c.root, { now: c.now });
  assert.deepEqual(r, removedNothing({ blobs: { count: 1, bytes: 30 * 1024 }, layerRecords: { count: 3, bytes: records }, scanRecords: { count: 0, bytes: 0 } }));
  assert.deepEqual(c.keys.map((k) => c.cache.get(k)), c.layers);
});

test('--max-size removes the least recently used blobs until the rest fit, and keeps their records', async () => {
  const c = await cacheWithThreeLayers();
  const r = await pruneCache(c.root, { maxSize: 50 * 1024, now: c.now });
  assert.deepEqual(r.removed.blobs, { olderThan: { count: 0, bytes: 0 }, maxSize: { count: 1, bytes: 10 * 1024 } });
  assert.deepEqual(r.kept.blobs, { count: 2, bytes: 50 * 1024 });
  assert.equal(r.kept.layerRecords.count, 3);
  assert.equal(await c.blobs.has(c.layers[0]!.digest), false);
  assert.deepEqual(c.cache.get(c.keys[0]!), c.layers[0]);
  assert.deepEqual(lookup(c.cache, c.keys[2]!), c.layers[2]);
});

test('--max-size never removes a blob used within the last minute (a build beside the prune may be reading it): the cache stays above the bound', async () => {
  const c = await cacheWithThreeLayers();
  // The least recently used blob is used again 59 s before the prune: now the most recently used.
  const inUse = new Date(c.now - 59_000);
  await utimes(c.blobs.path(c.layers[0]!.digest), inUse, inUse);
  const r = await pruneCache(c.root, { maxSize: 35 * 1024, now: c.now });
  assert.deepEqual(r.removed.blobs, { olderThan: { count: 0, bytes: 0 }, maxSize: { count: 2, bytes: 50 * 1024 } });
  assert.deepEqual(r.kept.blobs, { count: 1, bytes: 10 * 1024 });
  const atTheBound = await pruneCache(c.root, { maxSize: 5 * 1024, now: c.now });
  assert.deepEqual(atTheBound.kept.blobs, { count: 1, bytes: 10 * 1024 }, 'still in use: kept above the bound');
  const later = await pruneCache(c.root, { maxSize: 5 * 1024, now: c.now + 1000 });
  assert.deepEqual(later.removed.blobs.maxSize, { count: 1, bytes: 10 * 1024 }, 'a minute after its use it goes');
});

test('a cache hit makes a layer recently used, so it outlives younger unused ones', async () => {
  const c = await cacheWithThreeLayers();
  assert.deepEqual(lookup(c.cache, c.keys[0]!), c.layers[0]);
  const r = await pruneCache(c.root, { maxSize: 35 * 1024 });
  assert.deepEqual(r.kept.blobs, { count: 1, bytes: 10 * 1024 });
  assert.equal(await c.blobs.has(c.layers[0]!.digest), true);
  assert.equal(await c.blobs.has(c.layers[2]!.digest), false);
});

test('--older-than removes blobs, layer records and scan records not used within that time', async () => {
  const c = await cacheWithThreeLayers();
  const scanDir = join(c.root, 'scan');
  await mkdir(scanDir);
  for (const [name, days] of [['a.json', 30], ['b.json', 5]] as const) {
    await writeFile(join(scanDir, name), '{}');
    const when = new Date(c.now - days * DAY);
    await utimes(join(scanDir, name), when, when);
  }
  const oldRecords = await bytesOf(c.cache.recordPath(c.keys[0]!), c.cache.recordPath(c.keys[1]!));
  const r = await pruneCache(c.root, { olderThanMs: 15 * DAY, now: c.now });
  assert.deepEqual(r.removed.blobs.olderThan, { count: 2, bytes: 30 * 1024 });
  assert.deepEqual(r.removed.layerRecords.olderThan, { count: 2, bytes: oldRecords });
  assert.deepEqual(r.removed.scanRecords.olderThan, { count: 1, bytes: 2 });
  assert.deepEqual([r.kept.blobs.count, r.kept.layerRecords.count, r.kept.scanRecords.count], [1, 1, 1]);
  assert.deepEqual(c.keys.map((k) => c.cache.get(k)), [undefined, undefined, c.layers[2]]);
  assert.deepEqual(await readdir(scanDir), ['b.json']);
});

test('--older-than 0s empties the cache (what the hint for a stale record asks for)', async () => {
  const c = await cacheWithThreeLayers();
  assert.deepEqual(lookup(c.cache, c.keys[2]!), c.layers[2]); // used just now
  const r = await pruneCache(c.root, { olderThanMs: 0 });
  assert.deepEqual([r.kept.blobs.count, r.kept.layerRecords.count], [0, 0]);
  assert.deepEqual(c.keys.map((k) => c.cache.get(k)), [undefined, undefined, undefined]);
});

test('an unreadable layer record goes, counted as unreadable: not JSON, or not the record its file name says', async () => {
  const c = await cacheWithThreeLayers();
  await writeFile(c.cache.recordPath(c.keys[0]!), 'not json');
  await writeFile(c.cache.recordPath(c.keys[1]!), JSON.stringify({ v: 1, key: c.keys[2], blob: c.layers[1] }));
  const bad = await bytesOf(c.cache.recordPath(c.keys[0]!), c.cache.recordPath(c.keys[1]!));
  const r = await pruneCache(c.root, { now: c.now });
  assert.deepEqual(r.removed.layerRecords, { olderThan: { count: 0, bytes: 0 }, unreadable: { count: 2, bytes: bad } });
  assert.equal(r.kept.layerRecords.count, 1);
  assert.deepEqual(r.kept.blobs, { count: 3, bytes: 60 * 1024 });
  await assert.rejects(stat(c.cache.recordPath(c.keys[0]!)), { code: 'ENOENT' });
  await assert.rejects(stat(c.cache.recordPath(c.keys[1]!)), { code: 'ENOENT' });
});

test('temp files of builds that died a day ago go; a running build’s fresh temp file stays', async () => {
  const c = await cacheWithThreeLayers();
  const dir = join(c.root, 'blobs', 'sha256');
  await writeFile(join(dir, '.tmp-1-dead'), 'x');
  await writeFile(join(dir, `.tmp-${process.pid}-live`), 'x');
  const old = new Date(c.now - 2 * DAY);
  await utimes(join(dir, '.tmp-1-dead'), old, old);
  const r = await pruneCache(c.root, { now: c.now });
  assert.deepEqual(r.removed.tempFiles.stale, { count: 1, bytes: 1 });
  assert.deepEqual(r.removed.blobs, { olderThan: { count: 0, bytes: 0 }, maxSize: { count: 0, bytes: 0 } });
  assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.tmp')), [`.tmp-${process.pid}-live`]);
});

test('a build that finds a record without its blob (its bytes made only if read) marks the record used', async () => {
  const c = await cacheWithThreeLayers();
  await rm(c.blobs.path(c.layers[0]!.digest));
  const before = Date.now();
  const maker = { key: async () => c.keys[0]!, write: () => assert.fail('not written'), measure: () => assert.fail('not measured'), stream: () => assert.fail('not read') };
  const made = await cachedLayer(maker, c.cache);
  assert.equal(made.origin, 'deferred');
  assert.equal(made.layer.digest, c.layers[0]!.digest);
  assert.ok((await stat(c.cache.recordPath(c.keys[0]!))).mtimeMs >= before - 1000);
});

test('sizes and ages parse as documented; nonsense does not', () => {
  assert.equal(parseSize('1234'), 1234);
  assert.equal(parseSize('500M'), 500 * 2 ** 20);
  assert.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(parseSize('2tb'), 2 * 2 ** 40);
  assert.equal(parseSize('ten'), undefined);
  assert.equal(parseAge('30d'), 30 * DAY);
  assert.equal(parseAge('1w2d'), 9 * DAY);
  assert.equal(parseAge('90m'), 90 * 60_000);
  assert.equal(parseAge('30'), undefined);
  assert.equal(parseAge(''), undefined);
});

test('imgbuild cache prune works on $IMGBUILD_CACHE_DIR, prints JSON with --json, and refuses a size it cannot read', async () => {
  const c = await cacheWithThreeLayers();
  await mkdir(join(c.root, 'scan'), { recursive: true });
  const ok = await runCli(['cache', 'prune', '--max-size', '30K', '--json'], { env: { ...process.env, IMGBUILD_CACHE_DIR: c.root } });
  assert.equal(ok.code, 0, ok.stderr);
  const r = JSON.parse(ok.stdout.toString()) as { schemaVersion: number; cacheDir: string; maxSize: number; olderThanMs: null } & PruneResult;
  assert.equal(r.schemaVersion, 1);
  assert.deepEqual([r.cacheDir, r.maxSize, r.olderThanMs], [c.root, 30 * 1024, null]);
  assert.deepEqual(r.removed.blobs.maxSize, { count: 2, bytes: 30 * 1024 });
  assert.deepEqual([r.kept.blobs, r.kept.layerRecords.count], [{ count: 1, bytes: 30 * 1024 }, 3]);
  assert.equal((await stat(c.blobs.path(c.layers[2]!.digest))).size, 30 * 1024);

  const bad = await runCli(['cache', 'prune', '--max-size', 'lots'], { env: { ...process.env, IMGBUILD_CACHE_DIR: c.root } });
  assert.equal(bad.code, 2, 'a usage error');
  assert.match(bad.stderr, /error\[usage\]: --max-size "lots" is not a size like 500M or 10G/);
});

test('with no option, imgbuild cache prune says it removed nothing and why it kept blobs and records', async () => {
  const c = await cacheWithThreeLayers();
  await rm(c.blobs.path(c.layers[0]!.digest));
  const r = await runCli(['cache', 'prune'], { env: { ...process.env, IMGBUILD_CACHE_DIR: c.root } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(
    r.stdout.toString(),
    `${c.root}:
  removed nothing
  kept 2 blobs (50.0 KiB): blobs go only with --max-size <size> (least recently used first) or --older-than <age>
  kept 3 layer records (1.3 KiB): records are kept unless --older-than; CI keeps them
  kept 0 scan records (0 B): kept unless --older-than
`,
  );
});

test('imgbuild cache prune lists each kind it removed with its count, bytes and reason', async () => {
  const c = await cacheWithThreeLayers();
  await mkdir(join(c.root, 'layers', 'ff'));
  await writeFile(join(c.root, 'layers', 'ff', `${'f'.repeat(64)}.json`), 'not json');
  const temp = join(c.root, 'blobs', 'sha256', '.tmp-1-dead');
  await writeFile(temp, 'x');
  await utimes(temp, new Date(c.now - 2 * DAY), new Date(c.now - 2 * DAY));
  const r = await runCli(['cache', 'prune', '--older-than', '25d', '--max-size', '30K'], { env: { ...process.env, IMGBUILD_CACHE_DIR: c.root } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout.toString(),
    `${c.root}:
  removed 1 blob (10.0 KiB): not used for 25d
  removed 1 blob (20.0 KiB): least recently used beyond --max-size 30K
  removed 1 layer record (8 B): unreadable (not JSON, not a layer record, or without the checksum of its fields)
  removed 1 layer record (427 B): not used for 25d
  removed 1 temp file (1 B): left by a build that stopped (its process is gone, or older than a day)
  kept 1 blob (30.0 KiB): used within 25d, within --max-size 30K
  kept 2 layer records (854 B): used within 25d
  kept 0 scan records (0 B): written within 25d
`,
  );
});

test('--older-than removes closure records (closures/) not written within that time, counted with the scan records', async () => {
  const c = await cacheWithThreeLayers();
  const dir = join(c.root, 'closures');
  await mkdir(dir);
  for (const [name, days] of [['old.json', 30], ['new.json', 5]] as const) {
    await writeFile(join(dir, name), '{"v":0}');
    const when = new Date(c.now - days * DAY);
    await utimes(join(dir, name), when, when);
  }
  const r = await pruneCache(c.root, { olderThanMs: 15 * DAY, now: c.now });
  assert.deepEqual(r.removed.scanRecords.olderThan, { count: 1, bytes: 7 });
  assert.deepEqual(r.kept.scanRecords, { count: 1, bytes: 7 });
  assert.deepEqual(await readdir(dir), ['new.json']);
});

test('--older-than removes the records of where blobs were pushed (blob-locations/) not written within that time, counted with the scan records', async () => {
  const c = await cacheWithThreeLayers();
  const dir = join(c.root, 'blob-locations', '0123456789abcdef');
  await mkdir(dir, { recursive: true });
  for (const [name, days] of [['a'.repeat(64), 30], ['b'.repeat(64), 5]] as const) {
    await writeFile(join(dir, name), 'registry.example\napp\n');
    const when = new Date(c.now - days * DAY);
    await utimes(join(dir, name), when, when);
  }
  const r = await pruneCache(c.root, { olderThanMs: 15 * DAY, now: c.now });
  assert.deepEqual(r.removed.scanRecords.olderThan, { count: 1, bytes: 21 });
  assert.deepEqual(r.kept.scanRecords, { count: 1, bytes: 21 });
  assert.deepEqual(await readdir(dir), ['b'.repeat(64)]);
});
