import { MediaType } from '../../oci/media-types.js';
import type { ContainerConfig, History } from '../../oci/schemas.js';
import { dirname } from 'node:path';
import { comparePlatforms } from '../../oci/platform.js';
import type { Platform } from '../../oci/schemas.js';
import { BasePlatformError } from '../errors.js';
import { formatPlatform, NoPlatformError, pickForPlatform, requireImage } from '../model/complete.js';
import { imagePlatform } from '../model/image.js';
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

/** How the platform being built was decided, for an error's hint: `elf`, the closure's ELF files say the architecture. */
export interface PlatformReason {
  elf?: boolean;
}

/**
 * The image `fromImage` names, for the spec's platform (of an index, that platform's image). Give
 * `opened` when the artifact was opened already, so it is not read twice. A base for another
 * platform (its config's os/architecture/variant, or the index entry it was listed under) is
 * refused: `BasePlatformError`. A base whose config names no platform is taken, with a warning.
 */
export async function specBase(spec: ResolvedSpec, ctx: Pick<BuildContext, 'registry' | 'warn'>, opened?: Image | Index, reason: PlatformReason = {}): Promise<Image | undefined> {
  if (!spec.fromImage) return undefined;
  const artifact = opened ?? (await openBaseArtifact({ ...spec, fromImage: spec.fromImage }, ctx));
  const wanted = { os: spec.os, architecture: spec.architecture, ...(spec.variant ? { variant: spec.variant } : {}) };
  let picked: Awaited<ReturnType<typeof pickForPlatform>>;
  try {
    picked = await pickForPlatform(artifact, wanted);
  } catch (err) {
    // An index of several images, none for this platform.
    if (err instanceof NoPlatformError) throw basePlatformError(spec, err.listed.join(', '), 'index', reason);
    throw err;
  }
  const base = requireImage(picked.image, 'fromImage');
  checkBasePlatform(spec, base, picked.listedAs, reason, ctx.warn);
  await checkLayerCompression(base);
  return base;
}

/**
 * Refuses a base for another platform than `spec`'s: the index entry it was listed under (when
 * there is one), then its config, which is what the layers are labelled with. An architecture's
 * default variant is the same as none (arm64 is arm64/v8); a spec naming no variant takes any.
 */
function checkBasePlatform(spec: ResolvedSpec, base: Image, listedAs: Platform | undefined, reason: PlatformReason, warn: ((message: string) => void) | undefined): void {
  const wanted = { os: spec.os, architecture: spec.architecture, ...(spec.variant ? { variant: spec.variant } : {}) };
  if (listedAs && comparePlatforms(listedAs, wanted) === 'different') throw basePlatformError(spec, formatPlatform(listedAs), 'entry', reason);
  const config = imagePlatform(base);
  const found = comparePlatforms(config, wanted);
  if (found === 'different') throw basePlatformError(spec, formatPlatform(config), 'config', reason);
  if (found === 'unknown') {
    warn?.(`warning: fromImage ${spec.fromImage}: its config names no platform (os ${JSON.stringify(config.os)}, architecture ${JSON.stringify(config.architecture)}): not checked against ${formatPlatform(wanted)}, the platform being built`);
  }
}

/**
 * The error for a base of another platform, naming the fields of the spec that decide each side.
 * `basePlatform` is what the base's `config` says, the `entry` of an index it was listed under,
 * or (`index`) the platforms an index lists, none of them the one being built.
 */
function basePlatformError(spec: ResolvedSpec, basePlatform: string, said: 'config' | 'entry' | 'index', reason: PlatformReason): BasePlatformError {
  const platform = formatPlatform({ os: spec.os, architecture: spec.architecture, variant: spec.variant });
  const part = spec.part;
  const at = (field: string) => (part ? `platforms[${part.index}].${field}` : field);
  // Where the platform being built comes from.
  const builtFrom = reason.elf
    ? `the closure's ELF files are for ${spec.architecture}`
    : part
      ? `platforms[${part.index}] is ${platform}`
      : spec.architectureGiven
        ? `the spec says \`architecture: ${spec.architecture}\`${spec.variant ? ` and \`variant: ${spec.variant}\`` : ''}`
        : `the spec says \`variant: ${spec.variant}\``;
  const fromField = !part || part.fields.includes('fromImage') ? `\`${at('fromImage')}\`` : `\`fromImage\` (every platform's: give platforms[${part.index}] a \`fromImage\` of its own, or name a multi-platform image holding ${platform})`;
  const base = splitPlatform(basePlatform);
  // What to change on the spec's side instead, when that is the spec's to say (not the ELF files').
  const ours: string[] = [];
  if (base && !reason.elf) {
    if (base.os !== spec.os) ours.push(`\`${at('os')}: ${base.os}\``);
    if (base.architecture !== spec.architecture) ours.push(`\`${at('architecture')}: ${base.architecture}\``);
    if (base.variant && base.variant !== spec.variant) ours.push(`\`${at('variant')}: ${base.variant}\``);
    else if (!base.variant && spec.variant && base.architecture === spec.architecture) ours.push(`no \`${at('variant')}\``);
  }
  return new BasePlatformError(
    spec.fromImage!,
    basePlatform,
    platform,
    said === 'index'
      ? `${spec.file}: fromImage ${spec.fromImage} has no image for ${platform}, the platform being built (${builtFrom}): its index lists ${basePlatform}`
      : `${spec.file}: fromImage ${spec.fromImage} is an image for ${basePlatform} (${said === 'config' ? 'its config says so' : 'its index lists it so'}), not for ${platform}, the platform being built (${builtFrom}): its layers would be labelled for a platform they are not for`,
    `name a base for ${platform} in ${fromField}${ours.length > 0 ? `, or build for the base's platform: ${ours.join(', ')}` : ''}`,
  );
}

/** `linux/arm64/v8` as its parts; undefined for a list of platforms. */
function splitPlatform(text: string): { os: string; architecture: string; variant?: string } | undefined {
  if (text.includes(', ')) return undefined;
  const [os, architecture, variant] = text.split('/');
  return { os: os!, architecture: architecture!, ...(variant ? { variant } : {}) };
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
