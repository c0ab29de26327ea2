export type * from './types.js';
export { writeLayer, measureLayer } from './write-layer.js';
export { layerStream, type ExpectedBlob } from './layer-stream.js';
export { TarChunker } from './tar-chunker.js';
export { storeLayerEntries, treeEntries } from './tree-entries.js';
export { compareTreePaths } from './entry-order.js';
export { LayerEntryError } from './errors.js';
export { canonicalDirMode, canonicalFileMode, STORE_PARENT_DIR_MODE } from './modes.js';
export { GZIP_LEVEL } from './gzip.js';
