import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, link, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { LayerContentError, StoreError } from '../builder/errors.js';
import { storeLayerEntries, treeEntries } from '../builder/layer/tree-entries.js';
import type { LayerEntry } from '../builder/layer/types.js';
import { writeLayer } from '../builder/layer/write-layer.js';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'imgbuild-tree-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function collect(it: Iterable<LayerEntry>): Promise<LayerEntry[]> {
  return [...it];
}

/** An entry reduced to what the walk decides: path, kind, mode or target. */
function summary(e: LayerEntry): string {
  if (e.kind === 'symlink') return `${e.path} -> ${e.target}`;
  const mode = e.mode.toString(8).padStart(4, '0');
  return e.kind === 'directory' ? `${e.path}/ ${mode}` : `${e.path} ${mode} ${e.content.from === 'disk' ? e.content.size : '?'}`;
}

const H = { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' };
const HASH_A = '0c4e2q4rqsqsfbn1ffc2bsl0dy5a1pkq';
const HASH_B = '1vbzzpmxjcdy6zbbf4hq1n9f3j1c8w4k';

test('entries come depth-first, parents first, siblings sorted by name bytes (GNU tar --sort=name)', async (t) => {
  const dir = await tempDir(t);
  for (const d of ['a', 'a/y', 'ab', 'a-b']) await mkdir(join(dir, 't', d), { recursive: true });
  for (const f of ['b', 'a.txt', 'B', 'é', 'a/z', 'a/y/1', '~', 'a-b/x']) await writeFile(join(dir, 't', f), '');
  const paths = (await collect(treeEntries(join(dir, 't'), 'r'))).map((e) => e.path);
  assert.deepEqual(paths, ['r', 'r/B', 'r/a', 'r/a/y', 'r/a/y/1', 'r/a/z', 'r/a-b', 'r/a-b/x', 'r/a.txt', 'r/ab', 'r/b', 'r/~', 'r/é']);
});

test('modes are canonicalised as Nix does, keeping setuid, setgid and sticky bits', async (t) => {
  const dir = await tempDir(t);
  const top = join(dir, 't');
  const files: [string, number][] = [
    ['f0644', 0o644], ['f0600', 0o600], ['f0654', 0o654], ['f0755', 0o755], ['f0700', 0o700], ['f0744', 0o744],
    ['f4755', 0o4755], ['f2755', 0o2755], ['f0000', 0o000],
  ];
  const dirs: [string, number][] = [['d0700', 0o700], ['d0755', 0o755], ['d1777', 0o1777], ['d2775', 0o2775]];
  await mkdir(top);
  for (const [name, mode] of files) {
    await writeFile(join(top, name), name);
    await chmod(join(top, name), mode);
  }
  for (const [name, mode] of dirs) {
    await mkdir(join(top, name));
    await chmod(join(top, name), mode);
  }
  await chmod(top, 0o750);
  const got = (await collect(treeEntries(top, 't'))).map(summary);
  assert.deepEqual(got, [
    't/ 0555',
    't/d0700/ 0555',
    't/d0755/ 0555',
    't/d1777/ 1555',
    't/d2775/ 2555',
    't/f0000 0444 5',
    't/f0600 0444 5',
    't/f0644 0444 5',
    't/f0654 0444 5', // group-executable only: Nix looks at the owner's bit
    't/f0700 0555 5',
    't/f0744 0555 5',
    't/f0755 0555 5',
    't/f2755 2555 5',
    't/f4755 4555 5',
  ]);
});

test('symlinks stay symlinks with their target verbatim, never followed', async (t) => {
  const dir = await tempDir(t);
  const top = join(dir, 't');
  await mkdir(join(top, 'real'), { recursive: true });
  await writeFile(join(top, 'real', 'inside'), 'x');
  const targets: [string, string][] = [
    ['abs', '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-glibc/lib'],
    ['dangling', 'does/not/exist'],
    ['dir', 'real'],
    ['up', '../../..'],
    ['weird', 'a  b/./c//'],
  ];
  for (const [name, target] of targets) await symlink(target, join(top, name));
  const got = (await collect(treeEntries(top, 't'))).map(summary);
  assert.deepEqual(got, [
    't/ 0555',
    't/abs -> /nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-glibc/lib',
    't/dangling -> does/not/exist',
    't/dir -> real',
    't/real/ 0555',
    't/real/inside 0444 1',
    't/up -> ../../..',
    't/weird -> a  b/./c//',
  ]);
});

test('hard links are dereferenced: each name is a full regular file', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 't'));
  await writeFile(join(dir, 't', 'one'), 'same inode\n');
  await link(join(dir, 't', 'one'), join(dir, 't', 'two'));
  const entries = await collect(treeEntries(join(dir, 't'), 't'));
  assert.deepEqual(entries.map(summary), ['t/ 0555', 't/one 0444 11', 't/two 0444 11']);
  assert.deepEqual(
    entries.filter((e) => e.kind === 'file').map((e) => e.kind === 'file' && e.content.from === 'disk' && e.content.fsPath),
    [join(dir, 't', 'one'), join(dir, 't', 'two')],
  );
});

test('a root that is a file or a symlink gives one entry', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'f'), 'abc');
  await chmod(join(dir, 'f'), 0o755);
  await symlink('f', join(dir, 'l'));
  assert.deepEqual((await collect(treeEntries(join(dir, 'f'), 'bin/f'))).map(summary), ['bin/f 0555 3']);
  assert.deepEqual((await collect(treeEntries(join(dir, 'l'), 'bin/l'))).map(summary), ['bin/l -> f']);
});

test('a fifo in the tree is a LayerContentError naming its path, and no temp file is left', async (t) => {
  const dir = await tempDir(t);
  const top = join(dir, 'store', `${HASH_A}-with-fifo`);
  await mkdir(join(top, 'run'), { recursive: true });
  await writeFile(join(top, 'a-file'), 'x');
  execFileSync('mkfifo', [join(top, 'run', 'pipe')]);
  const store = new BlobStore(join(dir, 'blobs'));
  const paths = [`/nix/store/${HASH_A}-with-fifo`];
  await assert.rejects(
    writeLayer(storeLayerEntries(paths, (p) => join(dir, 'store', p.slice('/nix/store/'.length)), '/nix/store'), { header: H, compressor: 'gzip' }, store),
    (e: unknown) => {
      assert.ok(e instanceof LayerContentError);
      assert.equal(e.fsPath, join(top, 'run', 'pipe'));
      assert.equal(e.message, `${join(top, 'run', 'pipe')} is a fifo; a layer can only hold regular files, directories and symlinks`);
      return true;
    },
  );
  assert.deepEqual(await readdir(join(dir, 'blobs', 'sha256')), []);
});

test('a name that is not valid UTF-8 is a LayerContentError showing its bytes', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 't'));
  const raw = Buffer.concat([Buffer.from(join(dir, 't') + '/bad-'), Buffer.from([0xff, 0xfe])]);
  await writeFile(raw, 'x');
  await assert.rejects(collect(treeEntries(join(dir, 't'), 't')), (e: unknown) => {
    assert.ok(e instanceof LayerContentError);
    assert.match(e.message, /bad-.. has a name that is not valid UTF-8 \(bytes 6261642dfffe\)/);
    return true;
  });
});

test('a store layer starts with the store\'s parent directories, then each store path sorted, each once', async (t) => {
  const dir = await tempDir(t);
  const ws = join(dir, 'ci-copy'); // a copy of the store in a CI workspace
  await mkdir(join(ws, `${HASH_B}-hello`, 'bin'), { recursive: true });
  await writeFile(join(ws, `${HASH_B}-hello`, 'bin', 'hello'), '#!/bin/sh\n');
  await chmod(join(ws, `${HASH_B}-hello`, 'bin', 'hello'), 0o755);
  await writeFile(join(ws, `${HASH_A}-greeting.txt`), 'hi\n'); // a store path that is a single file
  await symlink(`/nix/store/${HASH_B}-hello`, join(ws, `${HASH_A}-link`)); // and one that is a symlink
  const seen: string[] = [];
  const fsPathOf = (p: string): string => {
    seen.push(p);
    return join(ws, p.slice('/nix/store/'.length));
  };
  const paths = [`/nix/store/${HASH_B}-hello`, `/nix/store/${HASH_A}-link`, `/nix/store/${HASH_A}-greeting.txt`, `/nix/store/${HASH_B}-hello`];
  const got = (await collect(storeLayerEntries(paths, fsPathOf, '/nix/store'))).map(summary);
  assert.deepEqual(got, [
    'nix/ 0755',
    'nix/store/ 0755',
    `nix/store/${HASH_A}-greeting.txt 0444 3`,
    `nix/store/${HASH_A}-link -> /nix/store/${HASH_B}-hello`,
    `nix/store/${HASH_B}-hello/ 0555`,
    `nix/store/${HASH_B}-hello/bin/ 0555`,
    `nix/store/${HASH_B}-hello/bin/hello 0555 10`,
  ]);
  assert.deepEqual(seen, [`/nix/store/${HASH_A}-greeting.txt`, `/nix/store/${HASH_A}-link`, `/nix/store/${HASH_B}-hello`]);
});

test('a store dir other than /nix/store gets all of its parents', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, `${HASH_A}-x`), '');
  const got = (await collect(storeLayerEntries([`/opt/my/store/${HASH_A}-x`], () => join(dir, `${HASH_A}-x`), '/opt/my/store'))).map(summary);
  assert.deepEqual(got, ['opt/ 0755', 'opt/my/ 0755', 'opt/my/store/ 0755', `opt/my/store/${HASH_A}-x 0444 0`]);
});

test('paths that are not directly inside the store dir are a StoreError listing them', async () => {
  const bad = ['/nix/store', `/nix/store/${HASH_A}-x/bin`, `/nix/other/${HASH_A}-y`, '/nix/store/..'];
  await assert.rejects(collect(storeLayerEntries([`/nix/store/${HASH_A}-ok`, ...bad], (p) => p, '/nix/store')), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.deepEqual(e.paths, bad);
    return true;
  });
  for (const storeDir of ['nix/store', '/nix/store/', '/', '/nix/../store']) {
    await assert.rejects(collect(storeLayerEntries([], (p) => p, storeDir)), (e: unknown) => e instanceof StoreError && e.message.includes(JSON.stringify(storeDir)));
  }
});

test('a store path missing on disk is a StoreError naming the store path and where it was looked for', async (t) => {
  const dir = await tempDir(t);
  const p = `/nix/store/${HASH_A}-missing`;
  await assert.rejects(collect(storeLayerEntries([p], () => join(dir, 'nope'), '/nix/store')), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.deepEqual(e.paths, [p]);
    assert.ok(e.message.startsWith(`store path ${p} is not on disk: ${join(dir, 'nope')}`), e.message);
    return true;
  });
});

test('the walk is lazy: a directory is listed only when the walk reaches it', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 't', 'a'), { recursive: true });
  await mkdir(join(dir, 't', 'b'));
  const it = treeEntries(join(dir, 't'), 't');
  assert.equal(it.next().value?.path, 't');
  assert.equal(it.next().value?.path, 't/a');
  await writeFile(join(dir, 't', 'b', 'late'), ''); // b has not been listed yet
  const rest: string[] = [];
  for (let r = it.next(); !r.done; r = it.next()) rest.push(r.value.path);
  assert.deepEqual(rest, ['t/b', 't/b/late']);
});

test('two copies of a tree with different umask, times, creation order and hard links give one layer digest', async (t) => {
  const dir = await tempDir(t);
  const files: [string, string, boolean][] = [
    ['bin/run', '#!/bin/sh\necho run\n', true],
    ['lib/libx.so', 'ELF-ish bytes', true],
    ['share/doc/README', 'read me\n', false],
    ['share/doc/COPYING', 'read me\n', false], // same content as README: the two are hard-linked in copy B
    ['share/empty', '', false],
  ];
  async function makeCopy(name: string, umask: number, reverse: boolean, hardlink: boolean, time: number): Promise<string> {
    const top = join(dir, name, `${HASH_A}-pkg`);
    const old = process.umask(umask);
    try {
      const written = new Map<string, string>(); // content -> first path holding it
      for (const [rel, content, exec] of reverse ? [...files].reverse() : files) {
        const p = join(top, rel);
        await mkdir(join(p, '..'), { recursive: true });
        const twin = written.get(content);
        if (hardlink && twin && content !== '') await link(twin, p);
        else await writeFile(p, content, { mode: exec ? 0o777 : 0o666 });
        written.set(content, p);
      }
      await mkdir(join(top, 'empty-dir'), { mode: 0o777 });
      await symlink('bin/run', join(top, 'entry'));
    } finally {
      process.umask(old);
    }
    for (const [rel] of files) await utimes(join(top, rel), time, time);
    return join(dir, name);
  }
  const a = await makeCopy('a', 0o022, false, false, 1_000_000_000);
  const b = await makeCopy('b', 0o077, true, true, 1_700_000_000);
  assert.notEqual(execFileSync('stat', ['-c', '%a', join(a, `${HASH_A}-pkg/bin/run`)]).toString(), execFileSync('stat', ['-c', '%a', join(b, `${HASH_A}-pkg/bin/run`)]).toString());
  const links = (root: string) => execFileSync('stat', ['-c', '%h', join(root, `${HASH_A}-pkg/share/doc/README`)]).toString().trim();
  assert.deepEqual([links(a), links(b)], ['1', '2']);
  const store = new BlobStore(join(dir, 'blobs'));
  const layerOf = (root: string) =>
    writeLayer(storeLayerEntries([`/nix/store/${HASH_A}-pkg`], (p) => join(root, p.slice('/nix/store/'.length)), '/nix/store'), { header: H, compressor: 'gzip' }, store);
  const [la, lb] = [await layerOf(a), await layerOf(b)];
  assert.deepEqual(la, lb);
});

test('a symlink whose target is not valid UTF-8 is a LayerContentError', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 't'));
  // node's symlink() takes the target as a string; write the raw bytes through a shell instead.
  execFileSync('sh', ['-c', `ln -s "$(printf 'bad-\\377')" "${join(dir, 't', 'l')}"`]);
  await assert.rejects(collect(treeEntries(join(dir, 't'), 't')), (e: unknown) => {
    assert.ok(e instanceof LayerContentError);
    assert.equal(e.fsPath, join(dir, 't', 'l'));
    assert.match(e.message, /target that is not valid UTF-8 \(bytes 6261642dff\)/);
    return true;
  });
});

test('a unix socket in the tree is a LayerContentError naming it', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 't'));
  const sock = join(dir, 't', 'daemon.sock');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  try {
    await assert.rejects(collect(treeEntries(join(dir, 't'), 't')), (e: unknown) => {
      assert.ok(e instanceof LayerContentError);
      assert.equal(e.message, `${sock} is a socket; a layer can only hold regular files, directories and symlinks`);
      return true;
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
