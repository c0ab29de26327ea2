import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bumpPath, randomGraph, shuffledGraph, type RandomGraphOptions } from '../bench/layering-random-graph.js';
import { indexGraph, planLayers, popularityScores, type ClosureGraph, type LayerPlan, type LayeringStrategy } from '../layering/index.js';

/** Seeded random closures, small to 5,000 paths, of several shapes. */
const graphs: { name: string; options: RandomGraphOptions; limits: number[] }[] = [
  { name: 'one path', options: { n: 1, seed: 1 }, limits: [1, 99] },
  { name: 'two paths', options: { n: 2, seed: 2, selfRefs: 1 }, limits: [1, 2, 99] },
  { name: '7 paths, dense', options: { n: 7, seed: 3, meanRefs: 4 }, limits: [1, 3, 6, 7, 99] },
  { name: '60 paths, tied sizes', options: { n: 60, seed: 4, tiedSizes: true }, limits: [1, 4, 20, 99] },
  { name: '400 paths in components', options: { n: 400, seed: 5, component: 40 }, limits: [2, 30, 99] },
  { name: '1,500 paths, sparse', options: { n: 1500, seed: 6, meanRefs: 1, component: 100 }, limits: [99] },
  { name: '5,000 paths', options: { n: 5000, seed: 7, component: 200 }, limits: [99] },
];
const strategies: LayeringStrategy[] = ['popularity', 'auto', 'stable'];

function assertCovers(plan: LayerPlan, graph: ClosureGraph, limit: number): void {
  assert.ok(plan.layers.length <= limit, `${plan.layers.length} layers, limit ${limit}`);
  const seen = new Map<string, number>();
  plan.layers.forEach((layer, i) => {
    assert.ok(layer.paths.length > 0, `layer ${i} is empty`);
    for (const p of layer.paths) {
      assert.equal(seen.get(p), undefined, `${p} is in layers ${seen.get(p)} and ${i}`);
      seen.set(p, i);
    }
  });
  assert.deepEqual([...seen.keys()].sort(), graph.paths.map((p) => p.path).sort());
  const size = new Map(graph.paths.map((p) => [p.path, p.narSize]));
  for (const layer of plan.layers) assert.equal(layer.narSize, layer.paths.reduce((s, p) => s + size.get(p)!, 0));
}

for (const g of graphs) {
  const graph = randomGraph(g.options);
  const shuffled = shuffledGraph(graph, g.options.seed + 1000);
  for (const strategy of strategies) {
    test(`${g.name}, ${strategy}: every path in exactly one layer, at most the limit, same plan every run and in any input order`, () => {
      for (const limit of g.limits) {
        const plan = planLayers(graph, { strategy, maxStoreLayers: limit });
        assertCovers(plan, graph, limit);
        assert.deepEqual(planLayers(graph, { strategy, maxStoreLayers: limit }), plan, 'second run differs');
        // nixpkgs' auto takes equal-narSize paths in input order; only there may order matter.
        if (strategy !== 'auto' || !g.options.tiedSizes) {
          assert.deepEqual(planLayers(shuffled, { strategy, maxStoreLayers: limit }), plan, 'shuffled input differs');
        }
      }
    });
  }
}

/** Bump a seeded choice of paths one after another; each plan takes the previous one's layers. */
const stableCases: { name: string; options: RandomGraphOptions; limit: number; bumps: number }[] = [
  { name: '60 paths', options: { n: 60, seed: 11 }, limit: 12, bumps: 4 },
  { name: '400 paths in components', options: { n: 400, seed: 12, component: 40 }, limit: 40, bumps: 4 },
  { name: '2,000 paths', options: { n: 2000, seed: 13, component: 100 }, limit: 99, bumps: 3 },
];

for (const c of stableCases) {
  for (const strategy of strategies) {
    test(`${c.name}, ${strategy} with previous: every old layer still whole is kept as it was; the limit holds`, () => {
      let graph = randomGraph(c.options);
      let plan = planLayers(graph, { strategy, maxStoreLayers: c.limit });
      for (let b = 1; b <= c.bumps; b++) {
        const victim = graph.paths[(b * 7919) % graph.paths.length]!.path;
        const next = bumpPath(graph, victim, b);
        const previous = plan.layers.map((l) => l.paths);
        const planned = planLayers(next, { strategy, maxStoreLayers: c.limit, previous });
        assertCovers(planned, next, c.limit);
        const present = new Set(next.paths.map((p) => p.path));
        const whole = previous.filter((l) => l.every((p) => present.has(p)));
        const carried = planned.layers.filter((l) => l.reason === 'carried-over').map((l) => l.paths);
        assert.deepEqual(carried, whole, 'carried-over layers are exactly the whole old layers, in old order');
        assert.ok(planned.layers.every((l) => l.reason === 'carried-over' || l.reason === 'new'));
        assert.ok(whole.length < previous.length, 'the bump broke at least one layer');
        assert.deepEqual(planLayers(next, { strategy, maxStoreLayers: c.limit, previous }), planned, 'second run differs');
        graph = next;
        plan = planned;
      }
    });
  }
}

test('stable layering with a smaller limit than the old image gives up the smallest old layers first', () => {
  const graph = randomGraph({ n: 300, seed: 21, component: 30 });
  const old = planLayers(graph, { strategy: 'stable', maxStoreLayers: 60 });
  assert.equal(old.layers.length, 60);
  const previous = old.layers.map((l) => l.paths);
  for (const limit of [59, 40, 10, 2, 1]) {
    const plan = planLayers(graph, { strategy: 'stable', maxStoreLayers: limit, previous });
    assertCovers(plan, graph, limit);
    const carried = plan.layers.filter((l) => l.reason === 'carried-over');
    // One layer is left for the released paths, so limit - 1 old layers stay.
    assert.equal(carried.length, limit - 1);
    const keptSizes = carried.map((l) => l.narSize);
    const dropped = old.layers.filter((l) => !carried.some((c) => c.paths === l.paths || c.paths.join() === l.paths.join()));
    for (const d of dropped) assert.ok(keptSizes.every((k) => k >= d.narSize), `dropped a layer of ${d.narSize} bytes but kept a smaller one`);
  }
});

/**
 * popularity_contest as nixpkgs writes it: expand references from the roots into a tree and count
 * every appearance, a subtree's counts each raised by one per level they are merged up. Memoised
 * per path like nixpkgs' own caches; fine for a few thousand paths.
 */
function referencePopularity(graph: ClosureGraph): Map<string, bigint> {
  const refs = new Map(graph.paths.map((p) => [p.path, [...new Set(p.references.filter((r) => r !== p.path))]]));
  const referenced = new Set([...refs.values()].flat());
  const memo = new Map<string, Map<string, bigint>>();
  const contest = (children: string[]): Map<string, bigint> => {
    const pop = new Map<string, bigint>();
    for (const c of children) {
      pop.set(c, (pop.get(c) ?? 0n) + 1n);
      let sub = memo.get(c);
      if (!sub) memo.set(c, (sub = contest(refs.get(c)!)));
      for (const [p, k] of sub) pop.set(p, (pop.get(p) ?? 0n) + k + 1n);
    }
    return pop;
  };
  return contest(graph.paths.map((p) => p.path).filter((p) => !referenced.has(p)));
}

test('popularity counts equal popularity_contest computed the nixpkgs way, on 1,500 paths with heavily shared base paths', () => {
  // Base paths here have more ancestors than a walk takes, so the bitset pass computes their counts.
  const graph = randomGraph({ n: 1500, seed: 31, component: 300, base: 40, baseShare: 0.6 });
  const g = indexGraph(graph.paths);
  const ours = popularityScores(g);
  const expected = referencePopularity(graph);
  assert.deepEqual(new Map(g.paths.map((p, i) => [p, ours[i]!])), expected);
});
