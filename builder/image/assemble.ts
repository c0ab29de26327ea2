import { canonicalJson } from '../../oci/canonical-json.js';
import { sha256Digest, type Digest } from '../../oci/digest.js';
import { Annotation, MediaType } from '../../oci/media-types.js';
import type { ContainerConfig, Descriptor, History } from '../../oci/schemas.js';
import type { BlobStore } from '../blobs/blob-store.js';
import type { BuiltImage, ImageLayer } from './types.js';

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

export interface AssembleInput {
  /** Every layer, bottom first: base layers, store layers, the customisation layer. */
  layers: ImageLayer[];
  config: ImageConfigInput;
  name: string;
  /** When absent, derived from the manifest digest (as dockerTools derives a tag from a hash). */
  tag?: string;
}

/**
 * The config and manifest of an image whose layers are already in the store. Both documents are
 * canonical JSON (sorted keys, no white space), so their digests depend on their content only.
 */
export async function assembleImage(input: AssembleInput, store: BlobStore): Promise<BuiltImage> {
  const { layers, config: c } = input;
  const ourLayers = layers.filter((l) => l.reason !== 'base');
  const history: History[] = [
    ...(c.baseHistory ?? []),
    ...ourLayers.map((l) => ({ created: c.created, created_by: `imgbuild: ${l.reason} layer`, comment: historyComment(l) })),
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
  const config = Buffer.from(canonicalJson(configDoc));
  const configDescriptor = { mediaType: MediaType.ociConfig, digest: sha256Digest(config), size: config.length };

  const manifestDoc = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDescriptor,
    layers: layers.map(layerDescriptor),
  };
  const manifest = Buffer.from(canonicalJson(manifestDoc));
  const manifestDescriptor = { mediaType: MediaType.ociManifest, digest: sha256Digest(manifest), size: manifest.length };

  await store.putBytes(config, configDescriptor.digest);
  await store.putBytes(manifest, manifestDescriptor.digest);
  return {
    name: input.name,
    tag: input.tag ?? derivedTag(manifestDescriptor.digest),
    manifest,
    manifestDescriptor,
    config,
    configDescriptor,
    layers,
  };
}

/** A tag that names the content: the first 32 hex digits of the manifest digest. */
export function derivedTag(manifestDigest: Digest): string {
  return manifestDigest.slice('sha256:'.length, 'sha256:'.length + 32);
}

function layerDescriptor(l: ImageLayer): Descriptor {
  const annotations: Record<string, string> = {};
  if (l.reason !== 'base') annotations[Annotation.layerReason] = l.reason;
  if (l.storePaths.length > 0) annotations[Annotation.storePaths] = l.storePaths.join('\n');
  return {
    mediaType: l.mediaType,
    digest: l.digest,
    size: l.size,
    annotations: Object.keys(annotations).length > 0 ? annotations : undefined,
  };
}

function historyComment(l: ImageLayer): string {
  if (l.storePaths.length === 0) return l.reason;
  const names = l.storePaths.map((p) => p.slice(p.lastIndexOf('/') + 1).replace(/^[^-]*-/, ''));
  const shown = names.slice(0, 5).join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}
