import type { IndexedGraph } from './graph.js';
import { nameOrder } from './name-sort.js';

export interface AutoLayer {
  /** Store paths, in auto-layer's name order. */
  paths: string[];
  /** NAR size of the layer's paths and everything they reference (the layer order key). */
  closureSize: number;
}

/**
 * nixpkgs 25.11's auto-layer: take paths largest narSize first; each becomes a "primary" with a
 * layer of its own, and every path below it moves to the layer identified by the set of primaries
 * that depend on it without depending on each other. Stop before the number of distinct sets
 * would exceed `limit`. Layers are ordered by closure size, ascending.
 *
 * Among equal narSize the path listed last in the graph is taken first (Python's stable sort
 * popped from the end). Among layers of equal closure size nixpkgs' order follows Python's set
 * hashing, i.e. is arbitrary; we order those by their first path in name order, which is total
 * because layers are disjoint.
 *
 * `ignore` paths take part in the split, then are dropped from the output (auto-layer's ignore
 * file; a layer left empty disappears).
 */
export function autoLayers(graph: IndexedGraph, limit: number, ignore: ReadonlySet<string> = new Set()): AutoLayer[] {
  const ignored = new Uint8Array(graph.paths.length);
  if (ignore.size > 0) graph.paths.forEach((p, v) => (ignored[v] = ignore.has(p) ? 1 : 0));
  return autoLayerNodes(graph, limit, ignored).map((l) => ({ paths: l.nodes.map((v) => graph.paths[v]!), closureSize: l.closureSize }));
}

/** `autoLayers` with nodes for paths: `ignored[v]` set drops v from the output. */
export function autoLayerNodes(graph: IndexedGraph, limit: number, ignored: Uint8Array): { nodes: number[]; closureSize: number }[] {
  const n = graph.paths.length;
  if (n === 0) return [];
  const byNarSize = Array.from({ length: n }, (_, i) => i).sort((a, b) => graph.narSize[b]! - graph.narSize[a]! || b - a);

  // A node's layer id: the ordinals of the primaries it belongs to, ascending (primaries only get appended).
  const ids: number[][] = Array.from({ length: n }, () => []);
  const keys: string[] = new Array<string>(n).fill('');
  const counts = new Map<string, number>([['', n]]);
  const primaries: number[] = [];
  const depStamp = new Int32Array(n).fill(-1);
  const userStamp = new Int32Array(n).fill(-1);
  const stack: number[] = [];

  for (const [k, p] of byNarSize.entries()) {
    // Strict dependencies and strict (transitive) users of the new primary.
    const deps: number[] = [];
    stamp(graph.refStart, graph.refList, p, k, depStamp, stack, deps);
    stamp(graph.userStart, graph.userList, p, k, userStamp, stack, null);

    const changed: [node: number, id: number[], key: string][] = [[p, [k], String(k)]];
    for (const d of deps) {
      const id = ids[d]!.filter((o) => userStamp[primaries[o]!] !== k);
      if (!id.some((o) => depStamp[primaries[o]!] === k)) id.push(k);
      changed.push([d, id, id.join(',')]);
    }
    // Count distinct ids after the change without copying the whole split.
    const delta = new Map<string, number>();
    for (const [node, , key] of changed) {
      delta.set(keys[node]!, (delta.get(keys[node]!) ?? 0) - 1);
      delta.set(key, (delta.get(key) ?? 0) + 1);
    }
    let count = counts.size;
    for (const [key, dc] of delta) {
      const before = counts.get(key) ?? 0;
      if (before === 0 && before + dc > 0) count++;
      else if (before > 0 && before + dc === 0) count--;
    }
    if (count > limit) break;

    primaries.push(p);
    for (const [key, dc] of delta) {
      const after = (counts.get(key) ?? 0) + dc;
      if (after === 0) counts.delete(key);
      else counts.set(key, after);
    }
    for (const [node, id, key] of changed) (ids[node] = id), (keys[node] = key);
  }

  // Name order: one sort of all paths, not string comparisons per layer. Equal keys share a
  // rank, so the stable sort below orders them as compareAutoPathKey would.
  const { order, rank } = nameOrder(graph.paths, 'auto', 'shared');
  const byName = (a: number, b: number) => rank[a]! - rank[b]!;
  // The groups in order of their first node; each filled walking the name order, so its nodes
  // come in name order (equal keys by node number, as a stable sort by rank of them in node order).
  const groups = new Map<string, number[]>();
  for (let v = 0; v < n; v++) if (!groups.has(keys[v]!)) groups.set(keys[v]!, []);
  for (let r = 0; r < n; r++) groups.get(keys[order[r]!]!)!.push(order[r]!);
  const seen = new Int32Array(n).fill(-1);
  const layers = [...groups.values()].map((nodes, g) => ({ nodes, closureSize: closureSizeOf(graph, nodes, g, seen, stack) }));
  layers.sort((a, b) => a.closureSize - b.closureSize || byName(a.nodes[0]!, b.nodes[0]!));
  return layers.map((l) => ({ ...l, nodes: l.nodes.filter((v) => !ignored[v]) })).filter((l) => l.nodes.length > 0);
}

/**
 * The NAR size of `nodes` and everything they reference (each node once): the nodes reached are
 * stamped `g` in `seen`. A sum of byte counts (integers, exact below 2^53), so the order of adding does not matter.
 */
function closureSizeOf(graph: IndexedGraph, nodes: readonly number[], g: number, seen: Int32Array, stack: number[]): number {
  const { refStart, refList, narSize } = graph;
  let size = 0;
  for (const v of nodes) if (seen[v] !== g) (seen[v] = g), (size += narSize[v]!), stack.push(v);
  while (stack.length > 0) {
    const v = stack.pop()!;
    const b = refStart[v + 1]!;
    for (let k = refStart[v]!; k < b; k++) {
      const r = refList[k]!;
      if (seen[r] !== g) (seen[r] = g), (size += narSize[r]!), stack.push(r);
    }
  }
  return size;
}

/** Stamp every node reachable from `start` through `edges`, excluding `start` itself unless reached again. */
function stamp(edgeStart: Int32Array, edgeList: Int32Array, start: number, k: number, marks: Int32Array, stack: number[], out: number[] | null): void {
  stack.push(start);
  while (stack.length > 0) {
    const v = stack.pop()!;
    const b = edgeStart[v + 1]!;
    for (let e = edgeStart[v]!; e < b; e++) {
      const r = edgeList[e]!;
      if (marks[r] === k) continue;
      marks[r] = k;
      out?.push(r);
      stack.push(r);
    }
  }
}
