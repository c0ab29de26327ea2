// Readers and writers of the image model: one per transport, and the one image-argument parser.
export { parseImageRef, formatImageRef, looksLikeRegistryReference, IMAGE_REF_HINT, type ImageRef, type ParseImageRefOptions } from './image-ref.js';
export { openImage, openArtifact, type OpenImageOptions } from './open.js';
export { writeOciLayout, ociIndexJson, type LayoutNaming } from './oci-layout.js';
export { writeOciArchive } from './oci-archive.js';
export { writeDockerArchive, streamDockerArchive, type ArchiveNaming } from './docker-archive.js';
export { writeImage, outputFormats, parseOutputFormat, defaultOutputPath, type OutputFormat } from './write.js';
export type { PushImageOptions } from './registry.js';
