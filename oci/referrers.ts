import { canonicalJson } from './canonical-json.js';
import { digestHex, sha256Digest, type Digest } from './digest.js';
import { MediaType } from './media-types.js';
import type { Descriptor, Index } from './schemas.js';

// OCI 1.1 artifacts that refer to an image (image-spec manifest.md "Guidelines for Artifact
// Usage", distribution-spec "Listing Referrers"): an image manifest with `artifactType`, a
// `subject` naming the image, the empty config, and the artifact's bytes as its one layer.

/** The empty descriptor's media type and blob (`{}`): the config of an artifact that has none. */
export const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
export const EMPTY_BLOB: Buffer = Buffer.from('{}');
export const EMPTY_DESCRIPTOR = { mediaType: EMPTY_MEDIA_TYPE, digest: sha256Digest(EMPTY_BLOB), size: 2 } as const;

/** A blob of an artifact, held in memory (SBOMs and signatures are documents, not layers). */
export interface ArtifactBlob {
  mediaType: string;
  digest: Digest;
  size: number;
  bytes: Buffer;
}

/** An artifact manifest with its blobs: what a registry or a layout needs to hold it. */
export interface ReferrerArtifact {
  /** The manifest's descriptor as a referrers list gives it: media type, digest, size, artifactType, annotations. */
  descriptor: Descriptor & { digest: Digest; artifactType: string };
  manifestBytes: Buffer;
  /** The subject: the image (manifest) the artifact is about. */
  subject: Descriptor & { digest: Digest };
  /** The empty config, then the artifact's layer. */
  blobs: ArtifactBlob[];
}

export interface ArtifactInput {
  subject: Descriptor & { digest: Digest };
  artifactType: string;
  /** The artifact's content, its one layer. */
  blob: { mediaType: string; bytes: Buffer };
  /** Annotations of the manifest (and so of its entry in a referrers list). */
  annotations?: Record<string, string>;
}

/** The artifact manifest for `input`, as canonical JSON (its digest depends on the content only). */
export function referrerArtifact(input: ArtifactInput): ReferrerArtifact {
  const layer: ArtifactBlob = { mediaType: input.blob.mediaType, digest: sha256Digest(input.blob.bytes), size: input.blob.bytes.length, bytes: input.blob.bytes };
  const subject = { mediaType: input.subject.mediaType, digest: input.subject.digest, size: input.subject.size };
  const annotations = input.annotations && Object.keys(input.annotations).length > 0 ? input.annotations : undefined;
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: input.artifactType,
    config: EMPTY_DESCRIPTOR,
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    subject,
    annotations,
  };
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  return {
    descriptor: { mediaType: MediaType.ociManifest, digest: sha256Digest(manifestBytes), size: manifestBytes.length, artifactType: input.artifactType, ...(annotations ? { annotations } : {}) },
    manifestBytes,
    subject,
    blobs: [{ ...EMPTY_DESCRIPTOR, bytes: EMPTY_BLOB }, layer],
  };
}

/** The referrers tag schema's tag for a subject: `sha256-<hex>` (distribution-spec 1.1). */
export function referrersTag(subject: Digest): string {
  return `sha256-${digestHex(subject)}`;
}

/** Whether a tag is a referrers tag (`<alg>-<hex>`), not an image's own tag. */
export function isReferrersTag(tag: string): boolean {
  return /^sha256-[0-9a-f]{64}$/.test(tag);
}

/**
 * A referrers list with `add` merged into `existing` (an index under the referrers tag, or none):
 * entries already listed (by digest) are kept as they are and not added twice, so pushing the same
 * artifact again changes nothing. New entries are appended in the order given. `changed` says
 * whether the list differs from `existing`.
 */
export function mergeReferrersIndex(existing: Index | undefined, add: readonly Descriptor[]): { bytes: Buffer; index: Index; changed: boolean } {
  const manifests: Descriptor[] = [...(existing?.manifests ?? [])];
  let changed = existing === undefined;
  for (const d of add) {
    if (manifests.some((m) => m.digest === d.digest)) continue;
    manifests.push(d);
    changed = true;
  }
  const index: Index = { ...(existing ?? {}), schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  return { bytes: Buffer.from(canonicalJson(index)), index, changed };
}
