// cache verify finds damage to the cache's structure, not only to its files' bytes: a directory
// or a dangling symlink in place of a blob or record, `blobs/sha256` or `layers` replaced by a
// file, the cache directory itself a file. Each is listed; --repair removes the wrong entry (not
// the cache directory: that may be someone's file). With --json the report lists the damage
// and the command exits 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyCache } from '../builder/cache/verify.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const HEX = 'a'.repeat(64);
const KEY = 'b'.repeat(64);

async function cacheDir(): Promise<string> {
  const root = join(await tempDir('imgbuild-verify-structure-'), 'cache');
  mkdirSync(join(root, 'blobs', 'sha256'), { recursive: true });
  mkdirSync(join(root, 'layers', 'bb'), { recursive: true });
  mkdirSync(join(root, 'scan'), { recursive: true });
  mkdirSync(join(root, 'closures'), { recursive: true });
  return root;
}

const NONE = { blobs: 0, blobBytes: 0, layerRecords: 0, scanRecords: 0, closureRecords: 0 };

const cases: Array<[string, (root: string) => string, 'blob' | 'layer-record' | 'scan-record' | 'closure-record' | 'directory', string]> = [
  ['a directory in place of a blob', (r) => mkdir(join(r, 'blobs', 'sha256', HEX)), 'blob', 'is a directory, not a file'],
  ['a dangling symlink in place of a blob', (r) => link('/nonexistent/blob', join(r, 'blobs', 'sha256', HEX)), 'blob', 'is a symbolic link to nothing, not a file'],
  ['a directory in place of a layer record', (r) => mkdir(join(r, 'layers', 'bb', `${KEY}.json`)), 'layer-record', 'is a directory, not a file'],
  ['a dangling symlink in place of a layer record', (r) => link('/nonexistent/record', join(r, 'layers', 'bb', `${KEY}.json`)), 'layer-record', 'is a symbolic link to nothing, not a file'],
  ['a directory in place of a scan record pack', (r) => mkdir(join(r, 'scan', 'pack-0123456789abcdef-x.jsonl')), 'scan-record', 'is a directory, not a file'],
  ['a directory in place of a closure record', (r) => mkdir(join(r, 'closures', `${'c'.repeat(32)}.json`)), 'closure-record', 'is a directory, not a file'],
  ['blobs/sha256 replaced by a file', (r) => file(join(r, 'blobs', 'sha256')), 'directory', 'is a file, not a directory'],
  ['layers replaced by a file', (r) => file(join(r, 'layers')), 'directory', 'is a file, not a directory'],
  ['a file in place of a layer record directory', (r) => file(join(r, 'layers', 'bb')), 'directory', 'is a file, not a directory'],
];

function mkdir(path: string): string {
  mkdirSync(path);
  writeFileSync(join(path, 'inside'), 'x');
  return path;
}
function link(target: string, path: string): string {
  symlinkSync(target, path);
  return path;
}
function file(path: string): string {
  rmSync(path, { recursive: true, force: true });
  writeFileSync(path, 'not a directory');
  return path;
}

for (const [what, make, kind, problem] of cases) {
  test(`cache verify lists ${what}, and --repair removes it`, async () => {
    const root = await cacheDir();
    const path = make(root);
    assert.deepEqual(await verifyCache(root), { checked: NONE, damaged: [{ kind, path, problem }], repaired: false });
    assert.deepEqual(await verifyCache(root, { repair: true }), { checked: NONE, damaged: [{ kind, path, problem }], repaired: true });
    assert.equal(existsSync(path), false);
    assert.deepEqual((await verifyCache(root)).damaged, []);
  });
}

test('cache verify of a cache directory that is a file lists it; --repair leaves it and fails', async () => {
  const root = file(join(await tempDir('imgbuild-verify-structure-'), 'cache'));
  const damaged = [{ kind: 'directory', path: root, problem: 'is a file, not the cache directory (set IMGBUILD_CACHE_DIR to a directory; --repair does not remove it)' }];
  assert.deepEqual(await verifyCache(root), { checked: NONE, damaged, repaired: false });
  assert.deepEqual(await verifyCache(root, { repair: true }), { checked: NONE, damaged, repaired: false });
  assert.equal(existsSync(root), true);
  const r = await runCli(['cache', 'verify', '--repair'], { env: { ...process.env, IMGBUILD_CACHE_DIR: root } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^error\\[cache\\]: 1 damaged file in the cache ${root}: ${root}\\nhint: set IMGBUILD_CACHE_DIR to a directory`, 'm'));
});

test('cache verify --json with damage and no --repair prints the report listing it and exits 1', async () => {
  const root = await cacheDir();
  const path = mkdir(join(root, 'blobs', 'sha256', HEX));
  const r = await runCli(['cache', 'verify', '--json'], { env: { ...process.env, IMGBUILD_CACHE_DIR: root } });
  assert.equal(r.code, 1);
  assert.deepEqual(JSON.parse(r.stdout.toString()), { schemaVersion: 1, cacheDir: root, repair: false, checked: NONE, damaged: [{ kind: 'blob', path, problem: 'is a directory, not a file' }], repaired: false });
  assert.equal(r.stderr, `error[cache]: 1 damaged file in the cache ${root}: ${path}\nhint: remove them with \`imgbuild cache verify --repair\` (the next build makes them again from the store)\n`);
});
