import type { IndexedGraph } from './graph.js';

/**
 * Stable layering, step 1: the previous image's store layers that can be reused as they are.
 * A layer is carried over when every one of its paths is still in the closure, is not excluded
 * and was not taken by a pinned or explicit layer (or an earlier carried layer, should the old
 * image list a path twice). Old order is kept, and each layer keeps its paths in their old order
 * so that it is written to the same bytes. Carried nodes are marked in `claimed`.
 */
export function carryOver(graph: IndexedGraph, previous: readonly (readonly string[])[], excluded: Uint8Array, claimed: Uint8Array): number[][] {
  const carried: number[][] = [];
  for (const layer of previous) {
    if (layer.length === 0) continue;
    const nodes: number[] = [];
    const seen = new Set<number>();
    let intact = true;
    for (const path of layer) {
      const v = graph.indexOf.get(path);
      if (v === undefined || excluded[v] || claimed[v] || seen.has(v)) {
        intact = false;
        break;
      }
      seen.add(v);
      nodes.push(v);
    }
    if (!intact) continue;
    for (const v of nodes) claimed[v] = 1;
    carried.push(nodes);
  }
  return carried;
}

/**
 * Stable layering, step 2: keep the layer limit. When the carried layers leave no room (`room`
 * layers in all, and one is needed for the new paths if there are any), the carried layers with
 * the smallest NAR size are given up first (ties: the upper one), because re-laying them out
 * re-uploads the fewest bytes. Their paths join the new paths. Returns the kept layers, in order,
 * and the released nodes.
 */
export function fitCarried(graph: IndexedGraph, carried: number[][], room: number, haveNewPaths: boolean): { kept: number[][]; released: number[] } {
  const size = carried.map((nodes) => nodes.reduce((s, v) => s + graph.narSize[v]!, 0));
  const byCost = carried.map((_, i) => i).sort((a, b) => size[a]! - size[b]! || b - a);
  const dropped = new Set<number>();
  let needNew = haveNewPaths;
  while (carried.length - dropped.size > room - (needNew ? 1 : 0) && dropped.size < carried.length) {
    dropped.add(byCost[dropped.size]!);
    needNew = true;
  }
  return {
    kept: carried.filter((_, i) => !dropped.has(i)),
    released: carried.filter((_, i) => dropped.has(i)).flat(),
  };
}
