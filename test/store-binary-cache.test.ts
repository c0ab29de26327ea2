// The pieces of the binary-cache store source that need no Nix: the NAR → entries reader (the
// same entries and layer bytes as the tree walk), narinfo parsing, Nix's signature fingerprint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { narEntries, storeLayerNarEntries } from '../builder/layer/nar-entries.js';
import { storeLayerEntries, treeEntries } from '../builder/layer/tree-entries.js';
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
