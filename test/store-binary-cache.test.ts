// The pieces of the binary-cache store source that need no Nix: the NAR → entries reader (the
// same entries and layer bytes as the tree walk), narinfo parsing, Nix's signature fingerprint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { narEntries, storeLayerNarEntries } from '../builder/layer/nar-entries.js';
import { storeLayerEntries, storeLayerOutline, treeEntries } from '../builder/layer/tree-entries.js';
import type { LayerEntry } from '../builder/layer/types.js';
import { measureLayer } from '../builder/layer/write-layer.js';
import { dumpNar, readNarTree } from '../builder/store/nar.js';
import { parseCacheInfo, parseNarInfo } from '../builder/store/binary-cache/narinfo.js';
import { isSignedBy, narInfoFingerprint, parsePublicKeys } from '../builder/store/binary-cache/signatures.js';
import { NarMismatchError } from '../builder/store/binary-cache/errors.js';
import { writeTree } from './helpers/nix.js';
import { noise } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';

const HASH = '0c5ghqfmy9x4iwpxjx37qfnxyjgf0f2a';

/** A store path's tree on disk, and its NAR in memory. */
async function storePath(): Promise<{ dir: string; path: string; fsPath: string; nar: Buffer }> {
  const dir = await tempDir('imgbuild-nar-entries-');
  const fsPath = join(dir, `${HASH}-tree`);
  writeTree(fsPath, {
    'bin/run': { content: '#!/bin/sh\n', executable: true },
    'share/big': { content: noise(20_001) },
    'share/empty': '',
    // Siblings whose names share a prefix: a directory `a` sorts before `a-b` and `a.b`, its children with it.
    'share/a/inner': 'x',
    'share/a-b': 'dash',
    'share/a.b': 'dot',
    'lib/link': { symlink: '../share/a.b' },
    'lib/ünïcode': 'utf-8 name',
  });
  const parts: Buffer[] = [];
  await dumpNar(fsPath, await readNarTree(fsPath), (c) => parts.push(Buffer.from(c)));
  return { dir, path: `/nix/store/${HASH}-tree`, fsPath, nar: Buffer.concat(parts) };
}

/** Entries with their bytes read, comparable whatever they are read from. */
async function collect(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const e of entries) {
    if (e.kind !== 'file') {
      out.push(e);
      continue;
    }
    const c = e.content;
    let bytes: Buffer;
    if (c.from === 'disk') bytes = readFileSync(c.fsPath);
    else if (c.from === 'bytes') bytes = Buffer.from(c.data);
    else {
      const parts: Uint8Array[] = [];
      for await (const p of c.read()) parts.push(Buffer.from(p));
      bytes = Buffer.concat(parts);
    }
    out.push({ kind: 'file', path: e.path, mode: e.mode, bytes: bytes.toString('base64') });
  }
  return out;
}

async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < bytes.length; off += size) yield bytes.subarray(off, off + size);
}

test('a NAR read in pieces of any size gives the entries the tree walk gives', async () => {
  const s = await storePath();
  try {
    const expected = await collect(treeEntries(s.fsPath, s.path.slice(1)));
    for (const size of [1, 7, 8, 4096, s.nar.length]) {
      assert.deepEqual(await collect(narEntries(pieces(s.nar, size), s.path.slice(1), s.path)), expected, `pieces of ${size}`);
    }
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a store layer made from NARs has the bytes of the layer made from the files', async () => {
  const s = await storePath();
  try {
    const options = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'gzip' as const };
    const fromFiles = await measureLayer(storeLayerEntries([s.path], () => s.fsPath, '/nix/store'), options);
    const fromNar = await measureLayer(storeLayerNarEntries([s.path], () => pieces(s.nar, 65536), '/nix/store'), options);
    assert.deepEqual(fromNar, fromFiles);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a truncated NAR, or one with bytes after its end, is a nar-mismatch error', async () => {
  const s = await storePath();
  try {
    const read = (bytes: Buffer) => collect(narEntries(pieces(bytes, 1000), s.path.slice(1), s.path));
    await assert.rejects(read(s.nar.subarray(0, s.nar.length - 100)), (e: unknown) => e instanceof NarMismatchError && e.code === 'nar-mismatch' && /ends/.test(e.message));
    await assert.rejects(read(Buffer.concat([s.nar, Buffer.alloc(8)])), /bytes follow the end of the archive/);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

/** A NAR string: its length, its bytes, zero padding to 8. */
function narString(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(8);
  len.writeUInt32LE(b.length, 0);
  return Buffer.concat([len, b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
}

/** The NAR of `depth` directories nested in one another, each holding only the next (`d`), the last holding the file `d` of `contents`. */
function deepNar(depth: number, contents: string): Buffer {
  const t = (...tokens: string[]) => Buffer.concat(tokens.map(narString));
  const level = t('(', 'type', 'directory', 'entry', '(', 'name', 'd', 'node');
  const file = t('(', 'type', 'regular', 'contents', contents, ')');
  const close = t(')', ')');
  return Buffer.concat([t('nix-archive-1'), ...Array<Buffer>(depth).fill(level), file, ...Array<Buffer>(depth).fill(close)]);
}

test('a NAR nested 6,000 directories deep, deeper than a path on disk can be, gives each directory and then its file, in order', async () => {
  const depth = 6000;
  const root = `nix/store/${HASH}-deep`;
  const entries: Array<{ kind: string; path: string; mode?: number; bytes?: string }> = [];
  for await (const e of narEntries(pieces(deepNar(depth, 'at the bottom'), 65536), root, `/${root}`)) {
    if (e.kind === 'file') {
      const parts: Uint8Array[] = [];
      if (e.content.from === 'stream') for await (const p of e.content.read()) parts.push(Buffer.from(p));
      entries.push({ kind: e.kind, path: e.path, mode: e.mode, bytes: Buffer.concat(parts).toString() });
    } else entries.push({ kind: e.kind, path: e.path, mode: e.kind === 'directory' ? e.mode : undefined });
  }
  assert.equal(entries.length, depth + 1);
  for (let i = 0; i < depth; i++) {
    const e = entries[i]!;
    assert.ok(e.kind === 'directory' && e.mode === 0o555 && e.path === root + '/d'.repeat(i), `entry ${i}: ${e.kind} ${e.path.length}`);
  }
  assert.deepEqual(entries[depth], { kind: 'file', path: root + '/d'.repeat(depth), mode: 0o444, bytes: 'at the bottom' });
});

test('a NAR nested 2,000 directories deep gives the layer bytes of the same tree on disk; 6,000 deep, the layer of its entries', async (t) => {
  const options = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'gzip' as const };
  const dir = await tempDir('imgbuild-deep-nar-');
  const fsPath = join(dir, `${HASH}-deep`);
  const depth = 2000;
  // As deep as PATH_MAX lets a path on disk be (4,096 bytes with its NUL).
  assert.ok(fsPath.length + 2 * depth + 2 < 4096, `${fsPath.length + 2 * depth + 2} bytes`);
  writeTree(join(fsPath, ...Array<string>(depth - 1).fill('d')), { d: 'at the bottom' });
  // Removed by rm: Node's own recursive rmSync runs out of stack at this depth.
  t.after(() => execFileSync('rm', ['-rf', fsPath]));
  const nar = deepNar(depth, 'at the bottom');
  const parts: Buffer[] = [];
  await dumpNar(fsPath, await readNarTree(fsPath), (c) => parts.push(Buffer.from(c)));
  assert.ok(Buffer.concat(parts).equals(nar), 'the NAR of the files');
  const path = `/nix/store/${HASH}-deep`;
  const fromFiles = await measureLayer(storeLayerEntries([path], () => fsPath, '/nix/store'), options);
  assert.deepEqual(await measureLayer(storeLayerNarEntries([path], () => pieces(nar, 65536), '/nix/store'), options), fromFiles);

  // Deeper than a disk holds: the layer of the entries themselves (the store's parents, each directory, the file).
  const deeper = 6000;
  const root = path.slice(1);
  const listed: LayerEntry[] = [
    ...storeLayerOutline([path], '/nix/store').parents,
    ...Array.from({ length: deeper }, (_, i): LayerEntry => ({ kind: 'directory', path: root + '/d'.repeat(i), mode: 0o555 })),
    { kind: 'file', path: root + '/d'.repeat(deeper), mode: 0o444, content: { from: 'bytes', data: Buffer.from('at the bottom') } },
  ];
  const fromNar = await measureLayer(storeLayerNarEntries([path], () => pieces(deepNar(deeper, 'at the bottom'), 65536), '/nix/store'), options);
  assert.deepEqual(fromNar, await measureLayer(listed, options));
});

const NARINFO = `StorePath: /nix/store/${HASH}-tree
URL: nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.xz
Compression: xz
FileHash: sha256:1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3
FileSize: 4029176
NarHash: sha256:1impfw8zdgisxkghq9a3q7cn7jb9zyzgxdydiamp8z2nlyyl0h5h
NarSize: 18735072
References: 0d71ygfwbmy1xjlbj1v027dfmy9cqavy-libffi-3.3 ${HASH}-tree
Deriver: bidkcs01mww363s4s7akdhbl6ws66b2z-ruby-2.7.5.drv
Sig: cache.nixos.org-1:GrGV/Ls10TzoOaCnrcAqmPbKXFLLSBDeGNh5EQGKyuGA4K1wv1LcRVb6/sU+NAPK8lDiam8XcdJzUngmdhfTBQ==
CA: fixed:r:sha256:1impfw8zdgisxkghq9a3q7cn7jb9zyzgxdydiamp8z2nlyyl0h5h
`;

test('a narinfo is read as Nix reads it', () => {
  const info = parseNarInfo(NARINFO, 'x.narinfo');
  assert.equal(info.storePath, `/nix/store/${HASH}-tree`);
  assert.equal(info.compression, 'xz');
  assert.equal(info.fileSize, 4029176);
  assert.equal(info.narSize, 18735072);
  assert.deepEqual(info.references, ['0d71ygfwbmy1xjlbj1v027dfmy9cqavy-libffi-3.3', `${HASH}-tree`]);
  assert.equal(info.deriver, 'bidkcs01mww363s4s7akdhbl6ws66b2z-ruby-2.7.5.drv');
  assert.equal(info.sigs.length, 1);
  // Absent Compression means bzip2, as in Nix; NarHash is required.
  assert.equal(parseNarInfo(NARINFO.replace(/^Compression.*\n/m, ''), 'x').compression, 'bzip2');
  assert.throws(() => parseNarInfo(NARINFO.replace(/^NarHash.*\n/m, ''), 'x.narinfo'), /x\.narinfo has no NarHash/);
  assert.equal(parseCacheInfo('StoreDir: /gnu/store\nWantMassQuery: 1\nPriority: 40\n', 'nix-cache-info').storeDir, '/gnu/store');
});

test("a signature is checked over Nix's fingerprint of the path, with the key of the same name", () => {
  const info = parseNarInfo(NARINFO, 'x.narinfo');
  // The references sorted, as Nix's StorePathSet prints them (the narinfo lists them otherwise).
  assert.equal(
    narInfoFingerprint(info, '/nix/store'),
    `1;/nix/store/${HASH}-tree;sha256:1impfw8zdgisxkghq9a3q7cn7jb9zyzgxdydiamp8z2nlyyl0h5h;18735072;/nix/store/${HASH}-tree,/nix/store/0d71ygfwbmy1xjlbj1v027dfmy9cqavy-libffi-3.3`,
  );
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'jwk' }).x!;
  const [key] = parsePublicKeys([`test-1:${Buffer.from(raw, 'base64url').toString('base64')}`]);
  const sig = sign(null, Buffer.from(narInfoFingerprint(info, '/nix/store')!), privateKey).toString('base64');
  assert.equal(isSignedBy({ ...info, sigs: [`test-1:${sig}`] }, '/nix/store', [key!]), true);
  assert.equal(isSignedBy({ ...info, sigs: [`other-1:${sig}`] }, '/nix/store', [key!]), false, 'another name');
  assert.equal(isSignedBy({ ...info, narSize: info.narSize + 1, sigs: [`test-1:${sig}`] }, '/nix/store', [key!]), false, 'another NAR');
  // References listed out of order (and one twice) sign and verify as Nix's sorted set.
  const unsorted = { ...info, references: [`${HASH}-tree`, '0d71ygfwbmy1xjlbj1v027dfmy9cqavy-libffi-3.3', `${HASH}-tree`] };
  assert.equal(narInfoFingerprint(unsorted, '/nix/store'), narInfoFingerprint(info, '/nix/store'));
  assert.equal(isSignedBy({ ...unsorted, sigs: [`test-1:${sig}`] }, '/nix/store', [key!]), true, 'unsorted references');
  assert.throws(() => parsePublicKeys([`test-1:${Buffer.alloc(64).toString('base64')}`]), { code: 'usage', message: 'trusted public key "test-1" is a Nix secret key (64 bytes), not a public key (its value is not printed); a Nix public key reads "name:base64(32 bytes)"' });
});
