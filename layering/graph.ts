import { LayeringError } from './errors.js';
import type { StorePathInfo } from './types.js';

/**
 * A closure graph indexed for the planners: nodes are numbers in input order, references are
 * deduplicated and without self-references (Nix lets a path reference itself; no planner cares).
 */
export interface IndexedGraph {
  /** Node → store path. */
  readonly paths: readonly string[];
  readonly indexOf: ReadonlyMap<string, number>;
  readonly narSize: Float64Array;
  /** Node → nodes it references. */
  readonly refs: readonly (readonly number[])[];
  /** Node → nodes that reference it. */
  readonly users: readonly (readonly number[])[];
}

/** Index and validate a closure: unique paths, sizes that are byte counts, references inside the closure, no cycles. */
export function indexGraph(infos: readonly StorePathInfo[]): IndexedGraph {
  const n = infos.length;
  const paths: string[] = new Array<string>(n);
  const indexOf = new Map<string, number>();
  const narSize = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const info = infos[i]!;
    if (typeof info.path !== 'string' || info.path === '') throw new LayeringError(`closure entry ${i} has no path`);
    if (indexOf.has(info.path)) throw new LayeringError(`store path ${info.path} is listed twice in the closure`);
    if (!Number.isSafeInteger(info.narSize) || info.narSize < 0) {
      throw new LayeringError(`store path ${info.path} has narSize ${String(info.narSize)}; expected a non-negative integer byte count`);
    }
    indexOf.set(info.path, i);
    paths[i] = info.path;
    narSize[i] = info.narSize;
  }
  const refs: number[][] = new Array<number[]>(n);
  const userCount = new Int32Array(n);
  const lastSeen = new Int32Array(n).fill(-1); // dedupes a node's references without a Set
  for (let i = 0; i < n; i++) {
    const info = infos[i]!;
    if (!Array.isArray(info.references)) throw new LayeringError(`store path ${info.path} has no references list`);
    const mine: number[] = [];
    for (const ref of info.references) {
      const j = indexOf.get(ref);
      if (j === undefined) throw new LayeringError(`store path ${info.path} references ${ref}, which is not in the closure`);
      if (j === i || lastSeen[j] === i) continue;
      lastSeen[j] = i;
      mine.push(j);
      userCount[j]!++;
    }
    refs[i] = mine;
  }
  const users: number[][] = new Array<number[]>(n);
  for (let i = 0; i < n; i++) users[i] = new Array<number>(userCount[i]!);
  const filled = new Int32Array(n);
  for (let i = 0; i < n; i++) for (const j of refs[i]!) users[j]![filled[j]!++] = i;
  const graph: IndexedGraph = { paths, indexOf, narSize, refs, users };
  topoOrder(graph); // throws on a cycle
  return graph;
}

/** The graph restricted to `keep` (node numbers of `graph`, any order); edges to dropped nodes vanish. Input order is kept. */
export function inducedSubgraph(graph: IndexedGraph, keep: Iterable<number>): IndexedGraph {
  const nodes = [...new Set(keep)].sort((a, b) => a - b);
  const newIndex = new Int32Array(graph.paths.length).fill(-1);
  nodes.forEach((old, i) => (newIndex[old] = i));
  const paths = nodes.map((old) => graph.paths[old]!);
  const indexOf = new Map(paths.map((p, i) => [p, i] as const));
  const narSize = Float64Array.from(nodes, (old) => graph.narSize[old]!);
  const refs = nodes.map((old) => graph.refs[old]!.map((r) => newIndex[r]!).filter((r) => r >= 0));
  const users: number[][] = nodes.map(() => []);
  refs.forEach((rs, i) => rs.forEach((r) => users[r]!.push(i)));
  return { paths, indexOf, narSize, refs, users };
}

/** Nodes ordered so that every node comes before the nodes it references (users first). Throws on a cycle. */
export function topoOrder(graph: IndexedGraph): Int32Array {
  const n = graph.paths.length;
  const pending = new Int32Array(n);
  for (let i = 0; i < n; i++) pending[i] = graph.users[i]!.length;
  const order = new Int32Array(n);
  let head = 0;
  let tail = 0;
  for (let i = 0; i < n; i++) if (pending[i] === 0) order[tail++] = i;
  while (head < tail) {
    const v = order[head++]!;
    for (const r of graph.refs[v]!) {
      pending[r] = pending[r]! - 1;
      if (pending[r] === 0) order[tail++] = r;
    }
  }
  if (tail < n) throw new LayeringError(`the closure has a reference cycle: ${describeCycle(graph, pending)}`);
  return order;
}

/** A cycle among the nodes Kahn's algorithm could not place, for the error message. */
function describeCycle(graph: IndexedGraph, pending: Int32Array): string {
  let v = pending.findIndex((p) => p > 0);
  const seenAt = new Map<number, number>();
  const walk: number[] = [];
  // Every unplaced node has an unplaced user, so walking users must revisit a node.
  while (!seenAt.has(v)) {
    seenAt.set(v, walk.length);
    walk.push(v);
    v = graph.users[v]!.find((u) => pending[u]! > 0)!;
  }
  const cycle = walk.slice(seenAt.get(v) ?? 0).reverse();
  return [...cycle, cycle[0]!].map((i) => graph.paths[i]).join(' → ');
}

/** Every node reachable from `starts` through references (including the starts), as a mark array. */
export function markClosure(graph: IndexedGraph, starts: Iterable<number>, mark: Uint8Array = new Uint8Array(graph.paths.length)): Uint8Array {
  const stack: number[] = [];
  for (const s of starts) if (!mark[s]) (mark[s] = 1), stack.push(s);
  while (stack.length > 0) {
    const v = stack.pop()!;
    for (const r of graph.refs[v]!) if (!mark[r]) (mark[r] = 1), stack.push(r);
  }
  return mark;
}
