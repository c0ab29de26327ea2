// imgbuild's library: the pipeline (spec → store → plan → build) and the image model with its
// transports and publishers. Everything the CLI does, callable with an explicit context.
// The standalone parts have their own entry points: imgbuild/registry-client, imgbuild/layering, imgbuild/oci.

// Specs
export * from './spec/index.js';

// Store sources
export { openStoreSource, DirectoryStoreSource, NixStoreSource, ClosureFileStoreSource, EmptyStoreSource, type OpenStoreSourceOptions } from './store/index.js';
export { addToStore, sourceStorePath, type AddToStoreOptions, type AddToStoreResult } from './store/index.js';
export type { StoreSource } from './store/types.js';
export { BinaryCacheStoreSource, type BinaryCacheSourceOptions } from './store/binary-cache/source.js';
export { parsePublicKeys, type PublicKey } from './store/binary-cache/signatures.js';
export { BinaryCacheError, NarMismatchError } from './store/binary-cache/errors.js';

// Planning and building
export { buildImage, specStore, specClosure, type Build, type BuildOptions } from './build/build-image.js';
export { specBase } from './build/base.js';
export type { BuildContext, BuildEvent } from './build/context.js';
export { planImage, checkPlan, closureDigest, formatImagePlan, PLAN_VERSION, type ImagePlan } from './build/plan.js';
export { layerReason } from './build/assemble.js';
// Progress: the build's and a push's events drawn as bars (a terminal) or plain lines
export { createProgress, progressMode, pushProgress, builtEvent, type Progress, type ProgressOptions, type ProgressEvent, type PushEvent, type BuiltEvent } from './progress.js';

// The image model
export type { Layer, BlobLocation, Image, Index, IndexEntry, CheckedDescriptor, MinimalImage, MinimalIndex, PlatformWanted } from './model/index.js';
export { completeImage, completeIndex, imageForPlatform, requireImage, describeLayer, layerDescriptor, verifiedStream, ImageReadError, BlobMismatchError } from './model/index.js';

// Transports: read any image argument, write any image
export { parseImageRef, formatImageRef, openImage, openArtifact, writeOciLayout, writeOciArchive, writeDockerArchive, streamDockerArchive, writeImage, outputFormats, type ImageRef, type OpenImageOptions, type OutputFormat } from './transports/index.js';
export { pushImage, readRegistryImage, type BlobLocations, type PushImageOptions } from './transports/registry.js';
export { layerFiles, readLayerFile, type LayerFile, type LayerReadOptions } from './transports/layer-files.js';
export { RegistryLayerRecords, recordsReference, LAYER_RECORDS_TYPE, type RegistryLayerRecord } from './transports/registry-records.js';

// The layer cache
export { LayerCache } from './cache/layer-cache.js';
export type { LayerHints } from './cache/layer-hints.js';
export { pruneCache, type PruneOptions, type PruneResult } from './cache/prune.js';
export { BlobLocationStore } from './cache/blob-locations.js';

// Reproducibility checks
export { diffImages, type ImageDiff } from './repro/diff.js';
export { verifySpec, BUILD_CONDITIONS, type VerifyOptions, type VerifyResult, type BuildRunner, type BuildConditions } from './repro/verify.js';

// Errors: one shape (code, message, hint)
export { ImgbuildError, SpecError, StoreError, LayerContentError, OutputError, BasePlatformError } from './errors.js';
export type { LayerBlob, LayerEntry, Compressor } from './layer/types.js';

// SBOMs (SPDX 2.3, CycloneDX 1.6) of a build or an image, attached as OCI 1.1 referrers
export { buildSboms, imageSbom, sbomDocument, sbomArtifact, sbomInputFromBuild, sbomInputFromImage, parseDrvName, storePathPurl, SBOM_FORMATS, SBOM_MEDIA_TYPES, type ImageSbom, type SbomFormat, type SbomInput } from './sbom/index.js';
export { imageReferrers, pushReferrers, type ImageReferrers, type ImageReferrersOptions } from './transports/referrers.js';
export { manifestAnnotations } from './build/annotations.js';
