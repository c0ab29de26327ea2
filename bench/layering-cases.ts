/**
 * Seeded random planning cases for comparing planners (bench/layering-same-plans.ts) and for the
 * pinned plans of test/layering-pinned-plans.test.ts: closures of 1..maxPaths paths of several
 * shapes (components over base libraries, tied names and sizes, paths without `-`, deep graphs
 * whose popularity counts pass 2^53, shuffled input, a cycle, a dangling reference, a duplicate),
 * every strategy, limits 1..120, exclude / pinned / explicit layers / previous layers.
 */
import { prng, randomGraph, shuffledGraph, bumpPath } from './layering-random-graph.js';
import type { planLayers } from '../layering/index.js';
import type { ClosureGraph, LayeringStrategy, PlanOptions, StorePathInfo } from '../layering/index.js';

export type Planner = typeof planLayers;

/** A closure where many paths share a name (ties go to the hash) and many have the same shape. */
function tiedNames(graph: ClosureGraph, rand: () => number, names: number): ClosureGraph {
  const rename = new Map<string, string>();
  for (const p of graph.paths) {
    const dash = p.path.indexOf('-');
    rename.set(p.path, `${p.path.slice(0, dash)}-lib${Math.floor(rand() * names)}`);
  }
  const r = (p: string) => rename.get(p)!;
  return { ...graph, roots: graph.roots.map(r), paths: graph.paths.map((p) => ({ ...p, path: r(p.path), references: p.references.map(r) })) };
}

/**
 * Paths without `-` (not store paths, but valid input) and pairs `p`, `p-`, whose auto keys tie:
 * both are the empty name with hash part `p`.
 */
function undashedNames(graph: ClosureGraph, rand: () => number): ClosureGraph {
  const rename = new Map<string, string>();
  let previous: string | null = null;
  for (const p of graph.paths) {
    const hashPart = p.path.slice(0, p.path.indexOf('-'));
    const r = rand();
    let name = p.path;
    if (previous !== null && r < 0.3) name = `${previous}-`;
    else if (r < 0.5) name = hashPart;
    previous = name === hashPart ? hashPart : null;
    rename.set(p.path, name);
  }
  const r = (p: string) => rename.get(p)!;
  return { ...graph, roots: graph.roots.map(r), paths: graph.paths.map((p) => ({ ...p, path: r(p.path), references: p.references.map(r) })) };
}

/** Levels of `width` paths, each referencing every path of the level below: root-to-path counts grow as width^depth. */
function layeredGraph(depth: number, width: number, rand: () => number): ClosureGraph {
  const name = (d: number, i: number) => `/nix/store/${String(d * 1000 + i).padStart(32, '0')}-l${d}-${i}`;
  const paths: StorePathInfo[] = [];
  for (let d = 0; d < depth; d++) {
    for (let i = 0; i < width; i++) {
      const references = d + 1 < depth ? Array.from({ length: width }, (_, j) => name(d + 1, j)).filter(() => rand() < 0.9) : [];
      paths.push({ path: name(d, i), narSize: 1 + Math.floor(rand() * 4) * 1000, references });
    }
  }
  return { storeDir: '/nix/store', roots: [], paths };
}

/** A reference from a path to one of its ancestors: a cycle. */
function withCycle(graph: ClosureGraph, rand: () => number): ClosureGraph | null {
  const users = new Map<string, string[]>();
  for (const p of graph.paths) for (const r of p.references) if (r !== p.path) users.set(r, [...(users.get(r) ?? []), p.path]);
  const candidates = graph.paths.filter((p) => users.has(p.path));
  if (candidates.length === 0) return null;
  const victim = candidates[Math.floor(rand() * candidates.length)]!;
  let up = victim.path;
  for (let hops = 1 + Math.floor(rand() * 4); hops > 0 && users.has(up); hops--) up = users.get(up)![Math.floor(rand() * users.get(up)!.length)]!;
  return { ...graph, paths: graph.paths.map((p) => (p === victim ? { ...p, references: [...p.references, up] } : p)) };
}

function pick<T>(xs: readonly T[], k: number, rand: () => number): T[] {
  const out: T[] = [];
  for (let i = 0; i < k && xs.length > 0; i++) out.push(xs[Math.floor(rand() * xs.length)]!);
  return out;
}

export interface Case {
  what: string;
  graph: ClosureGraph;
  options: PlanOptions;
}

export function makeCase(seed: number, theirs: Planner, maxPaths = 5000): Case {
  const rand = prng(seed * 7919 + 17);
  const n = Math.max(1, Math.floor(Math.exp(rand() * Math.log(maxPaths))));
  const shape = rand();
  let what: string;
  let graph: ClosureGraph;
  if (shape < 0.08) {
    const depth = 2 + Math.floor(rand() * 70);
    const width = 1 + Math.floor(rand() * 5);
    what = `layered depth ${depth} width ${width}`;
    graph = layeredGraph(depth, width, rand);
  } else {
    const options = {
      n,
      seed,
      meanRefs: [0.5, 1, 2, 3, 5, 8][Math.floor(rand() * 6)]!,
      component: rand() < 0.5 ? n : 1 + Math.floor(rand() * 300),
      base: rand() < 0.5 ? undefined : Math.floor(rand() * Math.min(n, 200)),
      baseShare: rand(),
      selfRefs: rand() < 0.2 ? 0 : rand(),
      tiedSizes: rand() < 0.4,
    };
    what = `random ${JSON.stringify(options)}`;
    graph = randomGraph(options);
    if (rand() < 0.25) (graph = tiedNames(graph, rand, 1 + Math.floor(rand() * 20))), (what += ' tied names');
    else if (rand() < 0.1) (graph = undashedNames(graph, rand)), (what += ' undashed names');
  }
  if (rand() < 0.3) (graph = shuffledGraph(graph, seed + 5)), (what += ' shuffled');
  if (rand() < 0.04) {
    const cyclic = withCycle(graph, rand);
    if (cyclic) (graph = cyclic), (what += ' cycle');
  }
  if (rand() < 0.02 && graph.paths.length > 0) {
    const p = graph.paths[Math.floor(rand() * graph.paths.length)]!;
    graph = { ...graph, paths: [...graph.paths.map((q) => (q === p ? { ...q, references: [...q.references, '/nix/store/missing-x'] } : q))] };
    what += ' dangling';
  }
  if (rand() < 0.02 && graph.paths.length > 0) (graph = { ...graph, paths: [...graph.paths, graph.paths[0]!] }), (what += ' duplicate');

  const strategy = (['popularity', 'auto', 'stable'] as LayeringStrategy[])[Math.floor(rand() * 3)]!;
  const maxStoreLayers = rand() < 0.3 ? 99 : 1 + Math.floor(rand() * 120);
  const options: PlanOptions = { strategy, maxStoreLayers };
  const all = graph.paths.map((p) => p.path);
  if (rand() < 0.2) options.exclude = [...pick(all, 1 + Math.floor(rand() * 10), rand), ...(rand() < 0.3 ? ['/nix/store/absent-y'] : [])];
  const free = all.filter((p) => !options.exclude?.includes(p));
  if (rand() < 0.15) options.pinned = pick(free, 1 + Math.floor(rand() * 4), rand);
  if (rand() < 0.15) options.explicitLayers = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(free, 1 + Math.floor(rand() * 3), rand));
  if (rand() < 0.25 && graph.paths.length > 0 && !/cycle|dangling|duplicate/.test(what)) {
    // The previous image: a plan of the graph before a bump, by any strategy and limit.
    const victim = all[Math.floor(rand() * all.length)]!;
    const before = bumpPath(graph, victim, 1 + Math.floor(rand() * 5));
    const oldStrategy = (['popularity', 'auto', 'stable'] as LayeringStrategy[])[Math.floor(rand() * 3)]!;
    try {
      options.previous = theirs(before, { strategy: oldStrategy, maxStoreLayers: 1 + Math.floor(rand() * 120) }).layers.map((l) => l.paths);
      if (rand() < 0.2) options.previous.push(pick(all, 3, rand));
      what += ` previous(${oldStrategy})`;
    } catch {
      // no previous plan for this one
    }
  }
  return { what, graph, options };
}

/** A case's plan as text, or its error's name, code and message. */
export function outcome(plan: Planner, c: Case): string {
  try {
    return JSON.stringify(plan(c.graph, c.options));
  } catch (e) {
    const err = e as Error & { code?: string };
    return `throws ${err.name} ${err.code ?? ''} ${err.message}`;
  }
}
