import { LayeringError } from './errors.js';
import type { StorePathInfo } from './types.js';

/**
 * A closure graph indexed for the planners: nodes are numbers in input order, references are
 * deduplicated and without self-references (Nix lets a path reference itself; no planner cares).
 * Edges are flat arrays (compressed rows), not an array per node: at 200,000 paths per-node arrays
 * cost more to build and collect than the planning itself. Node v references
 * `refList[refStart[v]]` .. `refList[refStart[v + 1] - 1]`, in the order its references list
 * first names them; its users (the nodes that reference it) are `userList[userStart[v]]` ..
 * `userList[userStart[v + 1] - 1]`, ascending.
 */
export interface IndexedGraph {
  /** Node → store path. */
  readonly paths: readonly string[];
  readonly indexOf: ReadonlyMap<string, number>;
  readonly narSize: Float64Array;
  readonly refStart: Int32Array;
  readonly refList: Int32Array;
  readonly userStart: Int32Array;
  readonly userList: Int32Array;
  /** Every node before the nodes it references (users first). */
  readonly order: Int32Array;
}

/**
 * Path lists indexed by keepIndexedGraph: indexGraph of the same list is then a lookup. Weak: an
 * entry goes with its list. With the index, what it was made from (each entry and its number
 * of references), to see that the list was not changed since.
 */
const kept = new WeakMap<readonly StorePathInfo[], { graph: IndexedGraph; infos: readonly StorePathInfo[]; refCount: Int32Array }>();

/**
 * indexGraph(infos), kept so that later calls with the same list (the planner's) return it: for
 * the code that made `infos` and changes neither the list nor its entries afterwards (a
 * directory store's closure: its cycle check and its closure record use the index too, one
 * index of 50,000 paths instead of three). Should the list be changed all the same (an entry
 * added, removed or replaced, a path, size or number of references changed), the index is made
 * again; a reference replaced in place by another is not seen. Throws as indexGraph does;
 * nothing is kept then.
 */
export function keepIndexedGraph(infos: readonly StorePathInfo[]): IndexedGraph {
  kept.delete(infos);
  const graph = indexGraph(infos);
  kept.set(infos, { graph, infos: [...infos], refCount: Int32Array.from(infos, (i) => i.references.length) });
  return graph;
}

/** Lets go of the index kept for this list (it then goes when nothing else holds it): ~4 MB at 50,000 paths. */
export function forgetIndexedGraph(infos: readonly StorePathInfo[]): void {
  kept.delete(infos);
}

/** The index keepIndexedGraph kept for this list, if any and the list is as it was then. */
export function keptIndexedGraph(infos: readonly StorePathInfo[]): IndexedGraph | undefined {
  const entry = kept.get(infos);
  if (entry === undefined) return undefined;
  const { graph, infos: then, refCount } = entry;
  let same = infos.length === then.length;
  for (let i = 0; same && i < infos.length; i++) {
    const info = infos[i]!;
    same = info === then[i] && info.path === graph.paths[i] && info.narSize === graph.narSize[i] && info.references.length === refCount[i];
  }
  if (same) return graph;
  kept.delete(infos);
  return undefined;
}

/** Index and validate a closure: unique paths, sizes that are byte counts, references inside the closure, no cycles. */
export function indexGraph(infos: readonly StorePathInfo[]): IndexedGraph {
  const known = keptIndexedGraph(infos);
  if (known !== undefined) return known;
  const n = infos.length;
  const paths: string[] = new Array<string>(n);
  const indexOf = new Map<string, number>();
  const narSize = new Float64Array(n);
  let maxEdges = 0;
  for (let i = 0; i < n; i++) {
    const info = infos[i]!;
    const path = info.path;
    if (typeof path !== 'string' || path === '') throw new LayeringError(`closure entry ${i} has no path`);
    // One hash lookup, not two: a path already there leaves the size unchanged.
    indexOf.set(path, i);
    if (indexOf.size === i) throw new LayeringError(`store path ${path} is listed twice in the closure`);
    const size = info.narSize;
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new LayeringError(`store path ${path} has narSize ${String(size)}; expected a non-negative integer byte count`);
    }
    paths[i] = path;
    narSize[i] = size;
    if (Array.isArray(info.references)) maxEdges += info.references.length;
  }
  const refStart = new Int32Array(n + 1);
  let refList = new Int32Array(maxEdges);
  const userCount = new Int32Array(n + 1);
  const lastSeen = new Int32Array(n).fill(-1); // dedupes a node's references without a Set
  let e = 0;
  for (let i = 0; i < n; i++) {
    const info = infos[i]!;
    const references = info.references;
    if (!Array.isArray(references)) throw new LayeringError(`store path ${info.path} has no references list`);
    for (let k = 0; k < references.length; k++) {
      const ref = references[k]!;
      const j = indexOf.get(ref);
      if (j === undefined) throw new LayeringError(`store path ${info.path} references ${ref}, which is not in the closure`);
      if (j === i || lastSeen[j] === i) continue;
      lastSeen[j] = i;
      refList[e++] = j;
      userCount[j]!++;
    }
    refStart[i + 1] = e;
  }
  if (e < maxEdges) refList = refList.slice(0, e);
  const { start: userStart, list: userList } = transpose(n, refStart, refList, userCount);
  const order = topoSort(n, refStart, refList, userStart);
  if (order === null) throw new LayeringError(`the closure has a reference cycle: ${describeCycle(paths, refStart, refList, userStart, userList)}`);
  return { paths, indexOf, narSize, refStart, refList, userStart, userList, order };
}

/** The reverse edges of compressed rows: for every node, the nodes whose rows name it, ascending. `count[v]`: how many name v (overwritten). */
function transpose(n: number, start: Int32Array, list: Int32Array, count: Int32Array): { start: Int32Array; list: Int32Array } {
  const tStart = new Int32Array(n + 1);
  for (let v = 0; v < n; v++) tStart[v + 1] = tStart[v]! + count[v]!;
  const tList = new Int32Array(list.length);
  const fill = count;
  for (let v = 0; v < n; v++) fill[v] = tStart[v]!;
  for (let i = 0; i < n; i++) {
    const b = start[i + 1]!;
    for (let k = start[i]!; k < b; k++) {
      const j = list[k]!;
      tList[fill[j]!++] = i;
    }
  }
  return { start: tStart, list: tList };
}

/** Kahn's algorithm, users first; null on a cycle. */
function topoSort(n: number, refStart: Int32Array, refList: Int32Array, userStart: Int32Array): Int32Array | null {
  const pending = new Int32Array(n);
  const order = new Int32Array(n);
  let tail = 0;
  for (let i = 0; i < n; i++) {
    const p = userStart[i + 1]! - userStart[i]!;
    pending[i] = p;
    if (p === 0) order[tail++] = i;
  }
  for (let head = 0; head < tail; head++) {
    const v = order[head]!;
    const b = refStart[v + 1]!;
    for (let k = refStart[v]!; k < b; k++) {
      const r = refList[k]!;
      if (--pending[r]! === 0) order[tail++] = r;
    }
  }
  return tail < n ? null : order;
}

/** A cycle among the nodes Kahn's algorithm could not place, for the error message. */
function describeCycle(paths: readonly string[], refStart: Int32Array, refList: Int32Array, userStart: Int32Array, userList: Int32Array): string {
  // Kahn's algorithm again, keeping the counts: the nodes left with pending users are the unplaced ones.
  const n = paths.length;
  const pending = new Int32Array(n);
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if ((pending[i] = userStart[i + 1]! - userStart[i]!) === 0) queue.push(i);
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head]!;
    for (let k = refStart[v]!; k < refStart[v + 1]!; k++) if (--pending[refList[k]!]! === 0) queue.push(refList[k]!);
  }
  let v = pending.findIndex((p) => p > 0);
  const seenAt = new Map<number, number>();
  const walk: number[] = [];
  // Every unplaced node has an unplaced user, so walking users must revisit a node.
  while (!seenAt.has(v)) {
    seenAt.set(v, walk.length);
    walk.push(v);
    let next = -1;
    for (let k = userStart[v]!; k < userStart[v + 1]!; k++) {
      if (pending[userList[k]!]! > 0) {
        next = userList[k]!;
        break;
      }
    }
    v = next;
  }
  const cycle = walk.slice(seenAt.get(v) ?? 0).reverse();
  return [...cycle, cycle[0]!].map((i) => paths[i]).join(' → ');
}

/** The graph restricted to `keep` (node numbers of `graph`, any order); edges to dropped nodes vanish. Input order is kept. */
export function inducedSubgraph(graph: IndexedGraph, keep: Iterable<number>): IndexedGraph {
  const N = graph.paths.length;
  const newIndex = new Int32Array(N).fill(-1);
  for (const v of keep) newIndex[v] = 0;
  const nodes: number[] = [];
  for (let v = 0; v < N; v++) if (newIndex[v] === 0) (newIndex[v] = nodes.length), nodes.push(v);
  const n = nodes.length;
  const paths = nodes.map((old) => graph.paths[old]!);
  const indexOf = new Map<string, number>();
  for (let i = 0; i < n; i++) indexOf.set(paths[i]!, i);
  const narSize = new Float64Array(n);
  const refStart = new Int32Array(n + 1);
  const userCount = new Int32Array(n + 1);
  let e = 0;
  for (let i = 0; i < n; i++) {
    const old = nodes[i]!;
    narSize[i] = graph.narSize[old]!;
    for (let k = graph.refStart[old]!; k < graph.refStart[old + 1]!; k++) if (newIndex[graph.refList[k]!]! >= 0) e++;
  }
  const refList = new Int32Array(e);
  e = 0;
  for (let i = 0; i < n; i++) {
    const old = nodes[i]!;
    for (let k = graph.refStart[old]!; k < graph.refStart[old + 1]!; k++) {
      const r = newIndex[graph.refList[k]!]!;
      if (r >= 0) (refList[e++] = r), userCount[r]!++;
    }
    refStart[i + 1] = e;
  }
  const { start: userStart, list: userList } = transpose(n, refStart, refList, userCount);
  // The whole graph's order restricted to the kept nodes still puts users first.
  const order = new Int32Array(n);
  let o = 0;
  for (let i = 0; i < N; i++) {
    const r = newIndex[graph.order[i]!]!;
    if (r >= 0) order[o++] = r;
  }
  return { paths, indexOf, narSize, refStart, refList, userStart, userList, order };
}

/** Every node reachable from `starts` through references (including the starts), as a mark array. */
export function markClosure(graph: IndexedGraph, starts: Iterable<number>, mark: Uint8Array = new Uint8Array(graph.paths.length)): Uint8Array {
  const { refStart, refList } = graph;
  const stack: number[] = [];
  for (const s of starts) if (!mark[s]) (mark[s] = 1), stack.push(s);
  while (stack.length > 0) {
    const v = stack.pop()!;
    const b = refStart[v + 1]!;
    for (let k = refStart[v]!; k < b; k++) {
      const r = refList[k]!;
      if (!mark[r]) (mark[r] = 1), stack.push(r);
    }
  }
  return mark;
}

/** The nodes v references (a view; for code off the hot paths). */
export function refsOf(graph: IndexedGraph, v: number): Int32Array {
  return graph.refList.subarray(graph.refStart[v]!, graph.refStart[v + 1]!);
}

/** The nodes that reference v, ascending (a view; for code off the hot paths). */
export function usersOf(graph: IndexedGraph, v: number): Int32Array {
  return graph.userList.subarray(graph.userStart[v]!, graph.userStart[v + 1]!);
}
