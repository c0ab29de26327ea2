// A directory store's closure is indexed once where it is made (store/closure-graph.ts,
// layering keepIndexedGraph): the index checks it for cycles, and gives closureDigest, the
// planner and the closure record what they would otherwise each work out from the paths' names.
// Whatever uses the index must give what it gives without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { forgetIndexedGraph, indexGraph, keepIndexedGraph, keptIndexedGraph, LayeringError, planLayers, type ClosureGraph, type StorePathInfo } from '../layering/index.js';
import { closureGraph } from '../builder/store/closure-graph.js';
import { closureDigest } from '../builder/store/closure-digest.js';
import { graphRefIndices } from '../builder/store/closure-record.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { StoreError } from '../builder/errors.js';
import { writeTree } from './helpers/nix.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const hashPart = (seed: string) => (seed + '0123456789abcdfghijklmnpqrsvwxyz').slice(0, 32);
const P = (seed: string, name: string) => `${SD}/${hashPart(seed)}-${name}`;
const APP = P('aaaa', 'app');
const LIB = P('bbbb', 'lib');
const DOC = P('cccc', 'doc');

const info = (path: string, references: string[], narSize = 100): StorePathInfo => ({ path, narSize, references });

/** A graph as a directory store makes one: the app references itself (as most real store paths do), the lib and the doc. */
function infos(): Map<string, StorePathInfo> {
  return new Map([
    [APP, info(APP, [APP, LIB, DOC].sort(), 300)],
    [LIB, info(LIB, [], 200)],
    [DOC, info(DOC, [LIB])],
  ]);
}

/** The same graph in new objects: nothing kept for it. */
const copy = (g: ClosureGraph): ClosureGraph => ({ storeDir: g.storeDir, roots: [...g.roots], paths: g.paths.map((p) => ({ ...p, references: [...p.references] })) });

test('keepIndexedGraph: indexGraph of the same list is the kept index until it is forgotten; another list is indexed anew', () => {
  const list = [...infos().values()];
  const kept = keepIndexedGraph(list);
  assert.equal(indexGraph(list), kept);
  assert.equal(keptIndexedGraph(list), kept);
  assert.notEqual(indexGraph([...list]), kept);
  forgetIndexedGraph(list);
  assert.equal(keptIndexedGraph(list), undefined);
  const again = indexGraph(list);
  assert.notEqual(again, kept);
  assert.deepEqual(again, kept);
});

test('keepIndexedGraph keeps nothing for a list the planner refuses', () => {
  const list = [info(APP, [LIB]), info(LIB, [APP])];
  assert.throws(() => keepIndexedGraph(list), LayeringError);
  assert.equal(keptIndexedGraph(list), undefined);
});

test('closureGraph keeps the index of the paths it sorts, and plans from it are the plans of a copy', () => {
  const graph = closureGraph(SD, [APP], infos());
  assert.deepEqual(
    graph.paths.map((p) => p.path),
    [APP, LIB, DOC].sort(),
  );
  const kept = keptIndexedGraph(graph.paths);
  assert.ok(kept);
  assert.deepEqual(kept, indexGraph(copy(graph).paths));
  for (const strategy of ['popularity', 'auto', 'stable'] as const) {
    assert.deepEqual(planLayers(graph, { strategy, maxStoreLayers: 2 }), planLayers(copy(graph), { strategy, maxStoreLayers: 2 }), strategy);
  }
});

test('closureGraph still names a cycle between distinct paths as a store error', () => {
  const cyclic = new Map([
    [APP, info(APP, [LIB])],
    [LIB, info(LIB, [DOC])],
    [DOC, info(DOC, [APP, DOC])],
  ]);
  assert.throws(
    () => closureGraph(SD, [APP], cyclic),
    (e: unknown) => e instanceof StoreError && e.message === `reference cycle between distinct store paths: ${APP} -> ${LIB} -> ${DOC} -> ${APP}`,
  );
});

test('closureGraph of paths the planner refuses for another reason (a size that is no byte count) returns the graph unindexed, for the planner to refuse', () => {
  const odd = new Map([[APP, info(APP, [], -1)]]);
  const graph = closureGraph(SD, [APP], odd);
  assert.equal(keptIndexedGraph(graph.paths), undefined);
  assert.throws(() => planLayers(graph, { strategy: 'auto', maxStoreLayers: 2 }), /narSize -1/);
});

test('closureDigest from the kept index (self-references included) is the digest of the same graph without one', () => {
  const graph = closureGraph(SD, [APP], infos());
  assert.ok(keptIndexedGraph(graph.paths));
  assert.equal(closureDigest(graph), closureDigest(copy(graph)));
  // A graph listed out of order is digested in sorted order either way.
  const shuffled = closureGraph(SD, [APP], infos());
  const reversed: ClosureGraph = { ...shuffled, paths: [...shuffled.paths].reverse() };
  assert.equal(closureDigest(reversed), closureDigest(copy(graph)));
});

test('graphRefIndices: the references as indices, from the kept index or by path, alike; undefined for a reference outside the graph', () => {
  const graph = closureGraph(SD, [APP], infos());
  const byPath = new Map(graph.paths.map((p, i) => [p.path, i]));
  const expected = graph.paths.flatMap((p) => p.references.map((r) => byPath.get(r)!));
  assert.deepEqual([...graphRefIndices(graph)!], expected);
  assert.deepEqual([...graphRefIndices(copy(graph))!], expected);
  const dangling = copy(graph);
  dangling.paths[0] = { ...dangling.paths[0]!, references: [P('eeee', 'gone')] };
  assert.equal(graphRefIndices(dangling), undefined);
});

test('a directory store whose path references itself: the closure record holds every reference (the self-reference too) and answers the next build with the same closure', async () => {
  const root = await tempDir('imgbuild-kept-index-');
  const dir = join(root, 'store');
  writeTree(join(dir, APP.slice(SD.length + 1)), { 'bin/app': { content: `#!/bin/sh\n# ${APP}/bin/app uses ${LIB}/lib/x\n`, executable: true } });
  writeTree(join(dir, LIB.slice(SD.length + 1)), { 'lib/x': 'no references' });
  await pastRacyWindow(); // a scan within a clock tick of the files makes no record
  const open = () => new DirectoryStoreSource(dir, SD, { cacheDir: join(root, 'scan'), closureCacheDir: join(root, 'closures') });
  const cold = open();
  const first = await cold.closure([APP]);
  assert.deepEqual(
    first.paths.map((p) => [p.path, p.references]),
    [
      [APP, [APP, LIB]],
      [LIB, []],
    ],
  );
  const [file] = readdirSync(join(root, 'closures'));
  const rec = JSON.parse(readFileSync(join(root, 'closures', file!), 'utf8')) as { refCount: number[]; refs: number[]; closureDigest: string };
  assert.deepEqual(rec.refCount, [2, 0]);
  assert.deepEqual(rec.refs, [0, 1]);
  assert.equal(rec.closureDigest, closureDigest(copy(first)));
  const warm = open();
  const second = await warm.closure([APP]);
  assert.deepEqual(warm.stats, { scanned: 0, cached: 2 }, 'answered by the closure record');
  assert.deepEqual(second, first);
});

test('a list changed after its index was kept is indexed anew: an entry replaced, added or given another size or more references', () => {
  const changes: ((list: StorePathInfo[]) => void)[] = [
    (list) => (list[0] = { ...list[0]!, references: [...list[0]!.references] }),
    (list) => list.push(info(P('eeee', 'new'), [])),
    (list) => (list[1]!.narSize = 7),
    (list) => list[2]!.references.push(list[1]!.path),
  ];
  for (const change of changes) {
    const graph = closureGraph(SD, [APP], infos());
    const kept = keptIndexedGraph(graph.paths)!;
    assert.ok(kept);
    change(graph.paths);
    assert.equal(keptIndexedGraph(graph.paths), undefined);
    const again = indexGraph(graph.paths);
    assert.notEqual(again, kept);
    assert.deepEqual(again, indexGraph(copy(graph).paths));
    assert.deepEqual(planLayers(graph, { strategy: 'auto', maxStoreLayers: 3 }), planLayers(copy(graph), { strategy: 'auto', maxStoreLayers: 3 }));
  }
});
