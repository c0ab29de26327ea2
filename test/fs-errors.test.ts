// File system errors a user or the system causes (a read-only disk, a name too long, a symlink
// loop, a failing disk...) are said as such, naming the path, with a hint: never "internal
// error". Where imgbuild knows what it was writing (an output), the error says that and names
// the flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeFailure } from '../builder/commands/failure.js';
import { streamOutputError } from '../builder/commands/stream-output.js';
import { IMAGE_ARCHIVE, writeFileAtomically } from '../builder/transports/atomic.js';
import { tempDir } from './helpers/tmp.js';

/** An error as Node's fs gives it. */
function errno(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, errno: -1, syscall, path });
}

test('each errno a user or the system causes is error[file] with its words, the path and a hint', () => {
  const cases: [string, string][] = [
    ['EROFS', 'read-only file system'],
    ['ENAMETOOLONG', 'file name too long (a name holds at most 255 bytes, a path 4095)'],
    ['ELOOP', 'too many levels of symbolic links (a symlink loop on the path?)'],
    ['EDQUOT', 'disk quota exceeded'],
    ['EMFILE', 'too many open files in this process'],
    ['ENFILE', 'too many open files on this system'],
    ['EBUSY', 'device or resource busy (a mount point, or a file in use)'],
    ['ETXTBSY', 'text file busy (a program running from that file)'],
    ['EXDEV', 'cross-device link (a rename or hard link between two file systems)'],
    ['EFBIG', 'file too large for this file system or for the file size limit'],
    ['EIO', 'input/output error (the disk or the file system failed)'],
    ['ENXIO', 'no such device or address (a device that is not there, a socket, or a fifo no one reads)'],
    ['ENODEV', 'no such device (this file system or device cannot do that)'],
  ];
  for (const [code, what] of cases) {
    const f = describeFailure(errno(code, 'open', '/srv/out/app.tar'));
    assert.deepEqual([f.code, f.message, f.exitCode, f.stack], ['file', `${what}: /srv/out/app.tar`, 1, undefined], code);
    assert.ok(f.hint && f.hint.length > 0, `${code} has a hint`);
  }
});

test('an errno down the cause chain is found; a rename names both paths', () => {
  const wrapped = new Error('writing the archive', { cause: errno('EIO', 'write', '/srv/out/app.tar') });
  assert.equal(describeFailure(wrapped).message, 'input/output error (the disk or the file system failed): /srv/out/app.tar');
  const rename = Object.assign(errno('EXDEV', 'rename', '/a/x'), { dest: '/b/x' });
  assert.equal(describeFailure(rename).message, 'cross-device link (a rename or hard link between two file systems): /a/x -> /b/x');
});

test('real errors from the file system: a name too long and a symlink loop', async () => {
  const dir = await tempDir('imgbuild-fs-errors-');
  const long = join(dir, 'x'.repeat(300));
  const tooLong = await writeFile(long, '').catch((e: unknown) => e);
  assert.equal(describeFailure(tooLong).message, `file name too long (a name holds at most 255 bytes, a path 4095): ${long}`);
  await symlink('b', join(dir, 'a'));
  await symlink('a', join(dir, 'b'));
  const loop = await open(join(dir, 'a', 'x'), 'w').catch((e: unknown) => e);
  assert.equal(describeFailure(loop).code, 'file');
  assert.match(describeFailure(loop).message, /^too many levels of symbolic links/);
});

test('a read-only file system under an archive output: error[output] naming it and -o, no temp file left', async () => {
  const dir = await tempDir('imgbuild-fs-errors-');
  const out = join(dir, 'app.docker.tar');
  // What the temp file's open gives on a read-only mount (injected: no mount needed).
  const write = async (temp: string) => {
    throw errno('EROFS', 'open', temp);
  };
  const err = await writeFileAtomically(out, IMAGE_ARCHIVE, write).catch((e: unknown) => e);
  const f = describeFailure(err);
  assert.deepEqual([f.code, f.message, f.hint], ['output', `cannot write ${out}: read-only file system; nothing was written`, 'name a path on a writable file system with -o']);
  assert.deepEqual(await readdir(dir), []);
});

test('a failure reading what goes into an output is not said to be the output\'s', async () => {
  const dir = await tempDir('imgbuild-fs-errors-');
  const out = join(dir, 'app.docker.tar');
  const err = await writeFileAtomically(out, IMAGE_ARCHIVE, async () => {
    throw errno('EIO', 'read', '/var/cache/imgbuild/blobs/sha256/aa');
  }).catch((e: unknown) => e);
  assert.equal(describeFailure(err).message, 'input/output error (the disk or the file system failed): /var/cache/imgbuild/blobs/sha256/aa');
  assert.deepEqual(await readdir(dir), []);
});

test('--stream: a file too large behind stdout is error[output], the stream said incomplete', () => {
  const f = describeFailure(streamOutputError(Object.assign(new Error('EFBIG: file too large, write'), { code: 'EFBIG', syscall: 'write' })));
  assert.equal(f.code, 'output');
  assert.equal(f.message, 'cannot write the archive to stdout (--stream): file too large for this file system or for the file size limit: what was written is incomplete');
});
