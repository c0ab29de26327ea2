import { autoLayerNodes } from './auto.js';
import { claimLayers } from './claims.js';
import { LayeringError } from './errors.js';
import { indexGraph, inducedSubgraph, type IndexedGraph } from './graph.js';
import { limitLayers, popularityOrder } from './popularity.js';
import { carryOver, fitCarried } from './stable.js';
import { stableLayout } from './stable-layout.js';
import type { ClosureGraph, LayerPlan, LayerReason, PlannedLayer, PlanOptions } from './types.js';

export { LayeringError } from './errors.js';

/**
 * Names what the planners give for a closure and options: a plan kept from an earlier build
 * (builder/build/plan-memo.ts) is used only under the same name. Change it with any change that
 * alters a plan; test/layering-pinned-plans.test.ts ties it to the pinned plans' fixture, so
 * pinning new plans asks for a new name.
 */
export const PLANNER_VERSION = 'planner-1/pins-a878b27852d1a192';

/**
 * Assign every path of the closure (except `exclude`) to exactly one store layer, at most
 * `maxStoreLayers` of them, bottom first:
 *   1. `pinned` paths, a layer each;
 *   2. `explicitLayers`, each group's closure minus what earlier layers took;
 *   3. with `previous`: the previous image's layers that are still whole (stable layering);
 *   4. the rest, laid out by the strategy in the layers that are left.
 * Pure: same graph and options in, same plan out; the order in which the graph lists paths and
 * references does not matter except where nixpkgs' `auto` itself depends on it (equal narSize).
 */
export function planLayers(closure: ClosureGraph, options: PlanOptions): LayerPlan {
  const { strategy, maxStoreLayers } = options;
  if (strategy !== 'popularity' && strategy !== 'auto' && strategy !== 'stable') {
    throw new LayeringError(`unknown layering strategy ${JSON.stringify(strategy)}; use "popularity", "auto" or "stable"`);
  }
  if (!Number.isInteger(maxStoreLayers) || maxStoreLayers < 1) {
    throw new LayeringError(`maxStoreLayers must be a positive integer, got ${maxStoreLayers}`);
  }
  const graph = indexGraph(closure.paths);
  const n = graph.paths.length;
  const excluded = new Uint8Array(n);
  for (const path of options.exclude ?? []) {
    // Excluding a path that is not there is harmless (nixpkgs ignores it too).
    const v = graph.indexOf.get(path);
    if (v !== undefined) excluded[v] = 1;
  }
  const claimed = new Uint8Array(n);
  const layers: PlannedLayer[] = [];
  const push = (nodes: readonly number[], reason: LayerReason) => layers.push(plannedLayer(graph, nodes, reason));

  const named = claimLayers(graph, options.pinned ?? [], options.explicitLayers ?? [], excluded, claimed);
  if (named.length > maxStoreLayers) {
    throw new LayeringError(
      `pinned and explicit layers need ${named.length} store layers, but only ${maxStoreLayers} are available; raise maxLayers or pin fewer paths`,
    );
  }
  for (const l of named) push(l.nodes, l.reason);

  const carried = options.previous ? carryOver(graph, options.previous, excluded, claimed) : [];
  const unplaced = () => {
    for (let v = 0; v < n; v++) if (!claimed[v] && !excluded[v]) return true;
    return false;
  };
  const { kept, released } = fitCarried(graph, carried, maxStoreLayers - named.length, unplaced());
  for (const v of released) claimed[v] = 0;
  for (const nodes of kept) push(nodes, 'carried-over');

  const room = maxStoreLayers - layers.length;
  if (unplaced() && room < 1) {
    throw new LayeringError(
      `pinned and explicit layers take all ${maxStoreLayers} store layers, leaving none for the other paths of the closure; raise maxLayers or pin fewer paths`,
    );
  }
  const withPrevious = options.previous !== undefined;
  for (const layer of strategyLayers(graph, strategy, room, claimed, excluded)) {
    push(layer.nodes, withPrevious ? 'new' : layer.reason);
  }
  return { strategy, layers };
}

interface StrategyLayer {
  nodes: number[];
  reason: LayerReason;
}

/** The strategy over the paths nothing has claimed, as nixpkgs would run it on that graph. */
function strategyLayers(graph: IndexedGraph, strategy: PlanOptions['strategy'], room: number, claimed: Uint8Array, excluded: Uint8Array): StrategyLayer[] {
  const n = graph.paths.length;
  if (strategy === 'popularity') {
    // popularity_contest drops excluded paths (and references to them) before it counts.
    const keep: number[] = [];
    for (let v = 0; v < n; v++) if (!claimed[v] && !excluded[v]) keep.push(v);
    if (keep.length === 0) return [];
    const sub = keep.length === n ? graph : inducedSubgraph(graph, keep);
    const groups = limitLayers(popularityOrder(sub), room);
    // The subgraph numbers the kept nodes in order: sub node i is keep[i].
    return groups.map((g, i) => ({
      nodes: g.map((v) => keep[v]!),
      reason: i === groups.length - 1 && g.length > 1 ? 'merged-tail' : 'popularity',
    }));
  }
  if (strategy === 'stable') {
    const keep: number[] = [];
    for (let v = 0; v < n; v++) if (!claimed[v] && !excluded[v]) keep.push(v);
    return stableLayout(graph, keep, room).map((nodes) => ({ nodes, reason: 'new' }));
  }
  // auto-layer splits with excluded paths in place and drops them from its output.
  const keep: number[] = [];
  let ignoredCount = 0;
  for (let v = 0; v < n; v++) {
    if (claimed[v]) continue;
    keep.push(v);
    if (excluded[v]) ignoredCount++;
  }
  if (keep.length === ignoredCount) return [];
  const sub = keep.length === n ? graph : inducedSubgraph(graph, keep);
  const ignored = Uint8Array.from(keep, (v) => excluded[v]!);
  return autoLayerNodes(sub, room, ignored).map((l) => ({ nodes: l.nodes.map((v) => keep[v]!), reason: 'auto' }));
}

function plannedLayer(graph: IndexedGraph, nodes: readonly number[], reason: LayerReason): PlannedLayer {
  let narSize = 0;
  for (const v of nodes) narSize += graph.narSize[v]!;
  return { paths: nodes.map((v) => graph.paths[v]!), reason, narSize };
}
