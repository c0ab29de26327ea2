import { MediaType } from '../../oci/media-types.js';
import type { ContainerConfig, History } from '../../oci/schemas.js';
import { dirname } from 'node:path';
import { imageForPlatform, requireImage } from '../model/complete.js';
import { compressionMismatch } from '../model/verify-stream.js';
import type { Image, Index } from '../model/image.js';
import type { ResolvedSpec } from '../spec/types.js';
import { openArtifact } from '../transports/open.js';
import type { BuildContext } from './context.js';
import type { Layer } from '../model/layer.js';

/** What `fromImage` names (any image argument: a layout, an archive, a registry image), opened: an image or an index. */
export function openBaseArtifact(spec: ResolvedSpec & { fromImage: string }, ctx: Pick<BuildContext, 'registry'>): Promise<Image | Index> {
  return openArtifact(spec.fromImage, { cwd: dirname(spec.file), what: 'fromImage', ...(ctx.registry ? { registry: ctx.registry } : {}) });
}

/**
 * The image `fromImage` names, for the spec's platform (of an index, that platform's image). Give
 * `opened` when the artifact was opened already, so it is not read twice.
 */
export async function specBase(spec: ResolvedSpec, ctx: Pick<BuildContext, 'registry'>, opened?: Image | Index): Promise<Image | undefined> {
  if (!spec.fromImage) return undefined;
  const artifact = opened ?? (await openBaseArtifact({ ...spec, fromImage: spec.fromImage }, ctx));
  const base = requireImage(await imageForPlatform(artifact, { os: spec.os, architecture: spec.architecture, ...(spec.variant ? { variant: spec.variant } : {}) }), 'fromImage');
  await checkLayerCompression(base);
  return base;
}

/**
 * A local base's layers are linked into outputs without being decompressed: the first bytes of
 * each are read and checked against the media type's compression, so that a layer
 * labelled tar+gzip holding a plain tar is refused, not copied. A registry base's layers are
 * checked as they are fetched.
 */
async function checkLayerCompression(base: Image): Promise<void> {
  for (const l of base.layers) {
    if (l.location) continue;
    const stream = l.open();
    let head = Buffer.alloc(0);
    try {
      for await (const chunk of stream) {
        head = Buffer.concat([head, (chunk as Buffer).subarray(0, 4)]);
        if (head.length >= 4) break;
      }
    } catch (err) {
      // A damaged blob: said, naming its file, when an output reads it.
      if ((err as { code?: unknown }).code === 'blob-mismatch') continue;
      throw err;
    } finally {
      stream.destroy();
    }
    const mislabelled = compressionMismatch(head, l, base.source);
    if (mislabelled) throw mislabelled;
  }
}

/** Docker layer media types name the same bytes as their OCI twins; our manifest is OCI. */
const ociLayerType: Record<string, string> = {
  [MediaType.dockerLayerGzip]: MediaType.ociLayerGzip,
  [MediaType.dockerLayer]: MediaType.ociLayer,
};

/** A base image's layer as a layer of ours: the same bytes (never recompressed), under the OCI media type, without its annotations. */
export function baseLayer(l: Layer): Layer {
  const { annotations: _, ...rest } = l;
  return { ...rest, mediaType: ociLayerType[l.mediaType] ?? l.mediaType };
}

/**
 * The base's history, or one entry per base layer when it has none (so every layer has one),
 * naming the base as the spec names it (`fromImage`: the same on every machine).
 */
export function baseHistory(base: Image, fromImage: string): History[] {
  const history = base.config.history ?? [];
  if (history.some((h) => !h.empty_layer)) return history;
  return base.layers.map(() => ({ created: base.config.created, created_by: `imgbuild: base layer from ${fromImage}` }));
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
