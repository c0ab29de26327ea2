import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { DigestingStream, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import type { ContainerConfig, Descriptor, ImageConfig } from '../oci/schemas.js';
import type { RegistryClient } from '../registry-client/index.js';
import type { BlobStore } from './blobs/blob-store.js';
import { ImgbuildError } from './errors.js';
import type { ImageLayer } from './image/types.js';
import { openImage } from './input/open-image.js';

/** The image a spec builds on (`fromImage`): its layers, reused unchanged, and its config. */
export interface BaseImage {
  /** What `fromImage` named, for messages. */
  source: string;
  layers: ImageLayer[];
  config: ImageConfig;
  /** For a registry base: its repository, so a push to the same registry can mount its layers. */
  registry?: { registry: string; repository: string };
}

export interface BaseImageOptions {
  blobs: BlobStore;
  platform: { os: string; architecture: string; variant?: string };
  /** Needed when `fromImage` is a registry reference. */
  client?: () => Promise<RegistryClient>;
}

/**
 * Resolve `fromImage`: a local OCI layout, OCI archive or docker-archive (as dockerTools takes an
 * image tarball), or else a registry reference pulled into the blob store. Layers keep their
 * digests: nothing is recompressed.
 */
export async function loadBaseImage(fromImage: string, options: BaseImageOptions): Promise<BaseImage> {
  if (await stat(fromImage).then(() => true, () => false)) return loadLocalBase(fromImage, options.blobs);
  if (!options.client) throw new ImgbuildError('base-image', `fromImage ${fromImage}: no such file, and no registry client to pull it`);
  // Loaded here so that builds without a registry base never load the HTTP client.
  const { parseReference, pullImage } = await import('../registry-client/index.js');
  const ref = parseReference(fromImage);
  const client = await options.client();
  const pulled = await pullImage(client, ref, { blobDir: options.blobs.root, platform: options.platform });
  return {
    source: fromImage,
    layers: baseLayers(pulled.layers, pulled.config),
    config: pulled.config,
    registry: { registry: ref.registry, repository: ref.repository },
  };
}

async function loadLocalBase(path: string, blobs: BlobStore): Promise<BaseImage> {
  const img = await openImage(path);
  for (const layer of img.manifest.layers) {
    const digest = layer.digest as Digest;
    if (await blobs.has(digest)) continue;
    const temp = await blobs.createTemp();
    const hasher = new DigestingStream();
    try {
      await pipeline(img.openBlob(digest), hasher, temp.stream);
      if (hasher.digest() !== digest) throw new ImgbuildError('base-image', `${img.source}: layer ${digest} has digest ${hasher.digest()}`);
      await blobs.commit(temp.path, digest);
    } catch (e) {
      await blobs.discard(temp.path);
      throw e;
    }
  }
  return { source: img.source, layers: baseLayers(img.manifest.layers, img.config), config: img.config };
}

/** Docker layer media types name the same bytes as their OCI twins; our manifest is OCI. */
const ociLayerType: Record<string, string> = {
  [MediaType.dockerLayerGzip]: MediaType.ociLayerGzip,
  [MediaType.dockerLayer]: MediaType.ociLayer,
};

function baseLayers(layers: Descriptor[], config: ImageConfig): ImageLayer[] {
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== layers.length) {
    throw new ImgbuildError('base-image', `base image has ${layers.length} layers but ${diffIds.length} diff_ids in its config`);
  }
  return layers.map((l, i) => ({
    digest: l.digest as Digest,
    diffId: diffIds[i] as Digest,
    size: l.size,
    // Unknown until decompressed; nothing downstream needs it for a reused layer.
    uncompressedSize: 0,
    mediaType: ociLayerType[l.mediaType] ?? l.mediaType,
    storePaths: [],
    reason: 'base',
  }));
}

/**
 * The container config of an image built on a base, as dockerTools inherits it: `Env` merged by
 * variable name with the spec's values winning (base order kept, new names appended), object
 * fields (Labels, ExposedPorts, Volumes) merged the same way, any other field the spec sets
 * replaces the base's.
 */
export function mergeConfig(base: ContainerConfig | undefined, spec: ContainerConfig): ContainerConfig {
  const merged: ContainerConfig = { ...(base ?? {}) };
  for (const [key, value] of Object.entries(spec)) {
    if (value === undefined) continue;
    (merged as Record<string, unknown>)[key] = value;
  }
  merged.Env = mergeEnv(base?.Env ?? [], spec.Env ?? []);
  if (merged.Env.length === 0) delete merged.Env;
  for (const key of ['Labels', 'ExposedPorts', 'Volumes'] as const) {
    const b = base?.[key];
    const s = spec[key];
    if (b || s) (merged as Record<string, unknown>)[key] = { ...(b ?? {}), ...(s ?? {}) };
  }
  return merged;
}

function mergeEnv(base: string[], spec: string[]): string[] {
  const name = (e: string) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);
  const out = new Map<string, string>();
  for (const e of [...base, ...spec]) out.set(name(e), e);
  return [...out.values()];
}
