// readTar, the one tar reader behind diff, inspect's file listings, SBOMs and gzipped archives:
// it reads what GNU tar writes in its posix and gnu formats (long names, pax records, base-256
// numbers, links, fifos), whatever the chunking of its input, skips content nobody reads, and
// names the entry and the byte offset when a tar is cut short or corrupt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, writeFile, symlink, link } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { tempDir } from './helpers/tmp.js';
import { readTar, TarReadError, type TarReadEntry } from '../builder/layer/tar-read.js';
import { encodeHeader, encodePaxRecords, END_OF_ARCHIVE, padding } from '../builder/layer/tar-header.js';

const work = await tempDir('imgbuild-tar-read-');
const longName = `${'a'.repeat(80)}/${'b'.repeat(80)}/${'c'.repeat(80)}/${'d'.repeat(40)}.txt`;
const unicodeName = 'données/æble-ø.txt';

/** A tree with a long path, a non-ASCII name, a hard link, a symlink with a long target, a fifo and an empty file. */
async function tree(): Promise<string> {
  const dir = await tempDir('imgbuild-tar-read-tree-');
  await mkdir(join(dir, longName, '..'), { recursive: true });
  await writeFile(join(dir, longName), 'long\n');
  await mkdir(join(dir, 'données'));
  await writeFile(join(dir, unicodeName), Buffer.alloc(70_000, 3));
  await link(join(dir, unicodeName), join(dir, 'hard'));
  await symlink(longName, join(dir, 'to-long'));
  await writeFile(join(dir, 'empty'), '');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  return dir;
}

let made = 0;
/** The tree tarred by GNU tar in `format`: the file and its bytes. */
async function gnuTarFile(format: 'posix' | 'gnu', extra: string[] = []): Promise<{ file: string; bytes: Buffer }> {
  const dir = await tree();
  const file = join(work, `${format}-${made++}.tar`);
  execFileSync('tar', ['-C', dir, '--sort=name', '--owner=0', '--group=0', '--mtime=@7', `--format=${format}`, ...extra, '-cf', file, '.']);
  return { file, bytes: await readFile(file) };
}

async function gnuTar(format: 'posix' | 'gnu', extra: string[] = []): Promise<Buffer> {
  return (await gnuTarFile(format, extra)).bytes;
}

interface Read {
  entry: TarReadEntry;
  data: Buffer;
}

async function* chunks(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<Read[]> {
  const out: Read[] = [];
  for await (const { entry, content } of readTar(source)) {
    const parts: Buffer[] = [];
    for await (const c of content) parts.push(Buffer.from(c));
    out.push({ entry, data: Buffer.concat(parts) });
  }
  return out;
}

/** What `tar -tv` says of each entry: type letter, size, name (and link target). */
function tarListing(file: string): string[] {
  return execFileSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' })
    .trimEnd()
    .split('\n')
    .map((l) => {
      const f = l.split(/\s+/);
      return `${f[0]![0]} ${f[2]} ${f.slice(5).join(' ')}`;
    });
}

function ourListing(entries: Read[]): string[] {
  const letter: Record<string, string> = { file: '-', directory: 'd', symlink: 'l', link: 'h', fifo: 'p' };
  return entries.map(({ entry: e }) => {
    const name = e.type === 'link' ? `${e.name} link to ${e.linkname}` : e.type === 'symlink' ? `${e.name} -> ${e.linkname}` : e.name;
    return `${letter[e.type]} ${e.type === 'link' ? 0 : e.size} ${name}`;
  });
}

for (const format of ['posix', 'gnu'] as const) {
  test(`GNU tar's ${format} format: every entry, name and link target as tar -tv lists them, contents intact`, async () => {
    const { file, bytes } = await gnuTarFile(format);
    const entries = await readAll(chunks(bytes, 64 * 1024));
    assert.deepEqual(ourListing(entries), tarListing(file));
    const byName = new Map(entries.map((r) => [r.entry.name, r]));
    assert.equal(byName.get(`./${longName}`)!.data.toString(), 'long\n');
    assert.deepEqual(byName.get(`./${unicodeName}`)!.data, Buffer.alloc(70_000, 3));
    assert.equal(byName.get('./to-long')!.entry.linkname, longName);
    assert.deepEqual(new Set(entries.map((r) => r.entry.format)), new Set([format === 'posix' ? 'ustar' : 'gnu']));
    assert.deepEqual(new Set(entries.map((r) => r.entry.mtime)), new Set([7]));
  });
}

test('a header that straddles chunks reads the same as whole: one-byte and 700-byte chunks', async () => {
  const bytes = await gnuTar('posix');
  const whole = await readAll(chunks(bytes, bytes.length));
  for (const size of [1, 700]) {
    const got = await readAll(chunks(bytes, size));
    assert.deepEqual(got.map((r) => [r.entry.name, r.entry.size, r.entry.dataOffset, sha(r.data)]), whole.map((r) => [r.entry.name, r.entry.size, r.entry.dataOffset, sha(r.data)]));
  }
});

test('pax records show under pax; a pax path, linkpath and size replace the header fields', async () => {
  const body = encodePaxRecords([
    ['linkpath', Buffer.from('target')],
    ['mtime', Buffer.from('1.5')],
    ['path', Buffer.from('from-pax')],
    ['size', Buffer.from('5')],
  ]);
  const paxHeader = encodeHeader({ path: 'PaxHeaders/x', type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: 0, size: body.length });
  paxHeader[156] = 0x78; // 'x'
  fixChecksum(paxHeader);
  const main = encodeHeader({ path: 'from-ustar', type: 'file', mode: 0o600, uid: 1, gid: 2, uname: 'u', gname: 'g', mtime: 9, size: 0 });
  const tar = Buffer.concat([paxHeader, body, Buffer.alloc(padding(body.length)), main, Buffer.from('hello'), Buffer.alloc(padding(5)), END_OF_ARCHIVE]);
  const [r] = (await readAll(chunks(tar, 512))) as [Read];
  assert.deepEqual(
    { name: r.entry.name, linkname: r.entry.linkname, size: r.entry.size, mtime: r.entry.mtime, pax: r.entry.pax, data: r.data.toString() },
    { name: 'from-pax', linkname: 'target', size: 5, mtime: 9, pax: { linkpath: 'target', mtime: '1.5', path: 'from-pax', size: '5' }, data: 'hello' },
  );
  assert.equal(Buffer.concat(r.entry.headerBytes).length, 512 + body.length + 512);
});

test('numbers past the octal fields, written base-256 by GNU tar, read exactly', async () => {
  const bytes = await gnuTar('gnu', ['--owner=:3000000', '--group=:4000000']);
  const entries = await readAll(chunks(bytes, 4096));
  assert.deepEqual(new Set(entries.map((r) => `${r.entry.uid}:${r.entry.gid}`)), new Set(['3000000:4000000']));
});

test('content nobody reads is skipped: the next entries come out whole', async () => {
  const bytes = await gnuTar('posix');
  const names: string[] = [];
  for await (const { entry, content } of readTar(chunks(bytes, 1000))) {
    names.push(entry.name);
    if (entry.name === `./${longName}`) {
      const parts: Buffer[] = [];
      for await (const c of content) parts.push(c);
      assert.equal(Buffer.concat(parts).toString(), 'long\n');
    }
  }
  assert.deepEqual(names, (await readAll(chunks(bytes, bytes.length))).map((r) => r.entry.name));
});

test('the bytes after the end blocks are read (a hash of the stream sees them) and ignored', async () => {
  const file = Buffer.concat([encodeHeader({ path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: 0, size: 0 }), END_OF_ARCHIVE, Buffer.alloc(9000, 0xee)]);
  let seen = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const c of chunks(file, 512)) {
      seen += c.length;
      yield c;
    }
  };
  assert.deepEqual((await readAll(counted())).map((r) => r.entry.name), ['f']);
  assert.equal(seen, file.length);
});

test('stopping early closes the source', async () => {
  const bytes = await gnuTar('posix');
  let closed = false;
  const source = async function* (): AsyncGenerator<Buffer> {
    try {
      yield* chunks(bytes, 512);
    } finally {
      closed = true;
    }
  };
  for await (const { entry } of readTar(source())) {
    assert.equal(entry.name, './');
    break;
  }
  assert.equal(closed, true);
});

test('a tar cut inside an entry\'s content is an error naming the entry and how much is missing', async () => {
  const bytes = await gnuTar('posix');
  const whole = await readAll(chunks(bytes, bytes.length));
  const big = whole.find((r) => r.entry.name === `./${unicodeName}`)!;
  const cut = bytes.subarray(0, big.entry.dataOffset + 1000);
  await assert.rejects(readAll(chunks(cut, 4096)), (err: unknown) => {
    assert.ok(err instanceof TarReadError);
    assert.equal(err.code, 'tar-read');
    assert.equal(err.message, `the tar ends inside the content of ${JSON.stringify(`./${unicodeName}`)}, 69000 bytes short`);
    return true;
  });
});

test('a tar cut inside a header is an error naming the offset', async () => {
  const bytes = await gnuTar('gnu');
  await assert.rejects(readAll(chunks(bytes.subarray(0, 700), 4096)), { name: 'TarReadError', message: 'the tar ends inside a header at byte 512: 188 of its 512 bytes' });
});

test('a block with a wrong checksum (not a tar, or compressed otherwise) is an error, not entries', async () => {
  const bytes = Buffer.from(await gnuTar('posix'));
  bytes[0]! ^= 0x01;
  await assert.rejects(readAll(chunks(bytes, 4096)), { name: 'TarReadError', message: /^not a tar, or a corrupt one: the header at byte 0 has a wrong checksum/ });
  await assert.rejects(readAll(chunks(Buffer.alloc(1024, 0x41), 4096)), { name: 'TarReadError', message: /header at byte 0 has a wrong checksum/ });
});

test('a pax header larger than 4 MiB is refused before it is read', async () => {
  const h = encodeHeader({ path: 'PaxHeaders/x', type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: 0, size: 5 * 1024 * 1024 });
  h[156] = 0x78;
  fixChecksum(h);
  await assert.rejects(readAll(chunks(h, 512)), { name: 'TarReadError', message: 'the pax header at byte 0 says it is 5242880 bytes; at most 4194304 are accepted' });
});

test('an empty input is an empty tar', async () => {
  assert.deepEqual(await readAll(chunks(Buffer.alloc(0), 1)), []);
});

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function fixChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
}
