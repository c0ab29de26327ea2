// Scan records and closure records carry a checksum of their text (store/sealed-json.ts): a record
// damaged on disk (one flipped character of a reference's hash still parses) is not used, the
// path is scanned again with a warning, and `cache verify` lists it (--repair removes it). A
// record without a checksum (an older version) is a miss, never trusted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { readScanRecords, replaceScanRecords, type ScanRecord } from '../builder/store/scan-cache.js';
import { verifyCache } from '../builder/cache/verify.js';
import { writeTree } from './helpers/nix.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const APP = `${'a'.repeat(32)}-app`;
const LIB = `${'b'.repeat(32)}-lib`;
/** LIB's hash part with its last character changed: still base32, names no entry. */
const FLIPPED = `${'b'.repeat(31)}c`;

async function store(): Promise<{ dir: string; cacheDir: string; scan: string; closures: string }> {
  const root = await tempDir('imgbuild-scan-sum-');
  const dir = join(root, 'store');
  writeTree(join(dir, APP), { 'bin/app': `#!${SD}/${LIB}/bin/sh\n` });
  writeTree(join(dir, LIB), { 'bin/sh': 'no references' });
  await pastRacyWindow(); // a scan within a clock tick of the files makes no record
  const cacheDir = join(root, 'cache');
  return { dir, cacheDir, scan: join(cacheDir, 'scan'), closures: join(cacheDir, 'closures') };
}

async function closureOf(s: { dir: string; scan: string }, warnings: string[] = []) {
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.scan, warn: (m) => warnings.push(m) });
  const closure = await src.closure([`${SD}/${APP}`]);
  return { paths: closure.paths.map((p) => [p.path, p.references]), stats: { ...src.stats } };
}

const packOf = (scan: string) => join(scan, readdirSync(scan).find((n) => n.endsWith('.jsonl'))!);

test('a scan record with one character of a reference hash flipped is not used: the path is scanned again, with a warning naming the pack', async () => {
  const s = await store();
  const cold = await closureOf(s);
  assert.deepEqual(cold.paths, [[`${SD}/${APP}`, [`${SD}/${LIB}`]], [`${SD}/${LIB}`, []]]);
  const pack = packOf(s.scan);
  const text = readFileSync(pack, 'utf8');
  assert.ok(text.includes(`"windows":"${'b'.repeat(32)}"`));
  writeFileSync(pack, text.replace(`"windows":"${'b'.repeat(32)}"`, `"windows":"${FLIPPED}"`));

  const warnings: string[] = [];
  const warm = await closureOf(s, warnings);
  assert.deepEqual(warm, { paths: cold.paths, stats: { scanned: 1, cached: 1 } });
  assert.deepEqual(warnings, [`cache: ${pack} holds a damaged scan record of ${join(s.dir, APP)} (its checksum does not match); scanned the path again`]);
  // The new record answers next time, with no warning.
  const again: string[] = [];
  assert.deepEqual(await closureOf(s, again), { paths: cold.paths, stats: { scanned: 0, cached: 2 } });
  assert.deepEqual(again, []);
});

test('a scan record without a checksum (version 5) is a miss: the path is scanned again, silently', async () => {
  const s = await store();
  const cold = await closureOf(s);
  const v5 = readScanRecords(s.scan).map(({ sum: _, ...r }: ScanRecord & { sum?: string }) => ({ ...r, v: 5 }));
  replaceScanRecords(s.scan, v5, { sealed: false });
  const warnings: string[] = [];
  assert.deepEqual(await closureOf(s, warnings), { paths: cold.paths, stats: { scanned: 2, cached: 0 } });
  assert.deepEqual(warnings, []);
});

test('a closure record with one character flipped is not used (a warning), and the closure is the same', async () => {
  const s = await store();
  const open = (warnings: string[]) => new DirectoryStoreSource(s.dir, SD, { cacheDir: s.scan, closureCacheDir: s.closures, warn: (m) => warnings.push(m) });
  const cold = await open([]).closure([`${SD}/${APP}`]);
  const file = join(s.closures, readdirSync(s.closures)[0]!);
  const good = readFileSync(file, 'utf8');
  writeFileSync(file, good.replace(`${'b'.repeat(32)}-lib`, `${FLIPPED}-lib`));
  const warnings: string[] = [];
  const warm = await open(warnings).closure([`${SD}/${APP}`]);
  assert.deepEqual(warm.paths, cold.paths);
  assert.deepEqual(warnings, [`cache: ${file} is a damaged closure record (its checksum does not match); found the closure path by path and wrote it again`]);
  assert.equal(readFileSync(file, 'utf8'), good);
});

test('cache verify lists a damaged scan record line and a damaged closure record; --repair keeps the pack\'s sound records and removes the closure record', async () => {
  const s = await store();
  await new DirectoryStoreSource(s.dir, SD, { cacheDir: s.scan, closureCacheDir: s.closures }).closure([`${SD}/${APP}`]);
  const pack = packOf(s.scan);
  const lines = readFileSync(pack, 'utf8').split('\n').filter(Boolean);
  assert.equal(lines.length, 2);
  const appLine = lines.findIndex((l) => l.includes(`-app","names"`));
  writeFileSync(pack, lines.map((l, i) => (i === appLine ? l.replace(`"windows":"${'b'.repeat(32)}"`, `"windows":"${FLIPPED}"`) : l)).join('\n') + '\n');
  const closure = join(s.closures, readdirSync(s.closures)[0]!);
  writeFileSync(closure, readFileSync(closure, 'utf8').replace('"narSize":[', '"narSize":[1'));

  const found = await verifyCache(s.cacheDir);
  assert.deepEqual(found, {
    checked: { blobs: 0, blobBytes: 0, layerRecords: 0, scanRecords: 2, closureRecords: 1 },
    damaged: [
      { kind: 'scan-record', path: pack, problem: `line ${appLine + 1}, the scan record of ${join(s.dir, APP)}, does not match its checksum (a field was damaged)` },
      { kind: 'closure-record', path: closure, problem: 'does not match its checksum (a field was damaged)' },
    ],
    repaired: false,
  });
  const repaired = await verifyCache(s.cacheDir, { repair: true });
  assert.equal(repaired.repaired, true);
  assert.deepEqual(readFileSync(pack, 'utf8'), `${lines[1 - appLine]}\n`);
  assert.deepEqual(readdirSync(s.closures), []);
  assert.deepEqual((await verifyCache(s.cacheDir)).damaged, []);
});
