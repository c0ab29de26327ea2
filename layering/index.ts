export * from './types.js';
export { planLayers, PLANNER_VERSION } from './plan.js';
export { LayeringError } from './errors.js';
export { storeLayerBudget, MAX_LAYERS_LIMIT, DEFAULT_MAX_LAYERS } from './budget.js';
export { formatPlan } from './format.js';
export { indexGraph, keepIndexedGraph, keptIndexedGraph, forgetIndexedGraph, type IndexedGraph } from './graph.js';
export { popularityScores, popularityOrder, popularityLayers, limitLayers } from './popularity.js';
export { autoLayers, type AutoLayer } from './auto.js';
