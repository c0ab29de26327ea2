// The library: everything the CLI does, callable from TypeScript/JavaScript.
export * from './spec/index.js';
export { buildImage, specClosure, specPlan, specStore, defaultBlobStore, type BuildOptions, type BuildResult, type BuildEvent } from './build.js';
export { writeOutput, streamOutput, outputFormats, type OutputFormat } from './outputs.js';
export { openImage, type ImageHandle } from './input/open-image.js';
export { BlobStore } from './blobs/blob-store.js';
export { cacheRoot } from './cache-dir.js';
export { ImgbuildError, SpecError, StoreError, LayerContentError, OutputError } from './errors.js';
export type { BuiltImage, ImageLayer } from './image/types.js';
export type { StoreSource } from './store/types.js';
export type { LayerBlob, LayerEntry, Compressor } from './layer/types.js';
