// summariseLayer reads layers written by other tools too: GNU tar's gnu and posix formats (long
// names, pax records), gzip from gzip(1), uncompressed, and zstd from zstd(1) on every Node. Each entry's
// header format is seen, and the summary agrees with tar's own listing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, writeFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { tool } from './helpers/cli.js';
import { needTool } from './helpers/tools.js';
import { tempDir } from './helpers/tmp.js';
import { summariseLayer } from '../builder/repro/layer-summary.js';

const work = await tempDir('imgbuild-repro-summary-');
const longDir = `deep/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const longFile = `${longDir}/file-with-a-long-name.txt`;

/** A tree with a long path, a symlink and a 1 MiB file, tarred by GNU tar with `args`. */
async function gnuTar(name: string, args: string[]): Promise<string> {
  const dir = await mkdtemp(join(work, 'tree-'));
  await mkdir(join(dir, longDir), { recursive: true });
  await writeFile(join(dir, longFile), 'long\n');
  await writeFile(join(dir, 'big.bin'), Buffer.alloc(1 << 20, 7));
  await symlink('big.bin', join(dir, 'link'));
  const out = join(work, name);
  await tool('tar', ['-C', dir, '--sort=name', '--owner=0', '--group=0', '--mtime=@5', ...args, '-cf', out, 'big.bin', 'deep', 'link']);
  return out;
}

test('GNU tar, gnu format: long names through GNU long-name blocks, every header seen as gnu', async () => {
  const s = await summariseLayer(createReadStream(await gnuTar('gnu.tar', ['--format=gnu'])), 'gnu.tar');
  assert.equal(s.compression, 'none');
  assert.deepEqual(s.entries.map((e) => e.path), ['big.bin', 'deep', 'deep/' + 'd'.repeat(60), longDir, longFile, 'link']);
  assert.deepEqual(new Set(s.entries.map((e) => e.header?.format)), new Set(['gnu']));
  const big = s.entries[0]!;
  assert.equal(big.sha256, createHash('sha256').update(Buffer.alloc(1 << 20, 7)).digest('hex'));
  assert.deepEqual([big.size, big.mtime, big.uid, big.type], [1 << 20, 5, 0, 'file']);
  assert.deepEqual(s.entries[5], { ...s.entries[5]!, type: 'symlink', linkname: 'big.bin' });
});

test('GNU tar, posix format: pax records per entry, ustar format, same entries', async () => {
  const s = await summariseLayer(createReadStream(await gnuTar('posix.tar', ['--format=posix', '--pax-option=delete=atime,delete=ctime'])), 'posix.tar');
  assert.deepEqual(new Set(s.entries.map((e) => e.header?.format)), new Set(['ustar']));
  const long = s.entries.find((e) => e.path === longFile)!;
  assert.equal(long.pax?.path, longFile);
  assert.equal(long.size, 5);
});

test('gzip(1) output: compression gzip, its header read (OS 3), the tar hashed as the diff_id', async () => {
  const tarFile = await gnuTar('for-gzip.tar', ['--format=gnu']);
  await tool('gzip', ['-n', '-k', tarFile]);
  const s = await summariseLayer(createReadStream(`${tarFile}.gz`), 'for-gzip.tar.gz');
  assert.equal(s.compression, 'gzip');
  assert.deepEqual(s.gzipHeader, { flags: 0, mtime: 0, xfl: 0, os: 3 });
  const plain = await summariseLayer(createReadStream(tarFile), 'for-gzip.tar');
  assert.equal(s.diffId, plain.diffId);
  assert.deepEqual(s.entries, plain.entries);
});

test('zstd layers from zstd(1) (with a checksum, two threads): read on every Node (node:zlib from 22.15, fzstd before), the same entries as the tar', async (t) => {
  if (!needTool(t, 'zstd')) return;
  const tarFile = await gnuTar('for-zstd.tar', ['--format=gnu']);
  await tool('zstd', ['-q', '-k', '-T2', tarFile]);
  const s = await summariseLayer(createReadStream(`${tarFile}.zst`), 'for-zstd.tar.zst');
  assert.equal(s.compression, 'zstd');
  assert.equal(s.entries.length, 6);
  const plain = await summariseLayer(createReadStream(tarFile), 'for-zstd.tar');
  assert.equal(s.diffId, plain.diffId);
  assert.deepEqual(s.entries, plain.entries);
});

test('a blob that is not a tar: an error naming it', async () => {
  const file = join(work, 'junk.gz');
  await writeFile(file, zlib.gzipSync(Buffer.alloc(2048, 0x41)));
  await assert.rejects(summariseLayer(createReadStream(file), 'layer 3 (sha256:abc)'), /^ImgbuildError: layer 3 \(sha256:abc\): cannot read the layer as a gzip-compressed tar: /);
});
