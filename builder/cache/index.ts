export { LayerCache, type LayerRecord } from './layer-cache.js';
export { LAYER_FORMAT_VERSION, entriesKey, keyedStorePaths, storeLayerKey, type KeyedPath } from './layer-key.js';
export { pruneCache, type PruneOptions, type PruneResult, type Tally } from './prune.js';
