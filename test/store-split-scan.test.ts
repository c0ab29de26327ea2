// A big store path's scan read by two threads (store/split-scan.ts), as a build that may use
// threads does past SCAN_SPLIT_MIN_NODES nodes: forced here with a low threshold, it gives
// exactly the scan, the hand-over record and the closure of a scan on one thread, and a failure
// seen by either thread gives the error of a scan on one thread.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { fillHandover, scanStorePath, type StorePathScan } from '../builder/store/path-scan.js';
import { draftHandover } from '../builder/store/handover.js';
import { dumpNar, readNarTree } from '../builder/store/nar.js';
import { SCAN_SPLIT_MIN_NODES, splitCounts, splitReadTree } from '../builder/store/split-scan.js';
import { BuildWorkerPool } from '../builder/workers/pool.js';
import { SharedValue } from '../builder/store/shared-value.js';
import type { ScanTargets } from '../builder/store/path-scan.js';
import { closureDigest } from '../builder/build/plan.js';
import { writeTree } from './helpers/nix.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const hashPart = (seed: string) => (seed + '0123456789abcdfghijklmnpqrsvwxyz').slice(0, 32);
const APP = `${hashPart('aaaa')}-app`;
const LIB = `${hashPart('bbbb')}-lib`;

/** ELF header of an x86-64 executable (enough for the architecture scan). */
function elfHeader(): Buffer {
  const b = Buffer.alloc(128);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  b.writeUInt16LE(2, 16);
  b.writeUInt16LE(62, 18);
  return b;
}

/**
 * Every shape a store path can have: deep and flat directories, one directory of many entries,
 * symlinks (relative, absolute, dangling, to a directory), executables, setuid, empty files and
 * directories, files over the hand-over's inline size and over the split's pre-read size, names
 * that are UTF-8 and not ASCII, references and ELF files.
 */
async function store(options: { notUtf8?: boolean } = {}): Promise<{ dir: string; app: string }> {
  // Under a directory whose name is not ASCII: the threads' paths are then bytes, not strings.
  const dir = join(await tempDir('imgbuild-split-scan-'), 'störe');
  const app = join(dir, APP);
  const tree: Record<string, Parameters<typeof writeTree>[1][string]> = {
    'bin/app': { content: `#!/bin/sh\nexec ${SD}/${LIB}/lib/libx.so ${SD}/${hashPart('zzzz')}-absent/bin/x\n`, executable: true },
    'bin/elf': { content: elfHeader(), executable: true },
    'share/a/b/c/d/e/f/g/deep': 'deep down',
    'share/link': { symlink: 'a/b/c/d/e/f/g/deep' },
    'share/abs-link': { symlink: `${SD}/${LIB}/lib/libx.so` },
    'share/dangling': { symlink: 'nowhere' },
    'share/dir-link': { symlink: 'a/b' },
    'share/empty': '',
    'share/empty-dir': { dir: true },
    'share/café.txt': 'UTF-8, not ASCII',
    // Over the hand-over's inline size (16 KiB), and over the split's pre-read size (64 KiB).
    'share/mid': { content: Buffer.alloc(40 * 1024, 7) },
    'share/big': { content: Buffer.alloc(200 * 1024, 9) },
  };
  // One directory of many entries, and many small directories.
  for (let i = 0; i < 700; i++) tree[`flat/f${String(i).padStart(4, '0')}`] = `flat file ${i}${i === 650 ? ` ${SD}/${LIB}` : ''}\n`;
  for (let i = 0; i < 60; i++) tree[`many/d${i}/x`] = { content: `x${i}`, executable: i % 2 === 0 };
  writeTree(app, tree);
  chmodSync(join(app, 'bin/app'), 0o4755);
  writeTree(join(dir, LIB), { 'lib/libx.so': 'no references' });
  if (options.notUtf8) writeFileSync(Buffer.concat([Buffer.from(`${app}/share/`), Buffer.from([0xff, 0x41])]), 'a name that is not UTF-8');
  // Scans of it then make their records (none of a scan within a clock tick of the files).
  await pastRacyWindow();
  return { dir, app };
}

const targets = new Set([hashPart('aaaa'), hashPart('bbbb')]);

function scan(path: string, splitFrom?: number): Promise<StorePathScan> {
  return scanStorePath(path, targets, () => 'digest-of-targets', true, SD, 32 * 1024 * 1024, splitFrom);
}

function comparable(s: StorePathScan) {
  return { ...s, handover: s.handover ? Buffer.from(s.handover).toString('hex') : undefined };
}

test('the default threshold is SCAN_SPLIT_MIN_NODES (10,000 nodes)', () => {
  assert.equal(SCAN_SPLIT_MIN_NODES, 10_000);
});

for (const notUtf8 of [false, true]) {
  test(`a split scan of a tree of every shape${notUtf8 ? ' (with a name that is not UTF-8: no hand-over)' : ''} is the scan on one thread: record, content id, references, hand-over`, async () => {
    const { app } = await store({ notUtf8 });
    const one = await scan(app);
    const before = splitCounts.split;
    const split = await scan(app, 1);
    assert.equal(splitCounts.split, before + 1, 'the scan was not split');
    assert.deepEqual(comparable(split), comparable(one));
    assert.equal(one.handover === undefined, notUtf8);
    assert.deepEqual(one.found, [hashPart('bbbb')]);
    assert.deepEqual(one.mentioned, [hashPart('bbbb'), hashPart('zzzz')].sort());
    assert.deepEqual(one.architectures, { amd64: 'bin/elf' });
    // Below the threshold, nothing is split.
    const below = splitCounts.split;
    assert.deepEqual(comparable(await scan(app, 100_000)), comparable(one));
    assert.equal(splitCounts.split, below);
  });
}

test('the split tree, its NAR, ELF heads and hand-over are one thread\'s, also when the areas fill up and files are read by the NAR', async () => {
  const { app } = await store();
  const root = Buffer.from(app);
  const tree = await readNarTree(root);
  const heads = () => {
    const seen: string[] = [];
    return { seen, bytes: 64, minSize: 52, take: (path: Buffer, head: Buffer) => void seen.push(`${path.toString()}:${head.toString('hex')}`) };
  };
  const plainHeads = heads();
  const plainDraft = draftHandover(APP, null, tree, 32 * 1024 * 1024)!;
  const chunks: Buffer[] = [];
  await dumpNar(root, tree, (c) => chunks.push(Buffer.from(c)), plainHeads, plainDraft);
  const expected = Buffer.concat(chunks);
  for (const options of [{}, { areaBytes: 4096 }, { areaBytes: 0 }, { helperReads: true }]) {
    const got: Buffer[] = [];
    const splitHeads = heads();
    const split = await splitReadTree(root, { sink: (c) => got.push(Buffer.from(c)), heads: splitHeads }, undefined, options);
    const what = JSON.stringify(options);
    assert.ok(split, `given up with ${what}`);
    assert.deepEqual(split.tree, tree);
    assert.ok(Buffer.concat(got).equals(expected), `NAR differs with ${what}`);
    assert.deepEqual(splitHeads.seen, plainHeads.seen);
    const draft = draftHandover(APP, null, split.tree, 32 * 1024 * 1024)!;
    fillHandover(draft, split, root, split.tree);
    assert.ok(draft.bytes.equals(plainDraft.bytes), `hand-over differs with ${what}`);
  }
});

test('a directory store splits a big path only while it may use threads, with the same closure, hand-over and scan records', async () => {
  const { dir } = await store();
  const run = async (threads: boolean) => {
    const cache = join(dir, '..', threads ? 'cache-split' : 'cache');
    const src = new DirectoryStoreSource(dir, SD, { cacheDir: join(cache, 'scan'), scanSplitFrom: 1 });
    src.keepHandovers(32 * 1024 * 1024);
    if (threads) src.scanWith(() => undefined); // threads allowed; every scan done here
    const before = splitCounts.split;
    const closure = await src.closure([`${SD}/${APP}`]);
    const records = readdirSync(join(cache, 'scan'))
      .flatMap((f) => readFileSync(join(cache, 'scan', f), 'utf8').split('\n'))
      .filter((l) => l !== '')
      .map((l) => l.replace(dir, '<dir>'))
      .sort();
    return {
      split: splitCounts.split - before,
      digest: closureDigest(closure),
      ids: await src.pathContentIds(closure.paths.map((p) => p.path)),
      handover: Buffer.from(src.handoverOf(`${SD}/${APP}`)!).toString('hex'),
      records,
    };
  };
  const one = await run(false);
  const split = await run(true);
  assert.equal(one.split, 0);
  assert.equal(split.split, 2);
  assert.deepEqual({ ...split, split: 0 }, { ...one, split: 0 });
  assert.equal(one.records.length, 2);
});

test('a build worker splits its scan with a thread of its own: the same results', async () => {
  const { dir, app } = await store();
  const one = await scan(app);
  const pool = new BuildWorkerPool(1);
  try {
    const job = {
      fsPaths: [app, join(dir, LIB)],
      targets: new SharedValue<ScanTargets>('split-scan-test', { hashParts: [...targets] }),
      keepRecord: true,
      storeDir: SD,
      handoverBytes: 32 * 1024 * 1024,
    };
    const [split] = await pool.run('scan-store-path', { ...job, splitFrom: 1 });
    const [plain] = await pool.run('scan-store-path', job);
    // The worker's targets digest is its own (the job's hash parts); the rest is the scan's.
    assert.ok(split && plain);
    assert.deepEqual(comparable(split), comparable(plain));
    assert.deepEqual({ ...comparable(split), record: undefined, check: undefined }, { ...comparable(one), record: undefined, check: undefined });
  } finally {
    await pool.close();
  }
});

test('a node no store holds (a fifo) gives the error of a scan on one thread', async () => {
  const { app } = await store();
  execFileSync('mkfifo', [join(app, 'flat/f0500-fifo')]);
  const one = await scan(app).then(
    () => assert.fail('the scan on one thread accepted a fifo'),
    (e: Error) => e,
  );
  assert.equal(one.name, 'StoreError');
  assert.match(one.message, /f0500-fifo is neither a regular file, a directory nor a symlink/);
  const givenUp = splitCounts.givenUp;
  await assert.rejects(scan(app, 1), (e: Error) => e.name === one.name && e.message === one.message);
  assert.equal(splitCounts.givenUp, givenUp + 1);
  assert.equal(await splitReadTree(Buffer.from(app), { sink: () => undefined }, undefined, { helperReads: true }), undefined);
});

test('an entry the helper thread cannot lstat (its path too long) gives the error of a scan on one thread', async () => {
  const { app } = await store();
  // A directory whose path fits PATH_MAX (4096) and a name in it whose full path does not:
  // listed by readdir, refused by lstat, every time.
  let deep = join(app, 'share');
  while (deep.length < 3900) deep = join(deep, 'd'.repeat(Math.min(200, 3900 - deep.length)));
  mkdirSync(deep, { recursive: true });
  const name = 'n'.repeat(250);
  const link = `${name.slice(0, -1)}l`;
  const inDeep = (f: () => void) => {
    const cwd = process.cwd();
    process.chdir(deep);
    try {
      f();
    } finally {
      process.chdir(cwd);
    }
  };
  inDeep(() => {
    writeFileSync(name, 'too far');
    symlinkSync('x', link);
  });
  // Removed here: the temp dir's removal cannot reach them.
  after(() => inDeep(() => [name, link].forEach((n) => unlinkSync(n))));
  const one = await scan(app).then(
    () => assert.fail('the scan on one thread read a path over PATH_MAX'),
    (e: Error) => e,
  );
  assert.equal(one.name, 'StoreError');
  assert.match(one.message, /^cannot read .*: ENAMETOOLONG/);
  // Every node read by the helper: the failure is its own.
  assert.equal(await splitReadTree(Buffer.from(app), { sink: () => undefined }, undefined, { helperReads: true }), undefined);
  await assert.rejects(scan(app, 1), (e: Error) => e.name === one.name && e.message === one.message);
});
