import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import type { Descriptor, ImageConfig, Index as IndexDocument, Manifest, Platform } from '../../oci/schemas.js';
import type { BlobLocation, Layer } from './layer.js';
import type { ReferrerArtifact } from '../../oci/referrers.js';

/** A descriptor whose digest has been checked to be `sha256:<64 hex>`. */
export type CheckedDescriptor = Descriptor & { digest: Digest };

/**
 * An image: its manifest and config, both as the exact bytes their digests name and parsed, and
 * its layers, bottom first. Built, read from disk or from a registry: every command and publisher
 * takes this one shape.
 */
export interface Image {
  readonly kind: 'image';
  /** What it was read from or made by, for messages: `oci:./hello.oci`, `docker://host/repo@sha256:…`, `build of ./image.ts`. */
  readonly source: string;
  /** The manifest's descriptor: media type, digest, size. */
  readonly descriptor: CheckedDescriptor;
  readonly manifestBytes: Buffer;
  readonly manifest: Manifest;
  readonly configDescriptor: CheckedDescriptor;
  readonly configBytes: Buffer;
  readonly config: ImageConfig;
  readonly layers: readonly Layer[];
  /**
   * Names the image carries, `name:tag` or a bare tag: an OCI layout's ref name, a
   * docker-archive's RepoTags, a build's spec name and tag. Outputs write the first one.
   */
  readonly refs: readonly string[];
  /** Where a registry holds the image's blobs (a registry image): a push to that registry mounts them. */
  readonly location?: BlobLocation;
  /**
   * Set when the manifest is an artifact, not an image (an SBOM, a signature: a manifest with
   * `artifactType`, or a config that is not an image config): the manifest's `artifactType`, else
   * its config's media type. An artifact has no image config: `config` is then ARTIFACT_CONFIG
   * (no platform, no diff_ids; `configBytes` are its config blob, checked), and its layers are
   * blobs, not filesystem layers (each `diffId` is its digest). It can be inspected, copied and
   * pushed; a use that needs an image (a base, a diff, an index entry) refuses it (`requireImage`).
   */
  readonly artifactType?: string;
  /**
   * The artifacts that refer to this image where it was read (an OCI layout's SBOMs, kept as
   * layout-referrers.ts says), read when asked; absent where there are none to carry (a build, a
   * docker-archive, a registry image). A push to a registry carries them along.
   */
  readonly referrers?: () => Promise<readonly ReferrerArtifact[]>;
}

/** The `config` of an artifact (Image.artifactType): it has no image config, so no platform and no diff_ids. */
export const ARTIFACT_CONFIG: ImageConfig = Object.freeze({ architecture: '', os: '', rootfs: Object.freeze({ type: 'layers' as const, diff_ids: [] }) }) as ImageConfig;

/** One entry of an index: a child manifest, with the platform it is for, opened on demand. */
export interface IndexEntry {
  readonly descriptor: CheckedDescriptor;
  readonly platform?: Platform;
  open(): Promise<Image | Index>;
}

/** An image index (a multi-platform image): its exact bytes, and its child manifests. */
export interface Index {
  readonly kind: 'index';
  readonly source: string;
  readonly descriptor: CheckedDescriptor;
  readonly bytes: Buffer;
  readonly index: IndexDocument;
  readonly manifests: readonly IndexEntry[];
  readonly refs: readonly string[];
  /** The artifacts that refer to the index itself where it was read (see Image.referrers). */
  readonly referrers?: () => Promise<readonly ReferrerArtifact[]>;
}

/** The platform an image's config names, as an index lists it (no `variant` key when it has none). */
export function imagePlatform(image: Image): { os: string; architecture: string; variant?: string } {
  const { os, architecture, variant } = image.config;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** A config or layer blob of `image` as a stream (the config from its bytes). */
export function openImageBlob(image: Image, digest: string): Readable | undefined {
  if (digest === image.configDescriptor.digest) {
    return bytesStream(image.configBytes);
  }
  return image.layers.find((l) => l.digest === digest)?.open();
}


/** A stream of bytes held in memory (configs and manifests: small documents). */
export function bytesStream(bytes: Buffer): Readable {
  return Readable.from([bytes], { objectMode: false });
}

/** `name:tag` split at the tag's colon (the one after the last slash); a bare tag has no name. */
export function splitRef(ref: string): { name?: string; tag: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  if (slash < 0 && !ref.includes(':')) return { tag: ref };
  return { name: ref, tag: 'latest' };
}
