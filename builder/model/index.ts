// The image model every source, publisher and command speaks: Layer, Image, Index.
export type { Layer, BlobLocation } from './layer.js';
export { layerDescriptor, describeLayer } from './layer.js';
export type { Image, Index, IndexEntry, CheckedDescriptor } from './image.js';
export { openImageBlob, bytesStream, splitRef, imagePlatform, ARTIFACT_CONFIG } from './image.js';
export { completeImage, completeIndex, imageForPlatform, pickForPlatform, NoPlatformError, isIndexDocument, formatPlatform, parseDocument, readCapped, artifactTypeOf, requireImage, ImageReadError, MAX_CONFIG_BYTES } from './complete.js';
export type { MinimalImage, MinimalIndex, PlatformWanted } from './complete.js';
export { verifiedStream, BlobMismatchError } from './verify-stream.js';
