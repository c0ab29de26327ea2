/**
 * A split scan of a tree of more than 64 entries (split-extras.ts) keeps no tree of objects: its
 * record's fingerprint, its hand-over record and its content id are made node by node as the tree
 * comes in. Each must be what the one-thread scan gives from its tree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { scanStorePath, fillHandover, type ScanTargets, type StorePathScan } from '../builder/store/path-scan.js';
import { draftHandover, handoverAllInline, SHARED_MIN } from '../builder/store/handover.js';
import { splitCounts, splitReadTree } from '../builder/store/split-scan.js';
import { SplitExtras } from '../builder/store/split-extras.js';
import { treeFingerprint } from '../builder/store/tree-fingerprint.js';
import { contentId, contentIdOf } from '../builder/store/content-id.js';
import { BuildWorkerPool } from '../builder/workers/pool.js';
import { SharedValue } from '../builder/store/shared-value.js';
import { runCli } from './helpers/cli.js';
import { writeTree } from './helpers/nix.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const hashPart = (seed: string) => (seed + '0123456789abcdfghijklmnpqrsvwxyz').slice(0, 32);
const APP = `${hashPart('aaaa')}-app`;
const LIB = `${hashPart('bbbb')}-lib`;
const targets = new Set([hashPart('aaaa'), hashPart('bbbb')]);
/** Past STAT_LIST_MAX (64) entries: the split keeps no tree. */
const SPLIT_FROM = 100;

/**
 * A store path of `files` small files (a flat directory and nested ones), symlinks, a setuid
 * executable, a setgid directory and a sticky one, an empty file, UTF-8 names; with `big`, files
 * over the hand-over's inline size (16 KiB) and over the split's pre-read size (64 KiB).
 */
async function store(options: { files?: number; big?: boolean; notUtf8?: boolean } = {}): Promise<{ dir: string; app: string }> {
  const dir = join(await tempDir('imgbuild-split-extras-'), 'störe');
  const app = join(dir, APP);
  const tree: Record<string, Parameters<typeof writeTree>[1][string]> = {
    'bin/app': { content: `#!/bin/sh\nexec ${SD}/${LIB}/lib/libx.so\n`, executable: true },
    'share/link': { symlink: '../bin/app' },
    'share/abs-link': { symlink: `${SD}/${LIB}/lib/libx.so` },
    'share/empty': '',
    'share/café.txt': 'UTF-8, not ASCII',
    'share/gid/x': 'in a setgid directory',
    'share/tmp/y': 'in a sticky directory',
  };
  for (let i = 0; i < (options.files ?? 300); i++) tree[`flat/f${String(i).padStart(5, '0')}`] = `flat file ${i}\n`;
  for (let i = 0; i < 30; i++) tree[`many/d${i}/x`] = { content: `x${i}`, executable: i % 2 === 0 };
  if (options.big) {
    tree['flat/f00150-mid'] = { content: Buffer.alloc(40 * 1024, 7) };
    tree['share/big'] = { content: Buffer.alloc(200 * 1024, 9) };
  }
  writeTree(app, tree);
  chmodSync(join(app, 'bin/app'), 0o4755);
  chmodSync(join(app, 'share/gid'), 0o2755);
  chmodSync(join(app, 'share/tmp'), 0o1777);
  writeTree(join(dir, LIB), { 'lib/libx.so': 'no references' });
  if (options.notUtf8) writeFileSync(Buffer.concat([Buffer.from(`${app}/share/`), Buffer.from([0xff, 0x41])]), 'not UTF-8');
  // Scans of it then make their records (none of a scan within a clock tick of the files).
  await pastRacyWindow();
  return { dir, app };
}

function scan(path: string, splitFrom?: number, handoverMax = 32 * 1024 * 1024): Promise<StorePathScan> {
  return scanStorePath(path, targets, () => 'digest-of-targets', true, SD, handoverMax, splitFrom);
}

function comparable(s: StorePathScan) {
  return { ...s, handover: s.handover ? Buffer.from(s.handover).toString('hex') : undefined };
}

async function splitEqualsOneThread(app: string, handoverMax?: number): Promise<StorePathScan> {
  const one = await scan(app, undefined, handoverMax);
  const before = splitCounts.split;
  const split = await scan(app, SPLIT_FROM, handoverMax);
  assert.equal(splitCounts.split, before + 1, 'the scan was not split');
  assert.deepEqual(comparable(split), comparable(one));
  return one;
}

test('a split scan of small files gives the one-thread scan: fingerprint, content id with special bits, an all-inline hand-over record', async () => {
  const { app } = await store();
  const one = await splitEqualsOneThread(app);
  assert.ok(one.handover && handoverAllInline(one.handover));
  assert.match(JSON.parse(one.record!).fingerprint, /^[0-9a-f]{64}$/);
});

test('a split scan with files over the inline size gives the one-thread scan: the hand-over record is the listing alone', async () => {
  const { app } = await store({ big: true });
  const one = await splitEqualsOneThread(app);
  assert.ok(one.handover && !handoverAllInline(one.handover));
});

test('a split scan gives the one-thread hand-over at every cap: all inline, the listing alone, none', async () => {
  const { app } = await store();
  const full = (await scan(app)).handover!.length;
  const listing = (await scan(app, undefined, full - 1)).handover!.length;
  assert.ok(listing < full);
  // Inlined files fill the cap partway through the tree: the record drops their bytes there.
  for (const cap of [full, full - 1, Math.floor((full + listing) / 2), listing]) assert.ok((await splitEqualsOneThread(app, cap)).handover, `no record at ${cap}`);
  for (const cap of [listing - 1, 8]) assert.equal((await splitEqualsOneThread(app, cap)).handover, undefined);
});

test('a split scan of a tree with a name that is not UTF-8 gives the one-thread scan: no hand-over record', async () => {
  const { app } = await store({ notUtf8: true });
  assert.equal((await splitEqualsOneThread(app)).handover, undefined);
});

test('the extras of a split whose areas fill up are those of its tree: files the threads did not read are read for the record', async () => {
  const { app } = await store();
  const root = Buffer.from(app);
  for (const areaBytes of [0, 4096]) {
    const extras = new SplitExtras({ fingerprint: true, handover: { baseName: APP, maxBytes: 32 * 1024 * 1024 } });
    const split = await splitReadTree(root, { sink: () => undefined, extras }, undefined, { areaBytes });
    assert.ok(split?.tree);
    const draft = draftHandover(APP, null, split.tree, 32 * 1024 * 1024)!;
    fillHandover(draft, split, root, split.tree);
    assert.ok(extras.handover()!.bytes.equals(draft.bytes), `hand-over differs with areaBytes ${areaBytes}`);
    assert.equal(extras.fingerprint(), treeFingerprint(split.tree));
    assert.equal(contentIdOf('ab'.repeat(32), extras.specials), contentId('ab'.repeat(32), split.tree));
    assert.deepEqual(extras.specials.map((s) => `${s.path.toString()} ${s.bits.toString(8)}`), ['/bin/app 4000', '/share/gid 2000', '/share/tmp 1000']);
  }
});

test('a split asked for no tree makes none', async () => {
  const { app } = await store();
  const split = await splitReadTree(Buffer.from(app), { sink: () => undefined }, undefined, { keepTree: false });
  assert.ok(split);
  assert.equal(split.tree, undefined);
});

test('a hand-over record\'s file read at its end that changed size is a StoreError naming it', async () => {
  const dir = await tempDir('imgbuild-split-extras-');
  const file = join(dir, 'f');
  writeFileSync(file, 'now longer than it was listed');
  const extras = new SplitExtras({ fingerprint: false, handover: { baseName: 'x', maxBytes: 1024 } });
  extras.directory(undefined, '', 1, 0, () => Buffer.alloc(0));
  extras.file(Buffer.from('f'), 'f', false, 5, 0, 0, 0, 0, undefined, Buffer.from(file), () => Buffer.from('/f'));
  extras.close();
  assert.throws(
    () => extras.handover(),
    (e: Error) => e.name === 'StoreError' && e.message === `${file} changed while it was read (expected 5 bytes, read 29); store paths must not change`,
  );
});

test('a build worker\'s split hands over its shared record (in a growable buffer) whole', async () => {
  const { dir, app } = await store({ files: 10_000 });
  const one = await scan(app);
  assert.ok(one.handover!.length >= SHARED_MIN);
  const pool = new BuildWorkerPool(1);
  try {
    const job = {
      fsPaths: [app, join(dir, LIB)],
      targets: new SharedValue<ScanTargets>('split-extras-test', { hashParts: [...targets] }),
      keepRecord: true,
      storeDir: SD,
      handoverBytes: 32 * 1024 * 1024,
      splitFrom: SPLIT_FROM,
    };
    const [split] = await pool.run('scan-store-path', job);
    assert.ok(split?.handover);
    assert.ok(Buffer.from(split.handover).equals(one.handover!));
  } finally {
    await pool.close();
  }
});

test('a build of a big path with a fifo in its middle fails as the unsplit build does, writing no output', async () => {
  const { dir } = await store({ files: 10_050 });
  execFileSync('mkfifo', [join(dir, APP, 'flat/f05000-fifo')]);
  const spec = join(dir, '..', 'image.json');
  writeFileSync(spec, JSON.stringify({ name: 'split/extras', tag: 'v1', store: { dir, storeDir: SD }, contents: [`${SD}/${APP}`], compressor: 'none' }));
  // IMGBUILD_WORKERS=0: no thread, so no split; unset: threads, and the path split.
  const build = async (workers: string | undefined) => {
    const out = join(dir, '..', `out-${workers ?? 'threads'}`);
    const { IMGBUILD_WORKERS: _, ...env } = process.env;
    const r = await runCli(['build', spec, '-o', out, '--json'], { env: { ...env, ...(workers === undefined ? {} : { IMGBUILD_WORKERS: workers }) } });
    return { code: r.code, error: (JSON.parse(r.stdout.toString()) as { error?: { code: string; message: string } }).error, written: existsSync(out) };
  };
  const one = await build('0');
  assert.equal(one.error?.code, 'store');
  assert.match(one.error!.message, /f05000-fifo is neither a regular file, a directory nor a symlink/);
  assert.deepEqual(await build(undefined), one);
  assert.equal(one.written, false);
  assert.equal(one.code, 1);
});
