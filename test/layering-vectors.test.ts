import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers/paths.js';
import { autoLayers, indexGraph, planLayers, popularityScores, type ClosureGraph, type StorePathInfo } from '../layering/index.js';

/** Golden vectors made by running nixpkgs' own layering code, kept in the repository (see test/fixtures/layering-vectors/README.md). */
interface Vector {
  name: string;
  graph: StorePathInfo[];
  layerLimit: number;
  expected_popularity: string[][];
  expected_auto: string[][];
  expected_auto_closureSizes: number[];
  popularity_roots: string[];
  popularity_scores: Record<string, string>;
  flags: { auto_closure_size_ties?: boolean };
}

const dir = join(repoRoot, 'test/fixtures/layering-vectors');
const vectors: Vector[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Vector);

const closureOf = (v: Vector): ClosureGraph => ({ storeDir: '/nix/store', roots: v.popularity_roots, paths: v.graph });

test('the vector set is there', () => {
  assert.ok(vectors.length >= 20, `expected the nixpkgs vectors in ${dir}, found ${vectors.length}`);
});

for (const v of vectors) {
  test(`${v.name}: popularity counts equal popularity_contest's`, () => {
    const g = indexGraph(v.graph);
    const scores = popularityScores(g);
    const ours = Object.fromEntries(g.paths.map((p, i) => [p, scores[i]!.toString()]));
    assert.deepEqual(ours, v.popularity_scores);
  });

  test(`${v.name}: popularity roots are the paths nothing references`, () => {
    const g = indexGraph(v.graph);
    const roots = g.paths.filter((_, i) => g.userStart[i + 1] === g.userStart[i]);
    assert.deepEqual(roots.sort(), [...v.popularity_roots].sort());
  });

  test(`${v.name}: popularity layers equal popularity_contest + limit_layers(${v.layerLimit})`, () => {
    const plan = planLayers(closureOf(v), { strategy: 'popularity', maxStoreLayers: v.layerLimit });
    assert.deepEqual(
      plan.layers.map((l) => l.paths),
      v.expected_popularity,
    );
  });

  test(`${v.name}: auto layers equal auto-layer.py${v.flags.auto_closure_size_ties ? ' (equal closure sizes compared as sets)' : ''}`, () => {
    const ours = autoLayers(indexGraph(v.graph), v.layerLimit);
    assert.deepEqual(
      ours.map((l) => l.closureSize),
      v.expected_auto_closureSizes,
    );
    // nixpkgs orders layers of equal closure size by Python set order: compare each run of equal
    // closure size as a set of layers; everything else (and every layer's inner order) exactly.
    const runs = (sizes: number[], layers: string[][]) => {
      const out: string[][] = [];
      sizes.forEach((s, i) => {
        if (i > 0 && sizes[i - 1] === s) out[out.length - 1]!.push(JSON.stringify(layers[i]));
        else out.push([JSON.stringify(layers[i])]);
      });
      return out.map((run) => run.sort());
    };
    assert.deepEqual(
      runs(ours.map((l) => l.closureSize), ours.map((l) => l.paths)),
      runs(v.expected_auto_closureSizes, v.expected_auto),
    );
    if (!v.flags.auto_closure_size_ties) {
      assert.deepEqual(
        planLayers(closureOf(v), { strategy: 'auto', maxStoreLayers: v.layerLimit }).layers.map((l) => l.paths),
        v.expected_auto,
      );
    }
  });
}
