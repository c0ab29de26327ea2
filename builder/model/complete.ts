import type { Readable } from 'node:stream';
import { isDigest, sha256Digest, type Digest } from '../../oci/digest.js';
import { MediaType, isIndexMediaType } from '../../oci/media-types.js';
import { ImageConfigSchema, IndexSchema, ManifestSchema, type Descriptor, type Manifest, type Platform } from '../../oci/schemas.js';
import { normalizePlatform } from '../../oci/platform.js';
import * as fast from '../../oci/documents-fast.js';
import { ImgbuildError } from '../errors.js';
import { ARTIFACT_CONFIG, type CheckedDescriptor, type Image, type Index, type IndexEntry } from './image.js';
import type { BlobLocation, Layer } from './layer.js';
import type { ReferrerArtifact } from '../../oci/referrers.js';
import { verifiedBytes, verifiedStream } from './verify-stream.js';

/** An image, a manifest or a blob that cannot be read as what it claims to be. */
export class ImageReadError extends ImgbuildError {
  override name = 'ImageReadError';
  constructor(source: string, message: string, hint?: string, options?: { cause?: unknown }) {
    super('image-read', `${source}: ${message}`, hint, options);
  }
}

/** Image configs are small JSON documents; refuse anything absurd rather than buffer it. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/**
 * What a transport knows of an image: the manifest's bytes, and a way to read its blobs. The rest
 * (parsed documents, checked descriptors, layers whose bytes are checked as they are read) is
 * derived by `completeImage`.
 */
export interface MinimalImage {
  source: string;
  manifestBytes: Buffer;
  /** The media type the manifest was served or listed with; default: the one it declares. */
  mediaType?: string;
  /** The raw bytes of a blob named by the manifest, unchecked (checked here). */
  openBlob(digest: Digest): Readable;
  /** The config's bytes when the transport has them at hand (else read through `openBlob`, capped). */
  configBytes?: Buffer;
  /** A blob's size where it is stored, for a local image: checked against the manifest before anything is read. */
  blobSize?(digest: Digest): Promise<number | undefined>;
  /** A local file holding exactly a blob, when there is one. */
  blobFile?(digest: Digest): string | undefined;
  /** A local blob's raw bytes at once when it is small (the ones `openBlob` would stream in one chunk), else undefined. */
  readSmallBlob?(digest: Digest): Buffer | undefined;
  /**
   * A local blob's bytes at once (with `blobSize`): the config is read so when it is within
   * MAX_CONFIG_BYTES, not streamed (a stream, its async iterator and node:fs's stream module are
   * ~3 ms of CPU of a no-op push).
   */
  readBlob?(digest: Digest): Promise<Buffer>;
  /** Where a registry holds these blobs. */
  location?: BlobLocation;
  refs?: readonly string[];
  /** The artifacts referring to the image where it is read (Image.referrers). */
  referrers?: () => Promise<readonly ReferrerArtifact[]>;
}

/**
 * Completes a minimal image: parses and checks the manifest (schema, sha256 digests), reads and
 * checks the config (digest, size, schema, one diff_id per layer), checks local blob sizes, and
 * gives layers whose bytes are checked against their descriptors as they are read.
 */
export async function completeImage(min: MinimalImage): Promise<Image> {
  const { source } = min;
  const manifest = parseDocument(source, 'manifest', ManifestSchema, min.manifestBytes);
  const mediaType = min.mediaType ?? manifest.mediaType ?? MediaType.ociManifest;
  if (mediaType !== MediaType.ociManifest && mediaType !== MediaType.dockerManifest) {
    throw new ImageReadError(source, `unsupported manifest type ${JSON.stringify(mediaType)} (expected an OCI image manifest or a Docker v2 schema 2 manifest)`);
  }
  const descriptor: CheckedDescriptor = { mediaType, digest: sha256Digest(min.manifestBytes), size: min.manifestBytes.length };
  const configDescriptor = checkedDescriptor(source, manifest.config, 'config');
  const layerDescriptors = manifest.layers.map((l, i) => checkedDescriptor(source, l, `layers[${i}]`));

  const configBytes = min.configBytes ?? (await readConfig(min, configDescriptor.digest));
  const configDigest = sha256Digest(configBytes);
  if (configDigest !== configDescriptor.digest || configBytes.length !== configDescriptor.size) {
    throw new ImageReadError(source, `config ${configDescriptor.digest} (${configDescriptor.size} bytes) reads as ${configDigest} (${configBytes.length} bytes)`);
  }
  // An artifact (an SBOM, a signature) has no image config to check: its blobs are not layers.
  const artifactType = artifactTypeOf(manifest);
  const config = artifactType !== undefined ? ARTIFACT_CONFIG : parseDocument(source, `config ${configDescriptor.digest}`, ImageConfigSchema, configBytes);
  const diffIds = artifactType !== undefined ? layerDescriptors.map((d) => d.digest) : config.rootfs.diff_ids;
  if (diffIds.length !== layerDescriptors.length) {
    throw new ImageReadError(source, `the manifest lists ${layerDescriptors.length} layers but the config ${diffIds.length} diff_ids`);
  }
  if (min.blobSize) {
    for (const d of layerDescriptors) {
      const size = await min.blobSize(d.digest);
      if (size === undefined) throw new ImageReadError(source, `layer ${d.digest} is missing`);
      if (size !== d.size) throw new ImageReadError(source, `layer ${d.digest} is ${size} bytes, the manifest says ${d.size}`);
    }
  }
  const layers = layerDescriptors.map((d, i): Layer => {
    const diffId = diffIds[i]!;
    if (!isDigest(diffId)) throw new ImageReadError(source, `config rootfs.diff_ids[${i}] ${JSON.stringify(diffId)} is not sha256:<64 hex>`);
    const file = min.blobFile?.(d.digest);
    return {
      digest: d.digest,
      diffId,
      size: d.size,
      mediaType: d.mediaType,
      ...(d.annotations ? { annotations: d.annotations } : {}),
      open: () => verifiedStream(min.openBlob(d.digest), d, source),
      ...(min.readSmallBlob ? { read: () => readVerified(min, d, source) } : {}),
      ...(file ? { file } : {}),
      ...(min.location ? { location: min.location } : {}),
    };
  });
  return {
    kind: 'image', source, descriptor, manifestBytes: min.manifestBytes, manifest, configDescriptor, configBytes, config, layers, refs: min.refs ?? [],
    ...(min.location ? { location: min.location } : {}), ...(artifactType !== undefined ? { artifactType } : {}),
    ...(min.referrers ? { referrers: min.referrers } : {}),
  };
}

/** The config media types of an image (OCI, Docker): a manifest with any other config is an artifact. */
const IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set([MediaType.ociConfig, MediaType.dockerConfig]);

/**
 * What kind of artifact a manifest is (its `artifactType`, else its config's media type when that
 * is not an image config: `application/vnd.oci.empty.v1+json`, a Helm chart's), or undefined for
 * an image (image-spec, "Guidelines for Artifact Usage").
 */
export function artifactTypeOf(manifest: Pick<Manifest, 'artifactType' | 'config'>): string | undefined {
  if (manifest.artifactType) return manifest.artifactType;
  return IMAGE_CONFIG_TYPES.has(manifest.config.mediaType) ? undefined : manifest.config.mediaType;
}

/** `image`, unless it is an artifact (an SBOM, a signature): then an error saying that `use` needs an image. */
export function requireImage(image: Image, use: string): Image {
  if (image.artifactType === undefined) return image;
  throw new ImageReadError(image.source, `is an artifact (${image.artifactType}), not an image: ${use} needs an image`,
    'it can be inspected (imgbuild inspect) and copied (imgbuild push); the image it is about is its subject, which imgbuild inspect shows');
}

/** A small local blob's bytes, checked as its stream would be; undefined when it must be streamed. */
function readVerified(min: MinimalImage, d: CheckedDescriptor, source: string): Buffer | undefined {
  const bytes = min.readSmallBlob!(d.digest);
  return bytes === undefined ? undefined : verifiedBytes(bytes, d, source);
}

/** What a transport knows of an index: its bytes, and how to open a child manifest. */
export interface MinimalIndex {
  source: string;
  bytes: Buffer;
  mediaType?: string;
  refs?: readonly string[];
  openChild(descriptor: CheckedDescriptor): Promise<Image | Index>;
  /** The artifacts referring to the index where it is read (Index.referrers). */
  referrers?: () => Promise<readonly ReferrerArtifact[]>;
}

export function completeIndex(min: MinimalIndex): Index {
  const index = parseDocument(min.source, 'index', IndexSchema, min.bytes);
  const mediaType = min.mediaType ?? index.mediaType ?? MediaType.ociIndex;
  const manifests = index.manifests.map((m, i): IndexEntry => {
    const descriptor = checkedDescriptor(min.source, m, `manifests[${i}]`);
    return { descriptor, ...(m.platform ? { platform: m.platform } : {}), open: () => min.openChild(descriptor) };
  });
  return {
    kind: 'index', source: min.source, descriptor: { mediaType, digest: sha256Digest(min.bytes), size: min.bytes.length }, bytes: min.bytes, index, manifests, refs: min.refs ?? [],
    ...(min.referrers ? { referrers: min.referrers } : {}),
  };
}

/** Whether a manifest's bytes are an index (by the media type served, else by what they declare). */
export function isIndexDocument(bytes: Buffer, mediaType?: string): boolean {
  if (mediaType) return isIndexMediaType(mediaType);
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown };
    return doc.mediaType ? isIndexMediaType(doc.mediaType) : Array.isArray(doc.manifests);
  } catch {
    return false;
  }
}

/** An index of several images, none for the platform wanted; `listed` is what it has (`linux/arm64/v8`). */
export class NoPlatformError extends ImageReadError {
  override name = 'NoPlatformError';
  constructor(source: string, readonly wanted: PlatformWanted, readonly listed: readonly string[]) {
    super(source, `no manifest for ${formatPlatform(wanted)}; the index has ${listed.join(', ')}`);
  }
}

export interface PlatformWanted {
  os: string;
  architecture: string;
  variant?: string;
}

/**
 * The image of an index for `platform` (an exact variant match first, then the same variant by
 * another name, arm64 and arm64/v8; a platform without a variant takes any); an index of one
 * image gives that image whatever its platform. Nested indexes are followed.
 */
export async function imageForPlatform(artifact: Image | Index, platform: PlatformWanted | undefined): Promise<Image> {
  return (await pickForPlatform(artifact, platform)).image;
}

/**
 * imageForPlatform, also giving the platform the index listed the image under (the innermost
 * index's entry, when it names one): a caller that must not take an image for another platform
 * checks it and the image's config (an index of one image gives it whatever its platform).
 */
export async function pickForPlatform(artifact: Image | Index, platform: PlatformWanted | undefined): Promise<{ image: Image; listedAs?: Platform }> {
  let listedAs: Platform | undefined;
  for (let depth = 0; artifact.kind === 'index'; depth++) {
    if (depth > 4) throw new ImageReadError(artifact.source, 'indexes nested more than 4 deep');
    const entries = artifact.manifests;
    if (entries.length === 0) throw new ImageReadError(artifact.source, 'the index lists no manifest');
    let chosen: IndexEntry | undefined;
    if (entries.length === 1) chosen = entries[0];
    else if (!platform) {
      throw new ImageReadError(artifact.source, `the index lists ${entries.length} manifests: ${entries.map(describeEntry).join(', ')}`, 'name a platform (e.g. linux/amd64)');
    } else {
      const wanted = normalizePlatform(platform);
      const matching = entries.filter((e) => {
        if (!e.platform) return false;
        const p = normalizePlatform(e.platform);
        return p.os === wanted.os && p.architecture === wanted.architecture;
      });
      chosen =
        matching.find((e) => (e.platform?.variant ?? '') === (platform.variant ?? '')) ??
        (platform.variant ? matching.find((e) => normalizePlatform(e.platform!).variant === wanted.variant) : matching[0]);
      if (!chosen) throw new NoPlatformError(artifact.source, platform, entries.map(describeEntry));
    }
    if (chosen!.platform) listedAs = chosen!.platform;
    artifact = await chosen!.open();
  }
  return { image: artifact, ...(listedAs ? { listedAs } : {}) };
}

export function formatPlatform(p: { os?: string; architecture?: string; variant?: string | undefined } | undefined): string {
  if (!p) return 'unknown platform';
  return [p.os ?? '?', p.architecture ?? '?', p.variant].filter(Boolean).join('/');
}

function describeEntry(e: IndexEntry): string {
  return e.platform ? formatPlatform(e.platform) : e.descriptor.digest.slice(0, 19);
}

function checkedDescriptor(source: string, d: Descriptor, where: string): CheckedDescriptor {
  if (!isDigest(d.digest)) throw new ImageReadError(source, `${where} digest ${JSON.stringify(d.digest)} is not sha256:<64 lowercase hex>`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw new ImageReadError(source, `${where} size ${JSON.stringify(d.size)} is not a byte count`);
  return d as CheckedDescriptor;
}

/** A zod schema, classic or mini (oci/schemas.ts is zod/mini): what parseDocument needs of it. */
export interface DocumentSchema<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };
}

/** oci/documents-fast.ts's parsers, by the schema each gives the same result as (a map of the lazy schemas: none is made by it). */
const FAST_PARSERS = new Map<unknown, (value: unknown) => unknown>([[ManifestSchema, fast.manifest], [IndexSchema, fast.index], [ImageConfigSchema, fast.imageConfig]]);

export function parseDocument<T>(source: string, what: string, schema: DocumentSchema<T>, bytes: Buffer): T {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new ImageReadError(source, `${what} is not JSON: ${(e as Error).message}`);
  }
  // A valid manifest, index or config without building zod's schemas (oci/documents-fast.ts);
  // zod parses whatever that does not vouch for, so errors are zod's.
  const quick = FAST_PARSERS.get(schema)?.(value);
  if (quick !== undefined && quick !== fast.NO) return quick as T;
  const r = schema.safeParse(value);
  if (!r.success) throw new ImageReadError(source, `${what} is not valid: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** The config's bytes, unchecked: at once when the transport can say it is small, else streamed and capped. */
async function readConfig(min: MinimalImage, digest: Digest): Promise<Buffer> {
  if (min.readBlob && min.blobSize) {
    const size = await min.blobSize(digest);
    if (size !== undefined && size <= MAX_CONFIG_BYTES) return min.readBlob(digest);
  }
  return readCapped(min.openBlob(digest), MAX_CONFIG_BYTES, min.source, `config ${digest}`);
}

/** All of a stream's bytes, or an error once more than `max` arrive (the rest is not read). */
export async function readCapped(stream: Readable, max: number, source: string, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > max) throw new ImageReadError(source, `${what} is larger than ${max} bytes`);
      chunks.push(chunk as Buffer);
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks);
}
