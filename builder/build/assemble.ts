import { canonicalJson } from '../../oci/canonical-json.js';
import { sha256Digest, type Digest } from '../../oci/digest.js';
import { Annotation, MediaType } from '../../oci/media-types.js';
import type { ContainerConfig, History, ImageConfig, Manifest } from '../../oci/schemas.js';
import type { Image } from '../model/image.js';
import { layerDescriptor, type Layer } from '../model/layer.js';

export interface ImageConfigInput {
  architecture: string;
  os: string;
  variant?: string;
  /** RFC 3339 date written as the config's and every history entry's `created`. */
  created: string;
  config?: ContainerConfig;
  /** History of base-image layers, kept before ours (fromImage). */
  baseHistory?: History[];
}

/** A layer of the image being assembled, with why it is there. */
export interface AssembledLayer {
  layer: Layer;
  /** `popularity`, `auto`, `explicit`, `carried-over`, `customisation`, `base`, ... */
  reason: string;
  /** Store paths in the layer (empty for the customisation layer and base layers). */
  storePaths: readonly string[];
}

export interface AssembleInput {
  /** Every layer, bottom first: base layers, store layers, the customisation layer. */
  layers: AssembledLayer[];
  config: ImageConfigInput;
  name: string;
  /** When absent, derived from the manifest digest (as dockerTools derives a tag from a hash). */
  tag?: string;
  source: string;
  /** Manifest annotations; absent: none (the manifest has no `annotations` key). */
  annotations?: Record<string, string>;
}

/**
 * The config and manifest of an image over its layers. Both documents are canonical JSON (sorted
 * keys, no white space), so their digests depend on their content only. Each layer but a base
 * layer is annotated with why it is there and the store paths it holds (what `inspect`,
 * `--previous` and the SBOM read back).
 */
export function assembleImage(input: AssembleInput): Image {
  const { config: c } = input;
  const layers = input.layers.map((l) => annotated(l));
  const ours = input.layers.filter((l) => l.reason !== 'base');
  const history: History[] = [
    ...(c.baseHistory ?? []),
    ...ours.map((l) => ({ created: c.created, created_by: `imgbuild: ${l.reason} layer`, comment: historyComment(l) })),
  ];
  const configDoc = {
    architecture: c.architecture,
    os: c.os,
    variant: c.variant,
    created: c.created,
    config: c.config ?? {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history,
  };
  const configBytes = Buffer.from(canonicalJson(configDoc));
  const configDescriptor = { mediaType: MediaType.ociConfig, digest: sha256Digest(configBytes), size: configBytes.length };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDescriptor,
    layers: layers.map(layerDescriptor),
    ...(input.annotations ? { annotations: input.annotations } : {}),
  };
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  const descriptor = { mediaType: MediaType.ociManifest, digest: sha256Digest(manifestBytes), size: manifestBytes.length };
  const tag = input.tag ?? derivedTag(descriptor.digest);
  return {
    kind: 'image',
    source: input.source,
    descriptor,
    manifestBytes,
    manifest,
    configDescriptor,
    configBytes,
    config: JSON.parse(configBytes.toString('utf8')) as ImageConfig,
    layers,
    refs: [`${input.name}:${tag}`],
  };
}

/** A tag that names the content: the first 32 hex digits of the manifest digest. */
export function derivedTag(manifestDigest: Digest): string {
  return manifestDigest.slice('sha256:'.length, 'sha256:'.length + 32);
}

/** The layer with its reason and store paths as annotations (a base layer keeps none: it is reused as it is). */
function annotated({ layer, reason, storePaths }: AssembledLayer): Layer {
  const annotations: Record<string, string> = {};
  if (reason !== 'base') annotations[Annotation.layerReason] = reason;
  if (storePaths.length > 0) annotations[Annotation.storePaths] = storePaths.join('\n');
  const { annotations: _, ...rest } = layer;
  return Object.keys(annotations).length > 0 ? { ...rest, annotations } : rest;
}

function historyComment(l: AssembledLayer): string {
  if (l.storePaths.length === 0) return l.reason;
  // The names of the first five only (a layer can hold tens of thousands of paths).
  const shown = l.storePaths
    .slice(0, 5)
    .map((p) => p.slice(p.lastIndexOf('/') + 1).replace(/^[^-]*-/, ''))
    .join(', ');
  return l.storePaths.length > 5 ? `${shown} and ${l.storePaths.length - 5} more` : shown;
}

/** Why a layer of an image is there, and its store paths, read back from its annotations. */
export function layerReason(l: Layer): { reason?: string; storePaths: string[] } {
  const reason = l.annotations?.[Annotation.layerReason];
  const paths = l.annotations?.[Annotation.storePaths];
  return { ...(reason ? { reason } : {}), storePaths: paths ? paths.split('\n') : [] };
}
