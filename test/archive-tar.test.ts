// writeArchive, the tar of OCI and docker archives: members in the order given, with fixed
// headers in the layers' own encoding, streamed blobs checked against their size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { tempDir } from './helpers/tmp.js';
import { writeArchive, type ArchiveMember } from '../builder/transports/archive-tar.js';
import { IMAGE_ARCHIVE, writeFileAtomically } from '../builder/transports/atomic.js';

const work = await tempDir('imgbuild-archive-tar-');
const blob = Buffer.alloc(100_000, 9);
const members: ArchiveMember[] = [
  { name: 'blobs/', kind: 'directory' },
  { name: 'blobs/sha256/', kind: 'directory' },
  { name: 'blobs/sha256/aa', kind: 'stream', size: blob.length, open: () => Readable.from([blob.subarray(0, 30_000), blob.subarray(30_000)]) },
  { name: 'index.json', kind: 'bytes', data: Buffer.from('{"schemaVersion":2}\n') },
];

test('GNU tar lists the members in order, as root-owned, mtime 0, with their bytes', async () => {
  const file = join(work, 'a.tar');
  await writeArchive(members, createWriteStream(file));
  const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], { encoding: 'utf8' }).trimEnd().split('\n').map((l) => l.split(/\s+/));
  assert.deepEqual(
    listing.map((f) => [f[0], f[1], f[2], `${f[3]} ${f[4]}`, f.slice(5).join(' ')]),
    [
      ['drwxr-xr-x', '0/0', '0', '1970-01-01 00:00:00', 'blobs/'],
      ['drwxr-xr-x', '0/0', '0', '1970-01-01 00:00:00', 'blobs/sha256/'],
      ['-rw-r--r--', '0/0', '100000', '1970-01-01 00:00:00', 'blobs/sha256/aa'],
      ['-rw-r--r--', '0/0', '20', '1970-01-01 00:00:00', 'index.json'],
    ],
  );
  assert.deepEqual(execFileSync('tar', ['-xOf', file, 'blobs/sha256/aa']), blob);
  assert.equal(execFileSync('tar', ['-xOf', file, 'index.json'], { encoding: 'utf8' }), '{"schemaVersion":2}\n');
});

test('the same members give the same bytes, ending in two zero blocks', async () => {
  const a = join(work, 'same-1.tar');
  const b = join(work, 'same-2.tar');
  await writeArchive(members, createWriteStream(a));
  await writeArchive(members, createWriteStream(b));
  const bytes = await readFile(a);
  assert.deepEqual(bytes, await readFile(b));
  assert.equal(bytes.length % 512, 0);
  assert.deepEqual(bytes.subarray(-1024), Buffer.alloc(1024));
});

test('a blob shorter than its descriptor fails the write, naming the member, and leaves no file', async () => {
  const file = join(work, 'short.tar');
  const short: ArchiveMember = { name: 'blobs/sha256/bb', kind: 'stream', size: 10, open: () => Readable.from([Buffer.alloc(4)]) };
  await assert.rejects(
    writeFileAtomically(file, IMAGE_ARCHIVE, (temp) => writeArchive([short], createWriteStream(temp, { flags: 'wx' }))),
    { code: 'archive-write', message: 'archive member blobs/sha256/bb: its blob has only 4 bytes, not the 10 its descriptor says' },
  );
  assert.equal(existsSync(file), false);
});

test('a blob longer than its descriptor fails the write too', async () => {
  const long: ArchiveMember = { name: 'blobs/sha256/cc', kind: 'stream', size: 10, open: () => Readable.from([Buffer.alloc(6), Buffer.alloc(6)]) };
  await assert.rejects(writeArchive([long], createWriteStream(join(work, 'long.tar'))), { code: 'archive-write', message: 'archive member blobs/sha256/cc: its blob has more than 10 bytes, not the 10 its descriptor says' });
});

test('an aborted write stops with the signal\'s reason', async () => {
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  await assert.rejects(writeArchive(members, createWriteStream(join(work, 'aborted.tar')), controller.signal), { message: 'stop' });
});
