import type { ClosureGraph, LayerPlan, PlanOptions } from './types.js';

export class LayeringError extends Error {
  override name = 'LayeringError';
}

/**
 * Assign every path of the closure to exactly one store layer, within `maxStoreLayers`.
 * Pure: same graph and options in, same plan out.
 */
export function planLayers(graph: ClosureGraph, options: PlanOptions): LayerPlan {
  // Interim plan until the layering module lands: one layer per path by descending narSize,
  // the remainder merged into the last layer.
  if (options.maxStoreLayers < 1) throw new LayeringError(`maxStoreLayers must be at least 1, got ${options.maxStoreLayers}`);
  const sorted = [...graph.paths].sort((a, b) => b.narSize - a.narSize || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const layers = sorted.slice(0, options.maxStoreLayers - 1).map((p) => ({ paths: [p.path], reason: 'popularity' as const, narSize: p.narSize }));
  const tail = sorted.slice(options.maxStoreLayers - 1);
  if (tail.length > 0) {
    layers.push({ paths: tail.map((p) => p.path), reason: 'popularity' as const, narSize: tail.reduce((s, p) => s + p.narSize, 0) });
  }
  return { strategy: options.strategy, layers };
}
