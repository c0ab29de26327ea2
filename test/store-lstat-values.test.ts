// The stat-list checks' lstat values without a Stats object (lstat-values.ts): taken on Node 20
// only, where it gives the same numbers, to the bit, as lstatSync, the same answer for a missing
// path and the same error for a path through a file; Node 22 and 24 keep lstatSync.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PER_NODE, putStatValues, statListFingerprint, statListValues } from '../builder/store/stat-list.js';
import { runCommand } from './helpers/cli.js';
import { nodeBinaries } from './helpers/nodes.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

/** A directory, a file with fractional times, an executable and a dangling symlink. */
async function tree() {
  const dir = await tempDir('imgbuild-lstat-values-');
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub/file'), 'some bytes');
  utimesSync(join(dir, 'sub/file'), 1_700_000_000.123456, 1_600_000_000.987654);
  writeFileSync(join(dir, 'tool'), '#!/bin/sh\n');
  chmodSync(join(dir, 'tool'), 0o755);
  symlinkSync('nowhere', join(dir, 'link'));
  return dir;
}

/** The values as lstatSync gives them. */
function viaStats(path: string): number[] {
  const values: number[] = [];
  putStatValues(values, 0, lstatSync(path));
  return values;
}

const NODES = ['', '/sub', '/sub/file', '/tool', '/link'];

/** Run by each Node: whether the fast path is taken, and what it answers for each node and fault. */
const PROBE = `
import { lstatSync } from 'node:fs';
const { fastLstatValues } = await import(process.argv[1]);
const dir = process.argv[2];
const fast = fastLstatValues(dir, lstatSync);
const out = { taken: fast !== undefined };
if (fast) {
  out.values = ${JSON.stringify(NODES)}.map((n) => { const v = new Float64Array(${PER_NODE}); return fast(dir + n, v, 0) ? [...v] : null; });
  const v = new Float64Array(${PER_NODE});
  out.missing = fast(dir + '/gone', v, 0);
  out.nul = fast(dir + '/sub\\0/file', v, 0);
  try { fast(dir + '/tool/x', v, 0); out.throughFile = 'no error'; } catch (e) { out.throughFile = e.code; }
}
process.stdout.write(JSON.stringify(out));
`;

test('Node 20 takes the fast path and answers as lstatSync does, to the bit; Node 22 and 24 do not take it', async () => {
  const dir = await tree();
  const module = pathToFileURL(join(repoRoot, 'dist/builder/store/lstat-values.js')).href;
  for (const [major, node] of await nodeBinaries()) {
    const r = await runCommand(node, ['--input-type=module', '-e', PROBE, module, dir]);
    assert.equal(r.code, 0, `Node ${major}: ${r.stderr}`);
    const got = JSON.parse(r.stdout.toString());
    if (major !== '20') {
      assert.deepEqual(got, { taken: false }, `Node ${major}`);
      continue;
    }
    assert.deepEqual(got, { taken: true, values: NODES.map((n) => viaStats(`${dir}${n}`)), missing: false, nul: false, throughFile: 'ENOTDIR' });
  }
});

test('Node 20 with --pending-deprecation and --throw-deprecation keeps lstatSync: no warning, no crash', async () => {
  const dir = await tree();
  const module = pathToFileURL(join(repoRoot, 'dist/builder/store/lstat-values.js')).href;
  const node20 = (await nodeBinaries()).get('20')!;
  const r = await runCommand(node20, ['--pending-deprecation', '--throw-deprecation', '--input-type=module', '-e', PROBE, module, dir]);
  assert.equal(r.code, 0, r.stderr.toString());
  assert.deepEqual(JSON.parse(r.stdout.toString()), { taken: false });
  assert.equal(r.stderr.toString(), '');
});

test('statListValues puts the values lstatSync gives, node by node, from `at` on', async () => {
  const dir = await tree();
  const names = ['link', 'sub', 'sub/file', 'tool'];
  const values = new Float64Array(PER_NODE * (names.length + 2));
  assert.equal(statListValues(dir, names, values, PER_NODE), true);
  assert.deepEqual([...values.subarray(0, PER_NODE)], new Array(PER_NODE).fill(0));
  assert.deepEqual([...values.subarray(PER_NODE)], [dir, ...names.map((n) => join(dir, n))].flatMap(viaStats));
});

test('statListValues is false when an entry went away or a directory became a file', async () => {
  const dir = await tree();
  assert.equal(statListFingerprint(dir, ['sub', 'gone']), undefined);
  assert.equal(statListFingerprint(dir, ['tool/x']), undefined);
  assert.equal(statListFingerprint(join(dir, 'gone'), []), undefined);
});
