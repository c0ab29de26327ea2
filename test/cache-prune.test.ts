// `imgbuild cache prune`: least recently used blobs go first, records follow their blobs, and a
// build after a prune writes what it needs again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { LayerCache } from '../builder/cache/layer-cache.js';
import { pruneCache } from '../builder/cache/prune.js';
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
  const cache = new LayerCache(join(root, 'layers'));
  const now = Date.now();
  const layers: LayerBlob[] = [];
  const keys: string[] = [];
  for (const [i, kib] of [10, 20, 30].entries()) {
    const entries: LayerEntry[] = [{ kind: 'file', path: `f${i}`, mode: 0o444, content: { from: 'bytes', data: Buffer.alloc(kib * 1024 - 1536, i) } }];
    const blob = await writeLayer(entries, opts, blobs);
    const key = String(i).repeat(64);
    await cache.save(key, blob);
    const when = new Date(now - (30 - i * 10) * DAY);
    await utimes(blobs.path(blob.digest), when, when);
    await utimes(cache.recordPath(key), when, when);
    layers.push(blob);
    keys.push(key);
  }
  return { root, blobs, cache, layers, keys, now };
}

test('the three test layers have the sizes the prune tests count on', async () => {
  const { layers } = await cacheWithThreeLayers();
  assert.deepEqual(layers.map((l) => l.size), [10 * 1024, 20 * 1024, 30 * 1024]);
});

test('--max-size removes the least recently used blobs until the rest fit, and their records', async () => {
  const c = await cacheWithThreeLayers();
  const r = await pruneCache(c.root, { maxSize: 50 * 1024, now: c.now });
  assert.deepEqual(r, { removedBlobs: 1, freedBytes: 10 * 1024, removedRecords: 1, removedTemps: 0, keptBlobs: 2, keptBytes: 50 * 1024 });
  assert.equal(await c.blobs.has(c.layers[0]!.digest), false);
  assert.equal(await c.cache.lookup(c.keys[0]!, c.blobs), undefined);
  assert.deepEqual(await c.cache.lookup(c.keys[2]!, c.blobs), c.layers[2]);
});

test('a cache hit makes a layer recently used, so it outlives younger unused ones', async () => {
  const c = await cacheWithThreeLayers();
  assert.deepEqual(await c.cache.lookup(c.keys[0]!, c.blobs), c.layers[0]);
  const r = await pruneCache(c.root, { maxSize: 35 * 1024 });
  assert.equal(r.keptBytes, 10 * 1024);
  assert.equal(await c.blobs.has(c.layers[0]!.digest), true);
  assert.equal(await c.blobs.has(c.layers[2]!.digest), false);
});

test('--older-than removes what was not used within that time', async () => {
  const c = await cacheWithThreeLayers();
  const r = await pruneCache(c.root, { olderThanMs: 15 * DAY, now: c.now });
  assert.equal(r.removedBlobs, 2);
  assert.equal(r.removedRecords, 2);
  assert.deepEqual([await c.blobs.has(c.layers[0]!.digest), await c.blobs.has(c.layers[1]!.digest), await c.blobs.has(c.layers[2]!.digest)], [false, false, true]);
});

test('temp files of builds that died a day ago go; a running build’s fresh temp file stays', async () => {
  const c = await cacheWithThreeLayers();
  const dir = join(c.root, 'blobs', 'sha256');
  await writeFile(join(dir, '.tmp-1-dead'), 'x');
  await writeFile(join(dir, '.tmp-2-live'), 'x');
  const old = new Date(c.now - 2 * DAY);
  await utimes(join(dir, '.tmp-1-dead'), old, old);
  const r = await pruneCache(c.root, { now: c.now });
  assert.equal(r.removedTemps, 1);
  assert.equal(r.removedBlobs, 0);
  assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.tmp')), ['.tmp-2-live']);
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

test('imgbuild cache prune works on $IMGBUILD_CACHE_DIR and refuses a size it cannot read', async () => {
  const c = await cacheWithThreeLayers();
  await mkdir(join(c.root, 'scan'), { recursive: true });
  const ok = await runCli(['cache', 'prune', '--max-size', '30K', '--json'], { env: { ...process.env, IMGBUILD_CACHE_DIR: c.root } });
  assert.equal(ok.code, 0, ok.stderr);
  const r = JSON.parse(ok.stdout.toString()) as { cacheDir: string; removedBlobs: number; keptBytes: number };
  assert.deepEqual([r.cacheDir, r.removedBlobs, r.keptBytes], [c.root, 2, 30 * 1024]);
  assert.equal((await stat(c.blobs.path(c.layers[2]!.digest))).size, 30 * 1024);

  const bad = await runCli(['cache', 'prune', '--max-size', 'lots'], { env: { ...process.env, IMGBUILD_CACHE_DIR: c.root } });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /error\[cache-option\]: --max-size "lots" is not a size like 500M or 10G/);
});
