// A build holds its directory store's closure record until its layers are written (build-image.ts):
// the record is written by writeHeldClosureRecords, not at the end of the closure, and answers
// the next build as one written at once would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { writeTree } from './helpers/nix.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const APP = `${'a'.repeat(32)}-app`;
const LIB = `${'b'.repeat(32)}-lib`;

async function store() {
  const root = await tempDir('imgbuild-closure-held-');
  const dir = join(root, 'store');
  writeTree(join(dir, APP), { 'bin/app': `uses ${SD}/${LIB}/lib/libx.so` });
  writeTree(join(dir, LIB), { 'lib/libx.so': 'no references' });
  await pastRacyWindow();
  return { dir, scan: join(root, 'cache', 'scan'), closures: join(root, 'cache', 'closures') };
}

const records = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : []);

test('a held closure record is written by writeHeldClosureRecords, and answers the next closure', async () => {
  const s = await store();
  const first = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.scan, closureCacheDir: s.closures });
  first.holdClosureRecords();
  const closure = await first.closure([`${SD}/${APP}`]);
  assert.deepEqual(
    closure.paths.map((p) => p.path),
    [`${SD}/${APP}`, `${SD}/${LIB}`],
  );
  assert.deepEqual(records(s.closures), []);
  first.writeHeldClosureRecords();
  assert.equal(records(s.closures).length, 1);

  const second = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.scan, closureCacheDir: s.closures });
  assert.deepEqual(await second.closure([`${SD}/${APP}`]), closure);
  assert.deepEqual(second.stats, { scanned: 0, cached: 2 });
});
