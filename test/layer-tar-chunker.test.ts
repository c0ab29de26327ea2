import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LayerContentError } from '../builder/errors.js';
import { LayerEntryError } from '../builder/layer/errors.js';
import { TarChunker } from '../builder/layer/tar-chunker.js';
import type { LayerEntry, TarHeaderDefaults } from '../builder/layer/types.js';

// TarChunker.tryAdd is the writer's fast path for small common entries; add() is the general
// path. The tar must be the same bytes whichever path each entry takes, at any chunk size.

const defaults: TarHeaderDefaults = { mtime: 1700000000, uid: 0, gid: 0, uname: 'root', gname: 'root' };

function tarOf(entries: LayerEntry[], chunkSize: number, fast: boolean): { bytes: Buffer; fastCount: number } {
  const tar = new TarChunker(defaults, chunkSize);
  const out: Buffer[] = [];
  let fastCount = 0;
  for (const e of entries) {
    if (fast && tar.tryAdd(e)) {
      fastCount++;
      continue;
    }
    for (const chunk of tar.add(e)) out.push(Buffer.from(chunk));
  }
  for (const chunk of tar.end()) out.push(Buffer.from(chunk));
  return { bytes: Buffer.concat(out), fastCount };
}

function mixedEntries(dir: string): LayerEntry[] {
  const entries: LayerEntry[] = [{ kind: 'directory', path: 'nix', mode: 0o755 }];
  const top = `nix/${'s'.repeat(40)}`;
  entries.push({ kind: 'directory', path: top, mode: 0o555 });
  for (let i = 0; i < 300; i++) {
    const name = `${top}/f${String(i).padStart(3, '0')}`;
    const size = [0, 1, 60, 511, 512, 513, 3000, 70000][i % 8]!;
    if (i % 5 === 0) {
      const fsPath = join(dir, `f${i}`);
      writeFileSync(fsPath, Buffer.alloc(size, i % 251));
      entries.push({ kind: 'file', path: name, mode: 0o444, content: { from: 'disk', fsPath, size } });
    } else if (i % 5 === 1) {
      entries.push({ kind: 'symlink', path: name, target: i % 2 ? '../x' : `/${'t'.repeat(150)}` });
    } else if (i % 5 === 2) {
      // An owner override and a long name: both take the general path.
      entries.push({ kind: 'file', path: i % 2 ? name : `${name}-${'n'.repeat(120)}`, mode: 0o555, uid: i % 3 ? 1000 : 0, content: { from: 'bytes', data: Buffer.alloc(size, 7) } });
    } else if (i % 5 === 3) {
      entries.push({ kind: 'file', path: `${name}-é`, mode: 0o4555, content: { from: 'bytes', data: Buffer.alloc(size, 9) } });
    } else {
      entries.push({ kind: 'directory', path: name, mode: 0o1777 });
    }
  }
  return entries;
}

test('a tar is the same bytes whether entries take the fast path or the general one, at any chunk size', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-chunker-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const entries = mixedEntries(dir);
  const reference = tarOf(entries, 256 * 1024, false).bytes;
  for (const chunkSize of [512, 1000, 4096, 65536, 256 * 1024]) {
    const { bytes, fastCount } = tarOf(entries, chunkSize, true);
    assert.ok(bytes.equals(reference), `chunk size ${chunkSize}`);
    if (chunkSize >= 4096) assert.ok(fastCount > 100, `chunk size ${chunkSize}: ${fastCount} fast`);
  }
});

test('the fast path refuses an entry out of order or repeated with the general path\'s message', () => {
  const tar = new TarChunker(defaults, 4096);
  assert.equal(tar.tryAdd({ kind: 'directory', path: 'b', mode: 0o555 }), true);
  assert.throws(() => tar.tryAdd({ kind: 'directory', path: 'a', mode: 0o555 }), (e: unknown) => e instanceof LayerEntryError && e.message === 'layer entry "a" is out of order after "b"');
  assert.throws(() => tar.tryAdd({ kind: 'directory', path: 'b', mode: 0o555 }), (e: unknown) => e instanceof LayerEntryError && e.message === 'layer entry "b" is a duplicate of the previous entry');
  // `b/c` sorts before `b.c` in tree order (a slash ranks below every other byte).
  assert.equal(tar.tryAdd({ kind: 'directory', path: 'b/c', mode: 0o555 }), true);
  assert.equal(tar.tryAdd({ kind: 'directory', path: 'b.c', mode: 0o555 }), true);
  assert.throws(() => tar.tryAdd({ kind: 'directory', path: 'b/d', mode: 0o555 }), /out of order after "b\.c"/);
});

test('a malformed path is left to the general path, which names what is wrong', () => {
  const tar = new TarChunker(defaults, 4096);
  for (const path of ['', '/abs', 'a//b', 'a/./b', 'a/..', 'trail/', 'nul\0']) {
    assert.equal(tar.tryAdd({ kind: 'directory', path, mode: 0o555 }), false, JSON.stringify(path));
    assert.throws(() => [...tar.add({ kind: 'directory', path, mode: 0o555 })], LayerEntryError);
  }
});

test('an empty disk file that is a fifo is refused by the fast path too, without blocking', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-chunker-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'pipe');
  execFileSync('mkfifo', [f]);
  const tar = new TarChunker(defaults, 4096);
  assert.throws(
    () => tar.tryAdd({ kind: 'file', path: 'x', mode: 0o444, content: { from: 'disk', fsPath: f, size: 0 } }),
    (e: unknown) => e instanceof LayerContentError && e.message === `${f} is no longer a regular file`,
  );
});
