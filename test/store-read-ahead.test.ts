// A path of many small files scanned with the main thread reading some of them ahead
// (store/read-ahead.ts, issue 19): whoever reads a file, the scan (NAR hash, content id, references,
// mentions, architectures, scan record) is the one a scan without read-ahead gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scanStorePath, type StorePathScan } from '../builder/store/path-scan.js';
import { answerReadAhead, enableReadAhead, READ_AHEAD_MIN_FILES, receiveReadAhead, type ReadAheadRequest } from '../builder/store/read-ahead.js';
import { BuildWorkerPool } from '../builder/workers/pool.js';
import { AMD64, ARM64, elfFile } from './helpers/elf.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const DEP = `${'d'.repeat(32)}-dep`;
const BIG = `${'b'.repeat(32)}-many-files`;
const ABSENT = `${'z'.repeat(32)}-absent`;

/** A store path of READ_AHEAD_MIN_FILES + 700 small files of varied sizes in nested directories, with ELF files, executables, symlinks and a large file among them. */
async function manyFilesStore(): Promise<{ dir: string; fsPath: string }> {
  const dir = await tempDir();
  await mkdir(join(dir, DEP), { recursive: true });
  await writeFile(join(dir, DEP, 'x'), 'dep\n');
  const fsPath = join(dir, BIG);
  const n = READ_AHEAD_MIN_FILES + 700;
  for (let i = 0; i < n; i++) {
    const sub = join(fsPath, `d${i % 7}`, `e${i % 3}`);
    if (i < 21) await mkdir(sub, { recursive: true });
    const file = join(sub, `f${i}`);
    if (i === 100) await writeFile(file, elfFile(ARM64, 200));
    else if (i === 2500) await writeFile(file, elfFile(AMD64, 300));
    else if (i === 1234) await writeFile(file, Buffer.alloc(200_000, 7)); // read by the dump itself (not a small file)
    else if (i === 1500) await writeFile(file, `#!${SD}/${DEP}/x and ${SD}/${ABSENT}/y\n`);
    else await writeFile(file, 'x'.repeat(i % 97));
    if (i % 50 === 0) await chmod(file, 0o755);
    if (i % 400 === 0) await symlink(`f${i}`, join(sub, `s${i}`));
  }
  return { dir, fsPath };
}

const targets = new Set([DEP.slice(0, 32), BIG.slice(0, 32)]);
const scan = (fsPath: string) => scanStorePath(fsPath, targets, () => 'targets', true, SD);

/** How the "main thread" answers, in-process: at once, later, only some units, or never with data. */
type Mode = 'at-once' | 'later' | 'every-other' | 'fails';

async function scanWithReadAhead(fsPath: string, mode: Mode): Promise<{ result: StorePathScan; read: number; units: number }> {
  let read = 0;
  let units = 0;
  const reply = (answer: Parameters<typeof receiveReadAhead>[0]) => {
    if (answer.data) read++;
    receiveReadAhead(answer);
  };
  enableReadAhead((request: ReadAheadRequest) => {
    units++;
    if (mode === 'at-once') answerReadAhead(request, reply);
    else if (mode === 'every-other' && request.unit % 2 === 0) answerReadAhead(request, reply);
    else if (mode === 'later' || mode === 'fails') {
      // Taken now (the dump must wait for it), answered on a later turn.
      const states = new Int32Array(request.states);
      Atomics.store(states, request.unit, 2);
      const again = { ...request, states: new SharedArrayBuffer(4 * states.length) };
      setImmediate(() => {
        if (mode === 'fails') return reply({ type: 'read-ahead-done', scan: request.scan, unit: request.unit, data: null });
        answerReadAhead({ ...again, unit: request.unit }, reply);
      });
    }
  });
  try {
    return { result: await scan(fsPath), read, units };
  } finally {
    enableReadAhead(undefined);
  }
}

test('a scan whose small files another thread read ahead equals the scan that read them all itself', async () => {
  const { fsPath } = await manyFilesStore();
  const alone = await scan(fsPath);
  assert.deepEqual(alone.found, [DEP.slice(0, 32)]);
  assert.deepEqual(Object.keys(alone.architectures).sort(), ['amd64', 'arm64']);
  assert.ok(alone.mentioned?.includes(ABSENT.slice(0, 32)));
  for (const mode of ['at-once', 'later', 'every-other', 'fails'] as const) {
    const { result, read, units } = await scanWithReadAhead(fsPath, mode);
    assert.deepEqual(result, alone, mode);
    assert.ok(units >= 11, `${mode}: ${units} units asked for`);
    if (mode === 'at-once' || mode === 'later') assert.equal(read, units, mode);
    if (mode === 'every-other') assert.equal(read, Math.ceil(units / 2), mode);
    if (mode === 'fails') assert.equal(read, 0);
  }
});

test('a path with few small files is read by the scanning thread alone', async () => {
  const dir = await tempDir();
  const fsPath = join(dir, BIG);
  await mkdir(fsPath);
  for (let i = 0; i < 100; i++) await writeFile(join(fsPath, `f${i}`), `${i}`);
  let units = 0;
  enableReadAhead(() => units++);
  try {
    await scan(fsPath);
  } finally {
    enableReadAhead(undefined);
  }
  assert.equal(units, 0);
});

test('a path of many small files scanned in a build worker gives the in-process scan', async () => {
  const { dir, fsPath } = await manyFilesStore();
  const pool = new BuildWorkerPool(1);
  try {
    const hashParts = [DEP, BIG].map((n) => n.slice(0, 32));
    const { SharedValue } = await import('../builder/store/shared-value.js');
    const [inWorker] = await pool.run('scan-store-path', { fsPaths: [fsPath], targets: new SharedValue(`t-${dir}`, { hashParts }), keepRecord: true, storeDir: SD });
    const { targetsDigest } = await import('../builder/store/scan-cache.js');
    const here = await scanStorePath(fsPath, new Set(hashParts), () => targetsDigest(hashParts), true, SD);
    assert.deepEqual(inWorker, here);
  } finally {
    await pool.close();
  }
});

test('the main thread answers a unit holding a fifo (swapped in after the walk) with no data, without blocking on it', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'a'), 'abc');
  execFileSync('mkfifo', [join(dir, 'b')]);
  const answers: Array<Uint8Array | null> = [];
  const request = (names: string, sizes: number[]): ReadAheadRequest => ({ type: 'read-ahead', scan: 1, unit: 0, states: new SharedArrayBuffer(4), root: dir, names: Buffer.from(names), sizes });
  answerReadAhead(request('a\0', [3]), (answer) => answers.push(answer.data));
  answerReadAhead(request('a\0b\0', [3, 3]), (answer) => answers.push(answer.data));
  assert.deepEqual(answers, [new Uint8Array(Buffer.from('abc')), null]);
});
