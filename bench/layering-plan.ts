/**
 * Planning time on a large random closure (bench/layering-random-graph.ts): 100,000 paths in
 * components of 200 over 2,000 base libraries, ~3 references each. Prints the time of each
 * strategy (best of 3) next to the time to index the graph (the floor every strategy pays).
 * Run: node dist/bench/layering-plan.js [paths]
 */
import { performance } from 'node:perf_hooks';
import { randomGraph } from './layering-random-graph.js';
import { indexGraph, planLayers, type LayeringStrategy } from '../layering/index.js';

const n = Number(process.argv[2] ?? 100_000);
const graph = randomGraph({ n, seed: 42, component: 200, base: Math.max(1, Math.floor(n / 50)) });
const edges = graph.paths.reduce((s, p) => s + p.references.length, 0);
console.log(`random closure: ${n} paths, ${edges} references, maxStoreLayers 99`);

/** Best of 3 runs, in wall-clock ms and in CPU ms (the CPU figure is meaningful on a busy machine). */
function best(fn: () => unknown): { wall: number; cpu: number } {
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < 3; i++) {
    const c0 = process.cpuUsage();
    const start = performance.now();
    fn();
    wall = Math.min(wall, performance.now() - start);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1000);
  }
  return { wall, cpu };
}

const baseline = best(() => indexGraph(graph.paths));
console.log(`index + validate (baseline): ${baseline.wall.toFixed(0)} ms wall, ${baseline.cpu.toFixed(0)} ms CPU`);
for (const strategy of ['popularity', 'auto', 'stable'] as LayeringStrategy[]) {
  let layers = 0;
  const t = best(() => (layers = planLayers(graph, { strategy, maxStoreLayers: 99 }).layers.length));
  console.log(
    `${strategy.padEnd(10)} ${t.wall.toFixed(0).padStart(6)} ms wall ${t.cpu.toFixed(0).padStart(6)} ms CPU  (${(t.cpu / baseline.cpu).toFixed(1)}× baseline CPU, ${layers} layers)${t.cpu < 2000 ? '' : '  — over the 2 s target'}`,
  );
}
