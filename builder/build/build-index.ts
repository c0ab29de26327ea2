import { canonicalJson } from '../../oci/canonical-json.js';
import { sha256Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { Platform } from '../../oci/schemas.js';
import { ImgbuildError } from '../errors.js';
import { formatPlatform } from '../model/complete.js';
import type { Image, Index, IndexEntry } from '../model/image.js';
import { ARCHITECTURE_ALIASES, GO_ARCHITECTURES, GO_OSES } from '../spec/platform.js';
import type { ResolvedSpec } from '../spec/types.js';
import { derivedTag } from './assemble.js';
import { indexAnnotations } from './annotations.js';
import { buildImage, type Build, type BuildOptions } from './build-image.js';
import type { BuildContext } from './context.js';

/** An image's platform as an index lists it. */
export function specPlatform(spec: ResolvedSpec): Platform {
  return { architecture: spec.architecture, os: spec.os, ...(spec.variant ? { variant: spec.variant } : {}) };
}

/** `linux/arm64/v8`. */
export function platformName(p: { os: string; architecture: string; variant?: string | undefined }): string {
  return formatPlatform(p);
}

/** `--platform` text (`linux/arm64`, `linux/arm/v7`, or `arm64` for linux) as a platform. */
export function parsePlatform(text: string): { os: string; architecture: string; variant?: string } {
  const parts = text.split('/');
  if (parts.length > 3 || parts.some((p) => !/^[a-z0-9][a-z0-9.]*$/.test(p))) {
    throw new ImgbuildError('usage', `--platform ${JSON.stringify(text)} is not a platform`, 'write os/architecture[/variant], e.g. --platform linux/arm64');
  }
  if (parts.length === 1) return { os: 'linux', architecture: parts[0]! };
  return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
}

/** Whether `p` is the platform `wanted` names (a variant only matters when `wanted` gives one). */
export function platformMatches(p: { os: string; architecture: string; variant?: string | undefined }, wanted: { os: string; architecture: string; variant?: string }): boolean {
  return p.os === wanted.os && p.architecture === wanted.architecture && (wanted.variant === undefined || p.variant === wanted.variant);
}

/**
 * The platforms a build makes: each of the spec's (a single-platform spec has one), or those
 * `wanted` names (`--platform`), in the spec's order. A wanted platform the spec lacks is an error.
 */
export function selectPlatforms(spec: ResolvedSpec, wanted: readonly string[] = []): ResolvedSpec[] {
  const all = spec.platforms ?? [spec];
  if (wanted.length === 0) return all;
  const asked = wanted.map(parsePlatform);
  for (const [i, w] of asked.entries()) {
    const notGo = notGoNames(w);
    if (notGo) throw new ImgbuildError('usage', `--platform ${JSON.stringify(wanted[i])} is not a platform: ${notGo}`, `write os/arch[/variant] with Go's names, e.g. --platform linux/arm64 (the spec builds ${all.map((s) => platformName(s)).join(', ')})`);
    if (!all.some((s) => platformMatches(s, w))) {
      throw new ImgbuildError('usage', `--platform ${wanted[i]}: the spec builds ${all.map((s) => platformName(s)).join(', ')}`, `pick one of them, or add it to the spec's platforms`);
    }
  }
  return all.filter((s) => asked.some((w) => platformMatches(s, w)));
}

/**
 * Why a platform is not in Go's names, the only ones a spec's platforms have (spec/schema.ts), so
 * that a `--platform` naming another is said to be no platform rather than one the spec lacks.
 */
function notGoNames(p: { os: string; architecture: string }): string | undefined {
  if (!(GO_OSES as readonly string[]).includes(p.os)) return `"${p.os}" is not a Go OS name`;
  if ((GO_ARCHITECTURES as readonly string[]).includes(p.architecture)) return undefined;
  const alias = ARCHITECTURE_ALIASES[p.architecture];
  return `"${p.architecture}" is not a Go architecture name${alias ? `; did you mean "${alias}"?` : ''}`;
}

export interface IndexBuild {
  spec: ResolvedSpec;
  index: Index;
  /** One build per platform, in the index's order. */
  builds: Build[];
}

/**
 * A multi-platform build: each platform's image (one after the other, sharing the cache, so a
 * layer two platforms share is made once), then an OCI image index over them.
 */
export interface IndexBuildOptions {
  /** Build only these platforms (`--platform` text). */
  platforms?: readonly string[];
  /** Each platform's previous store layers (stable layering), e.g. from that platform's image of an earlier index. */
  previous?: (platform: ResolvedSpec) => Promise<string[][] | undefined>;
  /** Follow this plan (`plan --platform <p> --json` output): only when one platform is built, the one it was made for. */
  plan?: BuildOptions['plan'];
}

export async function buildIndex(spec: ResolvedSpec, ctx: BuildContext = {}, options: IndexBuildOptions = {}): Promise<IndexBuild> {
  const builds: Build[] = [];
  const selected = selectPlatforms(spec, options.platforms);
  // A plan is one image's: which of several it would be cannot be told.
  if (options.plan && selected.length !== 1) throw new ImgbuildError('usage', `--plan follows the plan of one platform, and this build makes ${selected.map((p) => platformName(p)).join(', ')}`, 'pick the platform the plan was made for with --platform (imgbuild plan --platform <os/arch> --json writes one)');
  for (const platformSpec of selected) {
    const platform = platformName(platformSpec);
    const onEvent = ctx.onEvent;
    const previous = await options.previous?.(platformSpec);
    const buildOptions: BuildOptions = { ...(previous ? { previous } : {}), ...(options.plan ? { plan: options.plan } : {}) };
    builds.push(await buildImage(platformSpec, { ...ctx, ...(onEvent ? { onEvent: (e) => onEvent({ ...e, platform }) } : {}) }, buildOptions));
  }
  const annotations = indexAnnotations(spec);
  const index = assembleIndex(builds.map((b) => ({ image: b.image, platform: specPlatform(b.spec) })), { name: spec.name, tag: spec.tag, source: `build of ${spec.file}`, ...(annotations ? { annotations } : {}) });
  return { spec, index, builds };
}

/**
 * An OCI image index over images, each with its platform, as canonical JSON (its digest depends
 * only on the images and platforms). Tagged `tag`, or a tag derived from its digest.
 */
export function assembleIndex(entries: { image: Image; platform: Platform }[], naming: { name: string; tag: string | undefined; source: string; annotations?: Record<string, string> }): Index {
  const doc = {
    schemaVersion: 2 as const,
    mediaType: MediaType.ociIndex,
    manifests: entries.map(({ image, platform }) => ({ ...image.descriptor, platform })),
    ...(naming.annotations ? { annotations: naming.annotations } : {}),
  };
  const bytes = Buffer.from(canonicalJson(doc));
  const descriptor = { mediaType: MediaType.ociIndex, digest: sha256Digest(bytes), size: bytes.length };
  const manifests = entries.map(({ image, platform }): IndexEntry => ({ descriptor: image.descriptor, platform, open: async () => image }));
  const tag = naming.tag ?? derivedTag(descriptor.digest);
  return { kind: 'index', source: naming.source, descriptor, bytes, index: doc, manifests, refs: [`${naming.name}:${tag}`] };
}
