import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  autoLayers,
  formatPlan,
  indexGraph,
  LayeringError,
  planLayers,
  storeLayerBudget,
  type ClosureGraph,
  type LayerPlan,
  type StorePathInfo,
} from '../layering/index.js';
import { autoKeyRanks, compareAutoPathKey } from '../layering/path-order.js';

/** `/nix/store/<32 chars>-name`, the hash derived from the name. */
const sp = (name: string) => `/nix/store/${createHash('sha256').update(name).digest('hex').slice(0, 32)}-${name}`;
const MiB = 1 << 20;

/** A closure from `name: [size in MiB, ...references]`. */
function closure(spec: Record<string, [number, ...string[]]>): ClosureGraph {
  const paths: StorePathInfo[] = Object.entries(spec).map(([name, [mib, ...refs]]) => ({
    path: sp(name),
    narSize: mib * MiB,
    references: refs.map(sp),
  }));
  return { storeDir: '/nix/store', roots: [], paths };
}
const names = (plan: LayerPlan) => plan.layers.map((l) => l.paths.map((p) => p.slice(44)));

// hello → glibc, libidn2 → libunistring → glibc; bash → glibc; data only hello uses.
const hello = closure({
  hello: [1, 'glibc', 'libidn2', 'hello-data'],
  'hello-data': [3],
  libidn2: [0.25, 'libunistring', 'glibc'],
  libunistring: [2, 'glibc'],
  bash: [5, 'glibc'],
  glibc: [30, 'glibc'],
});

test('storeLayerBudget: maxLayers less the base image layers and the customisation layer', () => {
  assert.equal(storeLayerBudget(100, 0), 99);
  assert.equal(storeLayerBudget(100, 3), 96);
  assert.equal(storeLayerBudget(125, 0), 124);
  assert.equal(storeLayerBudget(2, 0), 1);
});

test('storeLayerBudget refuses more than 125 layers, fewer than 2, and a base image that leaves no room', () => {
  assert.throws(() => storeLayerBudget(126, 0), (e: unknown) => e instanceof LayeringError && /maxLayers 126 is more than 125/.test(e.message));
  assert.throws(() => storeLayerBudget(1, 0), (e: unknown) => e instanceof LayeringError && /maxLayers 1 is less than 2/.test(e.message));
  assert.throws(
    () => storeLayerBudget(10, 9),
    (e: unknown) => e instanceof LayeringError && /base image has 9 layer\(s\).*at least 11/.test(e.message),
  );
  assert.throws(() => storeLayerBudget(2.5, 0), LayeringError);
  assert.throws(() => storeLayerBudget(100, -1), LayeringError);
});

test('a path listed twice is refused, naming it', () => {
  const g = closure({ a: [1] });
  assert.throws(() => planLayers({ ...g, paths: [...g.paths, ...g.paths] }, { strategy: 'auto', maxStoreLayers: 5 }), {
    name: 'LayeringError',
    message: `store path ${sp('a')} is listed twice in the closure`,
  });
});

test('a reference to a path outside the closure is refused, naming both', () => {
  assert.throws(() => planLayers(closure({ a: [1, 'b'] }), { strategy: 'popularity', maxStoreLayers: 5 }), {
    name: 'LayeringError',
    message: `store path ${sp('a')} references ${sp('b')}, which is not in the closure`,
  });
});

test('a reference cycle is refused, showing the cycle', () => {
  assert.throws(() => indexGraph(closure({ a: [1, 'b'], b: [1, 'c'], c: [1, 'a'], d: [1, 'a'] }).paths), {
    name: 'LayeringError',
    message: `the closure has a reference cycle: ${sp('b')} → ${sp('c')} → ${sp('a')} → ${sp('b')}`,
  });
});

test('a negative or fractional narSize is refused', () => {
  const g = closure({ a: [1] });
  assert.throws(() => indexGraph([{ ...g.paths[0]!, narSize: -1 }]), /narSize -1; expected a non-negative integer/);
  assert.throws(() => indexGraph([{ ...g.paths[0]!, narSize: 1.5 }]), LayeringError);
});

test('planLayers refuses an unknown strategy and a store layer limit below 1', () => {
  assert.throws(() => planLayers(hello, { strategy: 'biggest' as 'auto', maxStoreLayers: 5 }), /unknown layering strategy "biggest"/);
  assert.throws(() => planLayers(hello, { strategy: 'auto', maxStoreLayers: 0 }), /maxStoreLayers must be a positive integer, got 0/);
});

test('an empty closure gives no layers', () => {
  for (const strategy of ['popularity', 'auto', 'stable'] as const) {
    assert.deepEqual(planLayers({ storeDir: '/nix/store', roots: [], paths: [] }, { strategy, maxStoreLayers: 5 }).layers, []);
  }
});

test('popularity: one layer per path by popularity, the tail merged into the last layer', () => {
  const plan = planLayers(hello, { strategy: 'popularity', maxStoreLayers: 3 });
  // Counts: glibc 8, libunistring 3, hello-data and libidn2 2, bash and hello 1; ties by name.
  assert.deepEqual(names(plan), [['glibc'], ['libunistring'], ['hello-data', 'libidn2', 'bash', 'hello']]);
  assert.deepEqual(
    plan.layers.map((l) => l.reason),
    ['popularity', 'popularity', 'merged-tail'],
  );
});

test('popularity with room to spare: a layer per path, no empty layer', () => {
  const plan = planLayers(hello, { strategy: 'popularity', maxStoreLayers: 6 });
  assert.equal(plan.layers.length, 6);
  assert.ok(plan.layers.every((l) => l.paths.length === 1 && l.reason === 'popularity'));
});

test('popularity with exclude: counted as if the excluded paths and references to them were not there (nixpkgs)', () => {
  const excluded = planLayers(hello, { strategy: 'popularity', maxStoreLayers: 10, exclude: [sp('libidn2')] });
  const without = closure({
    hello: [1, 'glibc', 'hello-data'],
    'hello-data': [3],
    libunistring: [2, 'glibc'],
    bash: [5, 'glibc'],
    glibc: [30, 'glibc'],
  });
  assert.deepEqual(excluded, planLayers(without, { strategy: 'popularity', maxStoreLayers: 10 }));
  // libunistring lost its only user, so it is a root now: counted once, like bash and hello.
  assert.deepEqual(names(excluded), [['glibc'], ['hello-data'], ['bash'], ['hello'], ['libunistring']]);
});

test('auto: the largest paths lead layers with the paths only they use, ordered by closure size', () => {
  const plan = planLayers(hello, { strategy: 'auto', maxStoreLayers: 3 });
  assert.deepEqual(names(plan), [['glibc'], ['bash'], ['hello', 'hello-data', 'libidn2', 'libunistring']]);
  assert.ok(plan.layers.every((l) => l.reason === 'auto'));
});

test('auto with exclude: the split is made with the excluded paths, then they are dropped (auto-layer.py)', () => {
  const plan = planLayers(hello, { strategy: 'auto', maxStoreLayers: 3, exclude: [sp('hello-data'), sp('bash')] });
  // bash still took a layer in the split; dropped afterwards, its layer disappears.
  assert.deepEqual(names(plan), [['glibc'], ['hello', 'libidn2', 'libunistring']]);
});

test('auto orders layers of equal closure size by their first path name (nixpkgs leaves it to Python set order)', () => {
  const g = closure({ zeta: [4], alpha: [4], mid: [4] });
  assert.deepEqual(
    autoLayers(indexGraph(g.paths), 10).map((l) => [l.paths.map((p) => p.slice(44)), l.closureSize]),
    [
      [['alpha'], 4 * MiB],
      [['mid'], 4 * MiB],
      [['zeta'], 4 * MiB],
    ],
  );
});

test('pinned paths get a layer each, first, and leave the rest to the strategy', () => {
  const plan = planLayers(hello, { strategy: 'auto', maxStoreLayers: 4, pinned: [sp('libunistring'), sp('libunistring')] });
  assert.deepEqual(names(plan)[0], ['libunistring']);
  assert.equal(plan.layers[0]!.reason, 'pinned');
  assert.equal(plan.layers.filter((l) => l.paths.includes(sp('libunistring'))).length, 1);
  assert.ok(plan.layers.length <= 4);
});

test('explicit layers take their closure, in order; a later layer loses what an earlier one took', () => {
  const plan = planLayers(hello, {
    strategy: 'popularity',
    maxStoreLayers: 5,
    explicitLayers: [[sp('libidn2')], [sp('hello')], [sp('glibc')]],
  });
  assert.deepEqual(names(plan), [
    ['glibc', 'libidn2', 'libunistring'],
    ['hello', 'hello-data'],
    ['bash'],
  ]);
  assert.deepEqual(
    plan.layers.map((l) => l.reason),
    ['explicit', 'explicit', 'popularity'],
  );
});

test('a pinned path is not repeated in an explicit layer that reaches it', () => {
  const plan = planLayers(hello, { strategy: 'auto', maxStoreLayers: 5, pinned: [sp('glibc')], explicitLayers: [[sp('hello')]] });
  assert.deepEqual(names(plan).slice(0, 2), [['glibc'], ['hello', 'hello-data', 'libidn2', 'libunistring']]);
});

test('pinned and explicit paths must be in the closure and not excluded; groups must not be empty', () => {
  assert.throws(() => planLayers(hello, { strategy: 'auto', maxStoreLayers: 5, pinned: [sp('zsh')] }), {
    name: 'LayeringError',
    message: `pinned[0]: ${sp('zsh')} is not in the image's closure`,
  });
  assert.throws(
    () => planLayers(hello, { strategy: 'auto', maxStoreLayers: 5, explicitLayers: [[sp('bash')]], exclude: [sp('bash')] }),
    /explicitLayers\[0\]\[0\]: .*-bash is also in exclude/,
  );
  assert.throws(() => planLayers(hello, { strategy: 'auto', maxStoreLayers: 5, explicitLayers: [[]] }), /explicitLayers\[0\] is empty/);
});

test('pinned and explicit layers count against the limit', () => {
  assert.throws(
    () => planLayers(hello, { strategy: 'auto', maxStoreLayers: 1, pinned: [sp('glibc'), sp('bash')] }),
    /need 2 store layers, but only 1 are available/,
  );
  assert.throws(
    () => planLayers(hello, { strategy: 'auto', maxStoreLayers: 1, pinned: [sp('glibc')] }),
    /take all 1 store layers, leaving none for the other paths/,
  );
  const all = planLayers(hello, { strategy: 'auto', maxStoreLayers: 1, explicitLayers: [[sp('hello'), sp('bash')]] });
  assert.deepEqual(names(all), [['bash', 'glibc', 'hello', 'hello-data', 'libidn2', 'libunistring']]);
});

test('stable: a leaf application is not layered with data only it uses, so bumping it re-uploads only itself', () => {
  const g = closure({ app1: [100, 'data1', 'lib'], app2: [80, 'data2', 'lib'], data1: [5], data2: [4], lib: [1] });
  // One merge is needed; lib goes with app1 (bumping app1 re-uploads 1 MiB of lib, the least).
  assert.deepEqual(names(planLayers(g, { strategy: 'stable', maxStoreLayers: 4 })), [['app1', 'lib'], ['app2'], ['data1'], ['data2']]);
});

test('previous layers still whole are carried over as they were, in their old order; only new paths are laid out', () => {
  const v1 = planLayers(hello, { strategy: 'popularity', maxStoreLayers: 4 });
  assert.deepEqual(names(v1), [['glibc'], ['libunistring'], ['hello-data'], ['libidn2', 'bash', 'hello']]);
  // hello 2.13: a new hello path; its old layer is no longer whole.
  const v2graph = closure({
    'hello-2.13': [1, 'glibc', 'libidn2', 'hello-data'],
    'hello-data': [3],
    libidn2: [0.25, 'libunistring', 'glibc'],
    libunistring: [2, 'glibc'],
    bash: [5, 'glibc'],
    glibc: [30, 'glibc'],
  });
  const previous = [...v1.layers.map((l) => l.paths)].reverse(); // any order the old image had
  const v2 = planLayers(v2graph, { strategy: 'popularity', maxStoreLayers: 4, previous });
  assert.deepEqual(names(v2), [['hello-data'], ['libunistring'], ['glibc'], ['libidn2', 'bash', 'hello-2.13']]);
  assert.deepEqual(
    v2.layers.map((l) => l.reason),
    ['carried-over', 'carried-over', 'carried-over', 'new'],
  );
});

test('previous layers that would leave no room for new paths: the smallest are given up first', () => {
  const previous = [[sp('glibc')], [sp('bash')], [sp('libunistring')], [sp('libidn2')]];
  const plan = planLayers(hello, { strategy: 'auto', maxStoreLayers: 3, previous });
  assert.deepEqual(names(plan), [['glibc'], ['bash'], ['hello', 'hello-data', 'libidn2', 'libunistring']]);
  assert.deepEqual(
    plan.layers.map((l) => l.reason),
    ['carried-over', 'carried-over', 'new'],
  );
});

test('a previous layer holding an excluded, pinned or vanished path is not carried over', () => {
  const previous = [[sp('glibc')], [sp('bash')], [sp('libunistring'), sp('gone')], [sp('libidn2')]];
  const plan = planLayers(hello, { strategy: 'auto', maxStoreLayers: 6, previous, exclude: [sp('bash')], pinned: [sp('glibc')] });
  assert.deepEqual(
    plan.layers.map((l) => [l.reason, l.paths.map((p) => p.slice(44))]),
    [
      ['pinned', ['glibc']],
      ['carried-over', ['libidn2']],
      ['new', ['libunistring']],
      ['new', ['hello-data']],
      ['new', ['hello']],
    ],
  );
});

test('formatPlan prints one row per layer with its reason, NAR size and paths', () => {
  const plan = planLayers(hello, { strategy: 'popularity', maxStoreLayers: 3, pinned: [sp('bash')] });
  assert.equal(
    formatPlan(plan),
    [
      'strategy: popularity, store layers: 3, paths: 6, NAR size: 41.3 MiB',
      '#  reason       NAR size  paths',
      `1  pinned        5.0 MiB  ${sp('bash')}`,
      `2  popularity   30.0 MiB  ${sp('glibc')}`,
      `3  merged-tail   6.3 MiB  ${sp('libunistring')}`,
      `                          ${sp('hello-data')}`,
      `                          ${sp('libidn2')}`,
      `                          ${sp('hello')}`,
      '',
    ].join('\n'),
  );
});

test('auto-layer name order: by the name after the hash, then the hash; a name that prefixes another sorts first', () => {
  const paths = ['/nix/store/bbb-foo-1.0', '/nix/store/aaa-foo-1.0', '/nix/store/ccc-foo', '/nix/store/aaa-foo-1.0-dev', '/nix/store/zzz-bar'];
  const expected = ['/nix/store/zzz-bar', '/nix/store/ccc-foo', '/nix/store/aaa-foo-1.0', '/nix/store/bbb-foo-1.0', '/nix/store/aaa-foo-1.0-dev'];
  assert.deepEqual([...paths].sort(compareAutoPathKey), expected);
  const rank = autoKeyRanks(paths);
  assert.deepEqual(
    paths.map((_, i) => i).sort((a, b) => rank[a]! - rank[b]!).map((i) => paths[i]),
    expected,
  );
});
