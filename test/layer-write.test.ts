import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, gunzipSync } from 'node:zlib';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { LayerContentError } from '../builder/errors.js';
import { LayerEntryError } from '../builder/layer/errors.js';
import { treeEntries } from '../builder/layer/tree-entries.js';
import type { LayerEntry, LayerWriteOptions, TarHeaderDefaults } from '../builder/layer/types.js';
import { writeLayer } from '../builder/layer/write-layer.js';
import { rawHeaders, readTar } from './fixtures/layer/tar-read.js';

const root: TarHeaderDefaults = { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' };
const gzip: LayerWriteOptions = { header: root, compressor: 'gzip' };
const plain: LayerWriteOptions = { header: root, compressor: 'none' };

async function tempStore(t: { after: (fn: () => Promise<void>) => void }): Promise<{ dir: string; store: BlobStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'imgbuild-layer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { dir, store: new BlobStore(join(dir, 'blobs')) };
}

/** Everything in the store's sha256 dir: committed blobs and any leftover temp file. */
async function storeFiles(store: BlobStore): Promise<string[]> {
  return readdir(join(store.root, 'sha256')).catch(() => []);
}

const bytes = (s: string | Buffer): { from: 'bytes'; data: Uint8Array } => ({ from: 'bytes', data: typeof s === 'string' ? Buffer.from(s) : s });

/** 3000 bytes of a fixed, mildly compressible pattern. */
const pattern = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * i + 7 * i) % 61));
const longName = `${'0123456789'.repeat(12)}.so`; // 123 bytes, no slash: needs a pax path
const longTarget = `/nix/store/${'a'.repeat(32)}-${'target-'.repeat(22)}`; // 198 bytes
const storePath = 'nix/store/6vg4gw1wnz3p5a8sjd6bbqf3kjv6mzq7-tool-1.0';

/** A small layer that exercises every kind of entry and header the writer produces. */
const goldenEntries: LayerEntry[] = [
  { kind: 'directory', path: 'etc', mode: 0o755 },
  { kind: 'file', path: 'etc/hello.txt', mode: 0o444, content: bytes('hello, layer\n') },
  { kind: 'symlink', path: 'etc/localtime', target: '../usr/share/zoneinfo/UTC' },
  { kind: 'directory', path: 'home', mode: 0o755 },
  { kind: 'directory', path: 'home/app', mode: 0o700, uid: 1000, gid: 100, uname: 'app', gname: 'users' },
  { kind: 'directory', path: 'nix', mode: 0o755 },
  { kind: 'directory', path: 'nix/store', mode: 0o755 },
  { kind: 'directory', path: storePath, mode: 0o555 },
  { kind: 'directory', path: `${storePath}/bin`, mode: 0o555 },
  { kind: 'file', path: `${storePath}/bin/tool`, mode: 0o4555, content: bytes(pattern) },
  { kind: 'file', path: `${storePath}/empty`, mode: 0o444, content: bytes('') },
  { kind: 'directory', path: `${storePath}/lib`, mode: 0o555 },
  { kind: 'file', path: `${storePath}/lib/${longName}`, mode: 0o555, content: bytes(pattern.subarray(0, 512)) },
  { kind: 'symlink', path: `${storePath}/lib/link-to-far-away`, target: longTarget },
  { kind: 'directory', path: 'tmp', mode: 0o1777 },
  { kind: 'directory', path: 'usr', mode: 0o755 },
  { kind: 'file', path: 'usr/données-日本.txt', mode: 0o444, content: bytes('ünïcödé\n') },
];

// Golden vectors. Obtained once by running this writer on Node 20.20.2 (process.versions.zlib
// 1.3.1-e00f703) and copying the printed values here. The tar bytes were checked independently:
// `tar -tvv` and tar-stream list them as the tests below expect, and the ustar-only tree test
// shows the encoder byte-identical to GNU tar. If the gzip values change while the tar values
// do not, Node's bundled zlib now deflates differently: every gzip layer digest would change, so
// treat it as a reproducibility break (pin a Node version or a deflate implementation), not as a
// value to update casually.
const GOLDEN = {
  tarDigest: 'sha256:f10f04f70c1331444b8776c9c655944e389397e736646dbbf478952d146233fe',
  tarSize: 17408,
  gzipDigest: 'sha256:762db5c120ca02b69e6793298bdc8b466179974e2411899095490c8b829e675d',
  gzipSize: 806,
};

test('golden vector: a fixed entry list gives exactly the pinned tar and gzip bytes', async (t) => {
  const { store } = await tempStore(t);
  const blob = await writeLayer(goldenEntries, gzip, store);
  t.diagnostic(`node ${process.version} zlib ${process.versions.zlib}: ${JSON.stringify(blob)}`);
  assert.deepEqual(
    { tarDigest: blob.diffId, tarSize: blob.uncompressedSize, gzipDigest: blob.digest, gzipSize: blob.size },
    GOLDEN,
    `layer bytes changed (zlib ${process.versions.zlib})`,
  );
  assert.equal(blob.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
});

test('an uncompressed layer is the tar itself: digest equals diff_id, tar media type', async (t) => {
  const { store } = await tempStore(t);
  const blob = await writeLayer(goldenEntries, plain, store);
  assert.equal(blob.digest, GOLDEN.tarDigest);
  assert.equal(blob.diffId, GOLDEN.tarDigest);
  assert.equal(blob.size, GOLDEN.tarSize);
  assert.equal(blob.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  const onDisk = await readFile(store.path(blob.digest));
  assert.equal(`sha256:${createHash('sha256').update(onDisk).digest('hex')}`, blob.digest);
});

test('the gzip member has a fixed header (no mtime, no name, OS 255) and a trailer matching the tar', async (t) => {
  const { store } = await tempStore(t);
  const tarBlob = await writeLayer(goldenEntries, plain, store);
  const gzBlob = await writeLayer(goldenEntries, gzip, store);
  const tar = await readFile(store.path(tarBlob.digest));
  const gz = await readFile(store.path(gzBlob.digest));
  assert.deepEqual([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  assert.equal(gz.readUInt32LE(gz.length - 8), crc32(tar));
  assert.equal(gz.readUInt32LE(gz.length - 4), tar.length);
  assert.deepEqual(gunzipSync(gz), tar);
  assert.equal(gzBlob.diffId, tarBlob.digest);
});

test('system gzip accepts the blob and decompresses it to the diff_id', async (t) => {
  const { store } = await tempStore(t);
  const blob = await writeLayer(goldenEntries, gzip, store);
  const out = execFileSync('gzip', ['-dc', store.path(blob.digest)]);
  assert.equal(`sha256:${createHash('sha256').update(out).digest('hex')}`, blob.diffId);
});

test('every entry round-trips through a tar reader: names, kinds, modes, owners, mtime, targets, content', async (t) => {
  const { store } = await tempStore(t);
  const header = { mtime: 1700000000, uid: 0, gid: 0, uname: 'root', gname: 'root' };
  const blob = await writeLayer(goldenEntries, { header, compressor: 'none' }, store);
  const members = await readTar(await readFile(store.path(blob.digest)));
  assert.deepEqual(
    members.map((m) => m.header.name),
    goldenEntries.map((e) => (e.kind === 'directory' ? `${e.path}/` : e.path)),
  );
  for (const [i, m] of members.entries()) {
    const e = goldenEntries[i]!;
    const h = m.header;
    assert.equal(h.type, e.kind, e.path);
    assert.equal(h.mtime.getTime(), 1700000000 * 1000, e.path);
    assert.deepEqual([h.uid, h.gid, h.uname, h.gname], [e.uid ?? 0, e.gid ?? 0, e.uname ?? 'root', e.gname ?? 'root'], e.path);
    if (e.kind === 'symlink') assert.equal(h.linkname, e.target);
    else assert.equal(h.mode, e.mode, e.path);
    if (e.kind === 'file') assert.deepEqual(m.data, Buffer.from(e.content.from === 'bytes' ? e.content.data : Buffer.alloc(0)), e.path);
  }
});

test('pax extended headers appear only before the entries that need them, holding only path/linkpath', async (t) => {
  const { store } = await tempStore(t);
  const blob = await writeLayer(goldenEntries, plain, store);
  const blocks = rawHeaders(await readFile(store.path(blob.digest)));
  const pax = blocks.filter((b) => b.typeflag === 'x').map((b) => b.pax!.replace(/^\d+ /gm, '').trim());
  assert.deepEqual(pax, [`path=${storePath}/lib/${longName}`, `linkpath=${longTarget}`, 'path=usr/données-日本.txt']);
  assert.equal(blocks.length, goldenEntries.length + 3);
});

test('GNU tar lists the layer with the expected order, modes, owners and mtime', async (t) => {
  const { store } = await tempStore(t);
  const blob = await writeLayer(goldenEntries, gzip, store);
  const out = execFileSync('tar', ['--list', '--verbose', '--numeric-owner', '--full-time', '-zf', store.path(blob.digest)], {
    env: { ...process.env, LC_ALL: 'C.UTF-8' },
  }).toString();
  const lines = out.trim().split('\n').map((l) => l.replace(/\s+/g, ' '));
  const when = '1970-01-01 00:00:01';
  assert.deepEqual(lines, [
    `drwxr-xr-x 0/0 0 ${when} etc/`,
    `-r--r--r-- 0/0 13 ${when} etc/hello.txt`,
    `lrwxrwxrwx 0/0 0 ${when} etc/localtime -> ../usr/share/zoneinfo/UTC`,
    `drwxr-xr-x 0/0 0 ${when} home/`,
    `drwx------ 1000/100 0 ${when} home/app/`,
    `drwxr-xr-x 0/0 0 ${when} nix/`,
    `drwxr-xr-x 0/0 0 ${when} nix/store/`,
    `dr-xr-xr-x 0/0 0 ${when} ${storePath}/`,
    `dr-xr-xr-x 0/0 0 ${when} ${storePath}/bin/`,
    `-r-sr-xr-x 0/0 3000 ${when} ${storePath}/bin/tool`,
    `-r--r--r-- 0/0 0 ${when} ${storePath}/empty`,
    `dr-xr-xr-x 0/0 0 ${when} ${storePath}/lib/`,
    `-r-xr-xr-x 0/0 512 ${when} ${storePath}/lib/${longName}`,
    `lrwxrwxrwx 0/0 0 ${when} ${storePath}/lib/link-to-far-away -> ${longTarget}`,
    `drwxrwxrwt 0/0 0 ${when} tmp/`,
    `drwxr-xr-x 0/0 0 ${when} usr/`,
    `-r--r--r-- 0/0 12 ${when} usr/données-日本.txt`,
  ]);
});

test('a tree GNU tar can write in ustar format gives byte-identical tar bytes', async (t) => {
  const { dir, store } = await tempStore(t);
  const top = join(dir, 'src', 'root');
  // Sibling names whose byte order differs from a plain sort of whole paths ('-' < '.' < '/').
  for (const d of ['a', 'a/b', 'a-b', 'ab', `${'p'.repeat(60)}`]) await mkdir(join(top, d), { recursive: true });
  await writeFile(join(top, 'a.txt'), 'a\n');
  await writeFile(join(top, 'a', 'b', 'block'), Buffer.alloc(512, 7));
  await writeFile(join(top, 'a', 'b', 'block+1'), Buffer.alloc(513, 9));
  await writeFile(join(top, 'a-b', 'empty'), '');
  await writeFile(join(top, 'B'), 'upper\n');
  await writeFile(join(top, 'p'.repeat(60), 'q'.repeat(89)), 'split path\n'); // 150+ bytes: ustar prefix
  await writeFile(join(top, 'ab', 'run'), '#!/bin/sh\n');
  await symlink('../a.txt', join(top, 'ab', 'to-a'));
  // GNU tar copies modes from disk, so give the tree the modes our writer canonicalises to.
  execFileSync('sh', ['-c', 'find . -type f -exec chmod 444 {} + && chmod 555 ab/run && find . -type d -exec chmod 555 {} +'], { cwd: top });
  let ours, gnu;
  try {
    ours = await writeLayer(treeEntries(top, 'root'), plain, store);
    gnu = execFileSync('tar', ['--format=ustar', '--sort=name', '--mtime=@1', '--owner=root:0', '--group=root:0', '-cf', '-', 'root'], {
      cwd: join(dir, 'src'),
      maxBuffer: 1 << 24,
    });
  } finally {
    execFileSync('chmod', ['-R', 'u+w', join(dir, 'src')]); // so the temp dir can be removed without root
  }
  const mine = await readFile(store.path(ours.digest));
  // GNU tar pads the archive to a 10 KiB record with zeros; the entries and end marker are ours.
  assert.ok(gnu.length >= mine.length && gnu.subarray(mine.length).every((b) => b === 0));
  assert.ok(gnu.subarray(0, mine.length).equals(mine), 'tar bytes differ from GNU tar --format=ustar --sort=name');
});

test('the defaults set mtime and owner of every entry; an entry may override its owner', async (t) => {
  const { store } = await tempStore(t);
  const header = { mtime: 86400, uid: 65534, gid: 65534, uname: 'nobody', gname: 'nogroup' };
  const entries: LayerEntry[] = [
    { kind: 'directory', path: 'data', mode: 0o755 },
    { kind: 'file', path: 'data/mine', mode: 0o644, content: bytes('x'), uid: 1000, uname: 'me' },
    { kind: 'symlink', path: 'link', target: 'data/mine' },
  ];
  const blob = await writeLayer(entries, { header, compressor: 'none' }, store);
  const got = (await readTar(await readFile(store.path(blob.digest)))).map(({ header: h }) => [h.name, h.uid, h.gid, h.uname, h.gname, h.mtime.getTime() / 1000]);
  assert.deepEqual(got, [
    ['data/', 65534, 65534, 'nobody', 'nogroup', 86400],
    ['data/mine', 1000, 65534, 'me', 'nogroup', 86400],
    ['link', 65534, 65534, 'nobody', 'nogroup', 86400],
  ]);
});

test('writing the same layer twice gives the same blob, stored once, with no temp file left', async (t) => {
  const { store } = await tempStore(t);
  const a = await writeLayer(goldenEntries, gzip, store);
  const b = await writeLayer(goldenEntries, gzip, store);
  assert.deepEqual(a, b);
  assert.deepEqual(await storeFiles(store), [a.digest.slice(7)]);
});

test('file content is streamed from disk; a file read from disk and the same bytes in memory give one digest', async (t) => {
  const { dir, store } = await tempStore(t);
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  await writeFile(join(dir, 'big'), big);
  const fromDisk = await writeLayer([{ kind: 'file', path: 'big', mode: 0o444, content: { from: 'disk', fsPath: join(dir, 'big'), size: big.length } }], gzip, store);
  const fromBytes = await writeLayer([{ kind: 'file', path: 'big', mode: 0o444, content: bytes(big) }], gzip, store);
  assert.deepEqual(fromDisk, fromBytes);
  assert.equal(fromDisk.uncompressedSize, 512 + big.length + (512 - (big.length % 512)) + 1024);
});

async function assertFailsCleanly(
  store: BlobStore,
  run: () => Promise<unknown>,
  check: (e: unknown) => boolean,
): Promise<void> {
  await assert.rejects(run, check);
  assert.deepEqual(await storeFiles(store), [], 'no temp file or blob left behind');
}

test('entries out of tree order are refused, naming both paths', async (t) => {
  const { store } = await tempStore(t);
  const entries: LayerEntry[] = [
    { kind: 'directory', path: 'a', mode: 0o755 },
    { kind: 'file', path: 'a.txt', mode: 0o444, content: bytes('') },
    { kind: 'file', path: 'a/x', mode: 0o444, content: bytes('') }, // belongs before a.txt
  ];
  await assertFailsCleanly(store, () => writeLayer(entries, gzip, store), (e) => {
    assert.ok(e instanceof LayerEntryError);
    assert.equal(e.entryPath, 'a/x');
    assert.match(e.message, /"a\/x" is out of order after "a.txt"/);
    return true;
  });
});

test('a repeated path is refused', async (t) => {
  const { store } = await tempStore(t);
  const entries: LayerEntry[] = [
    { kind: 'directory', path: 'etc', mode: 0o755 },
    { kind: 'directory', path: 'etc', mode: 0o755 },
  ];
  await assertFailsCleanly(store, () => writeLayer(entries, gzip, store), (e) => e instanceof LayerEntryError && /duplicate/.test(e.message));
});

test('malformed entry paths are refused', async (t) => {
  const { store } = await tempStore(t);
  for (const path of ['/etc', 'etc/', 'a//b', '../x', 'a/./b', '', 'a\0b']) {
    await assertFailsCleanly(
      store,
      () => writeLayer([{ kind: 'directory', path, mode: 0o755 }], gzip, store),
      (e) => e instanceof LayerEntryError && e.entryPath === path,
    );
  }
});

test('header defaults that do not fit a tar header are refused before anything is written', async (t) => {
  const { store } = await tempStore(t);
  await assertFailsCleanly(
    store,
    () => writeLayer(goldenEntries, { header: { ...root, uname: 'a-very-long-user-name-over-31-bytes' }, compressor: 'gzip' }, store),
    (e) => e instanceof LayerEntryError && /uname/.test(e.message),
  );
  await assertFailsCleanly(
    store,
    () => writeLayer(goldenEntries, { header: { ...root, mtime: 1.5 }, compressor: 'gzip' }, store),
    (e) => e instanceof LayerEntryError && /mtime 1.5/.test(e.message),
  );
});

test('a file that grew after it was listed fails with LayerContentError naming it', async (t) => {
  const { dir, store } = await tempStore(t);
  const f = join(dir, 'growing');
  await writeFile(f, Buffer.alloc(700_000, 1)); // bigger than one read chunk
  const entry: LayerEntry = { kind: 'file', path: 'growing', mode: 0o444, content: { from: 'disk', fsPath: f, size: 600_000 } };
  await assertFailsCleanly(store, () => writeLayer([entry], gzip, store), (e) => {
    assert.ok(e instanceof LayerContentError);
    assert.equal(e.fsPath, f);
    assert.match(e.message, /grew while it was being read \(expected 600000 bytes\)/);
    return true;
  });
});

test('a file that shrank after it was listed fails with LayerContentError naming it', async (t) => {
  const { dir, store } = await tempStore(t);
  const f = join(dir, 'shrinking');
  await writeFile(f, 'short');
  const entry: LayerEntry = { kind: 'file', path: 'shrinking', mode: 0o444, content: { from: 'disk', fsPath: f, size: 10 } };
  await assertFailsCleanly(store, () => writeLayer([entry], plain, store), (e) => {
    assert.ok(e instanceof LayerContentError);
    assert.equal(e.fsPath, f);
    assert.match(e.message, /shrank while it was being read \(expected 10 bytes, got 5\)/);
    return true;
  });
});

test('a file that vanished fails with LayerContentError naming it', async (t) => {
  const { dir, store } = await tempStore(t);
  const f = join(dir, 'gone');
  const entry: LayerEntry = { kind: 'file', path: 'gone', mode: 0o444, content: { from: 'disk', fsPath: f, size: 1 } };
  await assertFailsCleanly(store, () => writeLayer([entry], gzip, store), (e) => e instanceof LayerContentError && e.fsPath === f && /ENOENT/.test(e.message));
});

test('an already aborted signal rejects with AbortError and writes nothing', async (t) => {
  const { store } = await tempStore(t);
  const ac = new AbortController();
  ac.abort();
  await assertFailsCleanly(store, () => writeLayer(goldenEntries, { ...gzip, signal: ac.signal }, store), (e) => e instanceof Error && e.name === 'AbortError');
});

test('aborting in the middle of a layer rejects with AbortError and removes the temp file', async (t) => {
  const { dir, store } = await tempStore(t);
  const f = join(dir, 'big');
  await writeFile(f, Buffer.alloc(4 * 1024 * 1024, 3));
  const ac = new AbortController();
  async function* entries(): AsyncGenerator<LayerEntry> {
    yield { kind: 'file', path: 'a', mode: 0o444, content: { from: 'disk', fsPath: f, size: 4 * 1024 * 1024 } };
    // The first file has gone through (the temp file exists); the user presses ^C now.
    assert.equal((await storeFiles(store)).filter((n) => n.startsWith('.tmp-')).length, 1);
    ac.abort();
    yield { kind: 'file', path: 'b', mode: 0o444, content: { from: 'disk', fsPath: f, size: 4 * 1024 * 1024 } };
  }
  await assertFailsCleanly(store, () => writeLayer(entries(), { ...gzip, signal: ac.signal }, store), (e) => e instanceof Error && e.name === 'AbortError');
});

test('an error thrown by the entry source propagates and removes the temp file', async (t) => {
  const { store } = await tempStore(t);
  async function* entries(): AsyncGenerator<LayerEntry> {
    yield { kind: 'directory', path: 'a', mode: 0o755 };
    throw new Error('source failed');
  }
  await assertFailsCleanly(store, () => writeLayer(entries(), gzip, store), (e) => e instanceof Error && e.message === 'source failed');
});

test('private 0700 dirs and 0600 files from disk become 0555 and 0444 in the layer', async (t) => {
  const { dir, store } = await tempStore(t);
  const top = join(dir, 'tree');
  await mkdir(join(top, 'private'), { recursive: true });
  await writeFile(join(top, 'private', 'secret'), 's');
  await chmod(join(top, 'private', 'secret'), 0o600);
  await chmod(join(top, 'private'), 0o700);
  const blob = await writeLayer(treeEntries(top, 'tree'), plain, store);
  const got = (await readTar(await readFile(store.path(blob.digest)))).map(({ header: h }) => [h.name, h.mode.toString(8)]);
  assert.deepEqual(got, [['tree/', '555'], ['tree/private/', '555'], ['tree/private/secret', '444']]);
});

test('a disk file swapped for a fifo is refused without blocking on it', async (t) => {
  const { dir, store } = await tempStore(t);
  const f = join(dir, 'was-a-file');
  execFileSync('mkfifo', [f]);
  const entry: LayerEntry = { kind: 'file', path: 'x', mode: 0o444, content: { from: 'disk', fsPath: f, size: 3 } };
  await assertFailsCleanly(store, () => writeLayer([entry], gzip, store), (e) => {
    assert.ok(e instanceof LayerContentError);
    assert.equal(e.message, `${f} is no longer a regular file`);
    return true;
  });
});
