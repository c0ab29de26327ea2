/**
 * Seeded random closure graphs for layering property tests and benchmarks. Shaped like Nix
 * closures: a set of base libraries most paths use, and components (applications with their own
 * dependencies) whose paths reference earlier paths of the same component and base libraries.
 * Acyclic by construction (a path only references paths generated before it).
 */
import type { ClosureGraph, StorePathInfo } from '../layering/types.js';

/** mulberry32: a small, fast PRNG with a 32-bit state; the same seed gives the same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RandomGraphOptions {
  n: number;
  seed: number;
  /** Mean number of references per path. Default 3. */
  meanRefs?: number;
  /** Paths per component; references stay inside a component or go to base paths. Default: n (one component). */
  component?: number;
  /** How many of the first paths are base libraries. Default max(1, n/50). */
  base?: number;
  /** Share of references that go to base paths. Default 0.4. */
  baseShare?: number;
  /** Share of paths that list themselves among their references. Default 0.3. */
  selfRefs?: number;
  /** Draw narSize from a handful of values, so many paths tie. Default false: all sizes differ. */
  tiedSizes?: boolean;
}

const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

export function randomGraph(options: RandomGraphOptions): ClosureGraph {
  const { n, seed } = options;
  const rand = prng(seed);
  const meanRefs = options.meanRefs ?? 3;
  const component = options.component ?? n;
  const base = Math.min(n, options.base ?? Math.max(1, Math.floor(n / 50)));
  const baseShare = options.baseShare ?? 0.4;
  const selfRefs = options.selfRefs ?? 0.3;
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    let hash = '';
    for (let c = 0; c < 32; c++) hash += NIX_BASE32[Math.floor(rand() * 32)];
    names.push(`/nix/store/${hash}-pkg${i}-${1 + Math.floor(rand() * 9)}.${Math.floor(rand() * 20)}`);
  }
  const paths: StorePathInfo[] = [];
  for (let i = 0; i < n; i++) {
    const refs = new Set<string>();
    const count = Math.floor(rand() * (2 * meanRefs + 1));
    // Base paths reference earlier base paths; others their component's earlier paths or base paths.
    const compStart = i < base ? 0 : base + Math.floor((i - base) / component) * component;
    for (let r = 0; r < count; r++) {
      const toBase = i >= base && rand() < baseShare;
      const lo = toBase ? 0 : compStart;
      const hi = toBase ? base : i;
      if (hi <= lo) continue;
      refs.add(names[lo + Math.floor(rand() * (hi - lo))]!);
    }
    if (rand() < selfRefs) refs.add(names[i]!);
    const narSize = options.tiedSizes
      ? [1024, 4096, 65536, 1 << 20][Math.floor(rand() * 4)]!
      : // log-uniform 1 KiB..256 MiB, made distinct by the path's number (auto's order depends on ties)
        Math.floor(Math.exp(Math.log(1024) + rand() * (Math.log(256 << 20) - Math.log(1024)))) * n + i;
    paths.push({ path: names[i]!, narSize, references: [...refs].sort() });
  }
  paths.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const referenced = new Set(paths.flatMap((p) => p.references.filter((r) => r !== p.path)));
  return { storeDir: '/nix/store', roots: paths.map((p) => p.path).filter((p) => !referenced.has(p)), paths };
}

/** The same graph with its paths, and every path's references, listed in a random order. */
export function shuffledGraph(graph: ClosureGraph, seed: number): ClosureGraph {
  const rand = prng(seed);
  const shuffle = <T>(xs: T[]): T[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  };
  return { ...graph, paths: shuffle(graph.paths.map((p) => ({ ...p, references: shuffle([...p.references]) }))) };
}

/**
 * The graph after bumping `path`: it and every path that depends on it get a new hash (as Nix
 * would give them), sizes unchanged. Returns the new graph and the renamed paths.
 */
export function bumpPath(graph: ClosureGraph, path: string, generation: number): ClosureGraph {
  const users = new Map<string, string[]>();
  for (const p of graph.paths) for (const r of p.references) if (r !== p.path) users.set(r, [...(users.get(r) ?? []), p.path]);
  const changed = new Set<string>([path]);
  const todo = [path];
  while (todo.length > 0) for (const u of users.get(todo.pop()!) ?? []) if (!changed.has(u)) changed.add(u), todo.push(u);
  const rename = (p: string) => {
    if (!changed.has(p)) return p;
    const dash = p.indexOf('-');
    const hash = p.slice(dash - 32, dash);
    // A new hash: rotate the hash characters by the generation, deterministically.
    const fresh = [...hash].map((c, i) => NIX_BASE32[(NIX_BASE32.indexOf(c) + generation + i) % 32]).join('');
    return `${p.slice(0, dash - 32)}${fresh}${p.slice(dash)}`;
  };
  const paths = graph.paths
    .map((p) => ({ ...p, path: rename(p.path), references: p.references.map(rename).sort() }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { ...graph, roots: graph.roots.map(rename), paths };
}
