// `perms` rules on a store layer's entries (layer/perms.ts): nix2container's matching (the store
// path's subtree, an unanchored regex on the full source path, later rules win), where imgbuild
// differs (unset fields keep the owner, a symlink keeps its mode), and the same bytes from a
// worker thread as from the main thread.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { withPerms, type PermRule } from '../builder/layer/perms.js';
import { storeLayerEntries } from '../builder/layer/tree-entries.js';
import { writeLayer } from '../builder/layer/write-layer.js';
import { BuildWorkerPool } from '../builder/workers/pool.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const a = `${SD}/${'a'.repeat(32)}-alpha-1`;
const b = `${SD}/${'b'.repeat(32)}-beta-2`;
let storeDir: string;
const fsPathOf = (p: string) => join(storeDir, p.slice(SD.length + 1));

before(async () => {
  storeDir = join(await tempDir('imgbuild-perms-'), 'store');
  await mkdir(join(fsPathOf(a), 'bin'), { recursive: true });
  await writeFile(join(fsPathOf(a), 'bin/sudo'), 'x', { mode: 0o555 });
  await writeFile(join(fsPathOf(a), 'bin/ls'), 'y', { mode: 0o555 });
  await symlink('sudo', join(fsPathOf(a), 'bin/su'));
  await mkdir(join(fsPathOf(b), 'bin'), { recursive: true });
  await writeFile(join(fsPathOf(b), 'bin/sudo'), 'z', { mode: 0o555 });
});

function entries(rules: PermRule[]) {
  return [...withPerms(storeLayerEntries([a, b], fsPathOf, SD), rules)].map((e) => ({
    path: e.path,
    mode: 'mode' in e ? e.mode.toString(8) : 'link',
    owner: [e.uid, e.gid, e.uname, e.gname],
  }));
}

test("a rule applies to its store path's subtree only, where the unanchored regex finds the full path; later rules win", () => {
  const got = entries([
    { path: a, regex: 'bin', uid: 7 },
    { path: a, regex: '/bin/sudo$', mode: 0o4755, uid: 0, gid: 0, uname: 'root', gname: 'root' },
  ]);
  const at = (p: string) => got.find((e) => e.path === p.slice(1))!;
  assert.deepEqual(at(`${a}/bin/sudo`), { path: `${a}/bin/sudo`.slice(1), mode: '4755', owner: [0, 0, 'root', 'root'] });
  // Unset fields are left alone (nix2container would reset gid to 0); the symlink keeps its mode.
  assert.deepEqual(at(`${a}/bin/ls`), { path: `${a}/bin/ls`.slice(1), mode: '555', owner: [7, undefined, undefined, undefined] });
  assert.deepEqual(at(`${a}/bin/su`), { path: `${a}/bin/su`.slice(1), mode: 'link', owner: [7, undefined, undefined, undefined] });
  assert.deepEqual(at(`${a}/bin`).owner, [7, undefined, undefined, undefined]);
  // Another store path's /bin/sudo, and the directories above the store, are untouched.
  assert.deepEqual(at(`${b}/bin/sudo`), { path: `${b}/bin/sudo`.slice(1), mode: '555', owner: [undefined, undefined, undefined, undefined] });
  assert.deepEqual(at('/nix').owner, [undefined, undefined, undefined, undefined]);
});

test('a store layer with perms has the same bytes written in a worker thread as on the main thread', async () => {
  const rules: PermRule[] = [{ path: a, regex: '/bin/sudo$', mode: 0o4755, uid: 1000, gid: 1000, uname: '', gname: '' }];
  const header = { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' };
  const here = await writeLayer(withPerms(storeLayerEntries([a, b], fsPathOf, SD), rules), { header, compressor: 'gzip' }, new BlobStore(await tempDir('imgbuild-perms-main-')));
  const pool = new BuildWorkerPool(1);
  try {
    const there = await pool.writeStoreLayer({ paths: [a, b], fsPaths: [a, b].map(fsPathOf), storeDir: SD, header, compressor: 'gzip', blobRoot: await tempDir('imgbuild-perms-worker-'), perms: rules });
    assert.equal(there.digest, here.digest);
    const plain = await writeLayer(storeLayerEntries([a, b], fsPathOf, SD), { header, compressor: 'gzip' }, new BlobStore(await tempDir('imgbuild-perms-plain-')));
    assert.notEqual(plain.digest, here.digest);
  } finally {
    await pool.close();
  }
});
