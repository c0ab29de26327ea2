import { LayeringError } from './errors.js';
import { markClosure, type IndexedGraph } from './graph.js';
import { compareAutoPathKey } from './path-order.js';

/** Layers the user asked for by name, before any strategy runs. */
export interface ClaimedLayer {
  nodes: number[];
  reason: 'pinned' | 'explicit';
}

/**
 * Pinned paths (a layer each, the path alone) then explicit groups (a layer each, the group's
 * closure). A path lands in the first layer that claims it, so a pinned path is never repeated in
 * an explicit layer, and a later group loses what an earlier one took. Excluded paths never land.
 * `claimed` is filled in with every node placed.
 */
export function claimLayers(
  graph: IndexedGraph,
  pinned: readonly string[],
  explicitLayers: readonly (readonly string[])[],
  excluded: Uint8Array,
  claimed: Uint8Array,
): ClaimedLayer[] {
  const layers: ClaimedLayer[] = [];
  for (const [i, path] of pinned.entries()) {
    const v = lookup(graph, path, `pinned[${i}]`, excluded);
    if (claimed[v]) continue; // pinned twice: one layer
    claimed[v] = 1;
    layers.push({ nodes: [v], reason: 'pinned' });
  }
  for (const [i, group] of explicitLayers.entries()) {
    if (group.length === 0) throw new LayeringError(`explicitLayers[${i}] is empty; name at least one store path`);
    const starts = group.map((path, j) => lookup(graph, path, `explicitLayers[${i}][${j}]`, excluded));
    const mark = markClosure(graph, starts);
    const nodes: number[] = [];
    for (let v = 0; v < mark.length; v++) {
      if (mark[v] && !claimed[v] && !excluded[v]) (claimed[v] = 1), nodes.push(v);
    }
    // A group whose closure earlier layers took entirely adds no layer (it would be empty).
    if (nodes.length > 0) {
      nodes.sort((a, b) => compareAutoPathKey(graph.paths[a]!, graph.paths[b]!));
      layers.push({ nodes, reason: 'explicit' });
    }
  }
  return layers;
}

function lookup(graph: IndexedGraph, path: string, where: string, excluded: Uint8Array): number {
  const v = graph.indexOf.get(path);
  if (v === undefined) throw new LayeringError(`${where}: ${path} is not in the image's closure`);
  if (excluded[v]) throw new LayeringError(`${where}: ${path} is also in exclude; a path cannot be both laid out and excluded`);
  return v;
}
