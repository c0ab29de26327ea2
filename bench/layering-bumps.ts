/**
 * How many bytes each layering re-uploads when a dependency is bumped, on a store built from this
 * machine's Debian packages (bench/debian-graph.ts). After each bump the plan is made again and
 * every layer whose path set the previous image did not have counts as new; the minimum is the
 * NAR size of the paths whose hash changed. Run: node dist/bench/layering-bumps.js [maxLayers]
 */
import { debianStore, readInstalledPackages, storeGraph } from './debian-graph.js';
import { planLayers, storeLayerBudget, type ClosureGraph, type LayerPlan, type PlanOptions } from '../layering/index.js';

const ROOTS = ['git', 'python3.11', 'curl', 'openssh-client', 'gcc-12', 'g++-12', 'cmake', 'postgresql-15', 'vim', 'nodejs', 'skopeo', 'docker-registry', 'nix-bin', 'umoci', 'runc', 'make', 'valgrind', 'libgtk2.0-0', 'python3-pip'];
/** A leaf application, an interpreter, a mid-level library, a base library (first installed name wins). */
const BUMPS: string[][] = [['git'], ['python3.11', 'python3.12', 'python3.13'], ['libssl3', 'libssl3t64'], ['zlib1g']];

interface Layering {
  name: string;
  options: Omit<PlanOptions, 'maxStoreLayers' | 'previous'>;
  stable: boolean;
}
const LAYERINGS: Layering[] = [
  { name: 'popularity', options: { strategy: 'popularity' }, stable: false },
  { name: 'auto', options: { strategy: 'auto' }, stable: false },
  { name: 'auto + previous', options: { strategy: 'auto' }, stable: true },
  { name: 'popularity + previous', options: { strategy: 'popularity' }, stable: true },
  { name: 'stable', options: { strategy: 'stable' }, stable: true },
];

const maxLayers = Number(process.argv[2] ?? 100);
const budget = storeLayerBudget(maxLayers, 0);
const raw = readInstalledPackages();
const installed = new Set(raw.map((p) => p.name));
const roots = ROOTS.filter((r) => installed.has(r));
const store = debianStore(roots, raw);
const bumps = BUMPS.map((names) => {
  const found = names.find((n) => store.packages.has(n));
  if (!found) throw new Error(`none of ${names.join(', ')} is in the store`);
  return found;
});
let total = 0;
for (const p of store.packages.values()) total += p.narSize;
console.log(`store: ${store.packages.size} Debian packages from ${roots.length} roots, ${mib(total)} MiB; maxLayers ${maxLayers} (${budget} store layers)`);
console.log(`bumps: ${bumps.join(', ')}${bumps.join() !== BUMPS.map((b) => b[0]).join() ? ` (asked for ${BUMPS.map((b) => b[0]).join(', ')})` : ''}`);

// The graphs before and after each bump (bumps accumulate, as successive releases would).
const generations = new Map<string, number>();
const graphs: ClosureGraph[] = [storeGraph(store, generations)];
for (const b of bumps) {
  generations.set(b, (generations.get(b) ?? 0) + 1);
  graphs.push(storeGraph(store, generations));
}
const minimum = bumps.map((_, i) => {
  const before = new Set(graphs[i]!.paths.map((p) => p.path));
  return graphs[i + 1]!.paths.filter((p) => !before.has(p.path)).reduce((s, p) => s + p.narSize, 0);
});

const layerKey = (paths: readonly string[]) => [...paths].sort().join('\n');
const rows: string[][] = [['layering', ...bumps.map((b) => `${b}`), 'sequence', 'max layers used']];
rows.push(['minimum (changed paths)', ...minimum.map((m) => `${mib(m)} MiB`), `${mib(sum(minimum))} MiB`, '']);
const ratios: Record<string, number[]> = {};
for (const l of LAYERINGS) {
  let plan: LayerPlan = planLayers(graphs[0]!, { ...l.options, maxStoreLayers: budget });
  let maxUsed = plan.layers.length;
  const pushed: number[] = [];
  for (let i = 1; i < graphs.length; i++) {
    const next = planLayers(graphs[i]!, { ...l.options, maxStoreLayers: budget, ...(l.stable ? { previous: plan.layers.map((x) => x.paths) } : {}) });
    const had = new Set(plan.layers.map((x) => layerKey(x.paths)));
    pushed.push(next.layers.filter((x) => !had.has(layerKey(x.paths))).reduce((s, x) => s + x.narSize, 0));
    maxUsed = Math.max(maxUsed, next.layers.length);
    plan = next;
  }
  ratios[l.name] = [...pushed.map((p, i) => p / minimum[i]!), sum(pushed) / sum(minimum)];
  rows.push([
    l.name,
    ...pushed.map((p, i) => `${mib(p)} MiB (${(p / minimum[i]!).toFixed(3)}×)`),
    `${mib(sum(pushed))} MiB (${(sum(pushed) / sum(minimum)).toFixed(3)}×)`,
    `${maxUsed + 1} of ${maxLayers}`,
  ]);
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
console.log('(bytes of new layers after each bump; ratio to the minimum; "max layers used" counts the customisation layer)');

function sum(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0);
}
function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

// Every package bumped on its own, from the first image: how the layerings do on bumps nobody
// picked. Re-uploaded bytes = changed paths + the unchanged paths that share a layer with one.
console.log(`\nevery single-package bump from the first image (${store.packages.size} bumps):`);
const single: string[][] = [['layering', 'bytes / minimum (all bumps)', 'median bump', '90th percentile', 'bumps ≤ 1.01×']];
for (const l of LAYERINGS.filter((x) => !x.stable || x.options.strategy === 'stable')) {
  const plan = planLayers(graphs[0]!, { ...l.options, maxStoreLayers: budget });
  const size = new Map(graphs[0]!.paths.map((p) => [p.path, p.narSize]));
  let pushedAll = 0;
  let minimumAll = 0;
  const ratios: number[] = [];
  for (const name of store.packages.keys()) {
    const after = new Set(storeGraph(store, new Map([[name, 1]])).paths.map((p) => p.path));
    const changed = graphs[0]!.paths.filter((p) => !after.has(p.path)).reduce((s, p) => s + p.narSize, 0);
    let pushed = 0;
    for (const layer of plan.layers) if (layer.paths.some((p) => !after.has(p))) pushed += layer.paths.reduce((s, p) => s + size.get(p)!, 0);
    pushedAll += pushed;
    minimumAll += changed;
    if (changed > 0) ratios.push(pushed / changed);
  }
  ratios.sort((a, b) => a - b);
  single.push([
    l.name,
    `${(pushedAll / minimumAll).toFixed(3)}×`,
    `${ratios[Math.floor(ratios.length / 2)]!.toFixed(3)}×`,
    `${ratios[Math.floor(ratios.length * 0.9)]!.toFixed(3)}×`,
    `${ratios.filter((r) => r <= 1.01).length} of ${ratios.length}`,
  ]);
}
const w2 = single[0]!.map((_, c) => Math.max(...single.map((r) => r[c]!.length)));
for (const r of single) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(w2[c]!) : cell.padStart(w2[c]!))).join('  '));
