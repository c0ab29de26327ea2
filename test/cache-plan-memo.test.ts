// Plans kept in the cache (builder/build/plan-memo.ts): read back for the same planner, closure
// and options; never used when not whole; not kept for a closure listed out of order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeCase } from '../bench/layering-cases.js';
import { randomGraph } from '../bench/layering-random-graph.js';
import { memoPlanLayers } from '../builder/build/plan-memo.js';
import { planLayers, type ClosureGraph, type PlanOptions } from '../layering/index.js';
import { tempDir } from './helpers/tmp.js';
import { keyedStorePaths, storeLayerKey } from '../builder/cache/layer-key.js';
import type { StoreSource } from '../builder/store/types.js';

/** The graph as a directory store lists it: paths sorted, references sorted and distinct. */
function sorted(g: ClosureGraph): ClosureGraph {
  return {
    ...g,
    paths: [...g.paths].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((p) => ({ ...p, references: [...new Set(p.references)].sort() })),
  };
}

const outcome = (f: () => unknown) => {
  try {
    return { plan: f() };
  } catch (e) {
    return { error: String(e) };
  }
};

/** Writes `body` as the kept plan of `file`, whole (its sha256 in the header). */
function rewrite(file: string, body: unknown): void {
  const text = readFileSync(file, 'utf8');
  const head = JSON.parse(text.slice(0, text.indexOf('\n'))) as Record<string, unknown>;
  const json = JSON.stringify(body);
  writeFileSync(file, `${JSON.stringify({ ...head, sha256: createHash('sha256').update(json).digest('hex') })}\n${json}`);
}

const planFiles = (cache: string) => readdirSync(join(cache, 'plans')).filter((n) => n.endsWith('.json'));

test('for 60 seeded cases (every strategy and option), a kept plan read back is the plan planning gives', async () => {
  const cache = await tempDir('imgbuild-plan-memo-');
  for (let seed = 1; seed <= 60; seed++) {
    const c = makeCase(seed, planLayers, 400);
    const graph = sorted(c.graph);
    const expected = outcome(() => planLayers(graph, c.options));
    assert.deepEqual(outcome(() => memoPlanLayers(graph, c.options, cache)), expected, `seed ${seed}: ${c.what}`);
    assert.deepEqual(outcome(() => memoPlanLayers(graph, c.options, cache)), expected, `seed ${seed} read back: ${c.what}`);
  }
});

test('the kept plan answers: same closure and options read the file; another option or closure plans anew', async () => {
  const cache = await tempDir('imgbuild-plan-memo-');
  const graph = sorted(randomGraph({ n: 300, seed: 3 }));
  const options: PlanOptions = { strategy: 'auto', maxStoreLayers: 20 };
  const plan = memoPlanLayers(graph, options, cache);
  const [name] = planFiles(cache);
  const file = join(cache, 'plans', name!);
  // A plan written in its place, whole (its sha256 matches), is what the next build follows.
  const text = readFileSync(file, 'utf8');
  const nl = text.indexOf('\n');
  const kept = JSON.parse(text.slice(nl + 1)) as { layers: unknown[] };
  rewrite(file, { ...kept, layers: [...kept.layers].reverse() });
  assert.deepEqual(memoPlanLayers(graph, options, cache), { ...plan, layers: [...plan.layers].reverse() });
  memoPlanLayers(graph, { ...options, maxStoreLayers: 21 }, cache);
  memoPlanLayers({ ...graph, paths: graph.paths.map((p, i) => (i === 7 ? { ...p, narSize: p.narSize + 1 } : p)) }, options, cache);
  memoPlanLayers(graph, { ...options, strategy: 'popularity' }, cache);
  assert.equal(planFiles(cache).length, 4);
});

test('a kept plan that is not whole, or not for this key, is not used and is written again', async () => {
  const cache = await tempDir('imgbuild-plan-memo-');
  const graph = sorted(randomGraph({ n: 300, seed: 5 }));
  const options: PlanOptions = { strategy: 'popularity', maxStoreLayers: 30 };
  const expected = planLayers(graph, options);
  memoPlanLayers(graph, options, cache);
  const file = join(cache, 'plans', planFiles(cache)[0]!);
  const good = readFileSync(file, 'utf8');
  const nl = good.indexOf('\n');
  const head = JSON.parse(good.slice(0, nl)) as Record<string, unknown>;
  const damaged: Array<[string, string]> = [
    ['cut short', good.slice(0, good.length - 10)],
    ['a byte changed', good.replace('popularity', 'popularitx')],
    ['another key', `${JSON.stringify({ ...head, key: '0'.repeat(64) })}${good.slice(nl)}`],
    ['another version', `${JSON.stringify({ ...head, v: 0 })}${good.slice(nl)}`],
    ['empty', ''],
  ];
  for (const [what, text] of damaged) {
    writeFileSync(file, text);
    assert.deepEqual(memoPlanLayers(graph, options, cache), expected, what);
    assert.equal(readFileSync(file, 'utf8'), good, `${what}: written again`);
  }
  // Whole, but not a plan of this closure: a path out of range, or in two layers.
  const kept = JSON.parse(good.slice(nl + 1)) as { layers: { nodes: number[] }[] };
  const bad: Array<[string, unknown]> = [
    ['a node out of range', { ...kept, layers: kept.layers.map((l, i) => (i === 0 ? { ...l, nodes: [...l.nodes, graph.paths.length] } : l)) }],
    ['a node in two layers', { ...kept, layers: kept.layers.map((l, i) => (i === 1 ? { ...l, nodes: [...l.nodes, kept.layers[0]!.nodes[0]!] } : l)) }],
    ['another reason', { ...kept, layers: kept.layers.map((l) => ({ ...l, reason: 'why' })) }],
  ];
  for (const [what, body] of bad) {
    rewrite(file, body);
    assert.deepEqual(memoPlanLayers(graph, options, cache), expected, what);
    assert.equal(readFileSync(file, 'utf8'), good, `${what}: written again`);
  }
});

test('a closure not listed in sorted order is planned every time, and nothing is kept', async () => {
  const cache = await tempDir('imgbuild-plan-memo-');
  const graph = sorted(randomGraph({ n: 200, seed: 9 }));
  const reversed = { ...graph, paths: [...graph.paths].reverse() };
  const options: PlanOptions = { strategy: 'auto', maxStoreLayers: 10 };
  assert.deepEqual(memoPlanLayers(reversed, options, cache), planLayers(reversed, options));
  assert.deepEqual(readdirSync(cache), []);
});

test('the layers of a plan read back are keyed as their paths are (their sorted order, known from the closure, changes no key)', async () => {
  const cache = await tempDir('imgbuild-plan-memo-');
  const graph = sorted(randomGraph({ n: 500, seed: 11 }));
  const options: PlanOptions = { strategy: 'auto', maxStoreLayers: 12 };
  memoPlanLayers(graph, options, cache);
  const plan = memoPlanLayers(graph, options, cache);
  const source = { storeDir: graph.storeDir, immutable: true } as unknown as StoreSource;
  const opts = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'gzip' as const };
  assert.ok(plan.layers.some((l) => l.paths.some((p, i) => i > 0 && p < l.paths[i - 1]!)), 'some layer is not in path order');
  for (const l of plan.layers) {
    assert.equal(storeLayerKey(await keyedStorePaths(source, l.paths), graph.storeDir, opts), storeLayerKey(await keyedStorePaths(source, [...l.paths]), graph.storeDir, opts));
  }
});
