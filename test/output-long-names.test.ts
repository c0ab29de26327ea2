// A temp name fits in 255 bytes whatever the output's name (`.<name>.tmp-<pid>-<random>` with
// <name> cut), so an output name up to the file system's own limit is writable, and a dead
// writer's temp files are still known by their pid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tempOwnerPid, tempPrefix, tempSibling } from '../builder/fs/atomic-write.js';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const hello = join(repoRoot, 'examples/hello');

test('a temp name fits in 255 bytes, keeps its writer\'s pid and starts with the output\'s temp prefix', () => {
  for (const name of ['app.tar', 'a'.repeat(250), 'é'.repeat(127)]) {
    const path = join('/srv/out', name);
    const temp = tempSibling(path).slice('/srv/out/'.length);
    assert.ok(Buffer.byteLength(temp) <= 255, `${Buffer.byteLength(temp)} bytes`);
    assert.ok(temp.startsWith(tempPrefix(path)));
    assert.equal(tempOwnerPid(temp), process.pid);
    assert.ok(!temp.includes('\uFFFD'), 'cut between characters, not inside one');
  }
  assert.equal(tempPrefix('/srv/out/app.tar'), '.app.tar.');
});

test('a 250-byte output name builds, as an archive and as a layout written twice', async () => {
  const dir = await tempDir('imgbuild-long-names-');
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') };
  const archive = join(dir, `${'a'.repeat(239)}.docker.tar`);
  const r = await runCli(['build', hello, '-o', archive], { env });
  assert.equal(r.code, 0, r.stderr);
  const layout = join(dir, 'l'.repeat(250));
  assert.equal((await runCli(['build', hello, '-o', layout], { env })).code, 0);
  // A temp directory of a writer that was killed (its pid gone), named as tempSibling names it: removed by the next write.
  const dead = spawnSync('true').pid!;
  const stale = `${tempPrefix(layout)}tmp-${dead}-0badc0de`;
  await mkdir(join(dir, stale));
  const again = await runCli(['build', hello, '-o', layout], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual((await readdir(dir)).sort(), [archive.slice(dir.length + 1), 'cache', 'l'.repeat(250)].sort());
});

test('a name over 255 bytes: error[output] saying so, naming -o', async () => {
  const dir = await tempDir('imgbuild-long-names-');
  const out = join(dir, `${'a'.repeat(250)}.docker.tar`);
  const r = await runCli(['build', hello, '-o', out], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error\[output\]: cannot write .*: file name too long \(a name holds at most 255 bytes, a path 4095\); nothing was written$/m);
  assert.match(r.stderr, /^hint: name a shorter path with -o$/m);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
});
