import { createHash } from 'node:crypto';
import { layerEntries } from '../transports/layer-files.js';
import pLimit from 'p-limit';
import type { Digest } from '../../oci/digest.js';
import { Annotation } from '../../oci/media-types.js';
import { layerReason } from '../build/assemble.js';
import type { Build } from '../build/build-image.js';
import { ImgbuildError } from '../errors.js';
import { imagePlatform, splitRef, type Image } from '../model/image.js';
import { formatPlatform } from '../model/complete.js';
import type { Layer } from '../model/layer.js';
import { narHashOf } from '../store/nar.js';
import { parseNarHash } from '../store/nar-hash.js';

/** One store path of the image, as the SBOM describes it. */
export interface SbomStorePath {
  path: string;
  /** The NAR hash's sha256, hex; undefined when unknown (an image read back without its SBOM). */
  narHash?: string;
  narSize?: number;
  /** The paths it references (itself too, when it does, as `nix-store -q --references` lists it); undefined when unknown. */
  references?: string[];
}

/** A regular file of the customisation layer. */
export interface SbomFile {
  /** Absolute path in the image: `/etc/passwd`. */
  path: string;
  size: number;
  sha1: string;
  sha256: string;
}

/** Everything an SBOM says, gathered from a build or read back from an image. */
export interface SbomInput {
  image: {
    /** Repository name, as the spec names it (`ghcr.io/acme/app`). */
    name: string;
    tag?: string;
    digest: Digest;
    /** `linux/amd64`. */
    platform: string;
    architecture: string;
  };
  /** RFC 3339, `YYYY-MM-DDThh:mm:ssZ`: the image's `created`. */
  created: string;
  /** The store paths the spec asked for (contents, copyToRoot); undefined when unknown. */
  roots?: string[];
  paths: SbomStorePath[];
  /** The base image (`fromImage`): as the spec names it, and its manifest digest. */
  base?: { name: string; digest: Digest };
  /** Regular files of the customisation layer (files, generated /etc files, the Nix database). */
  files: SbomFile[];
  /** What this SBOM cannot tell, said in the document. */
  unknown: string[];
  tool: { name: string; version: string };
}

/**
 * The SBOM input of a build: its closure (with each path's NAR hash, hashed from the files when
 * the store source gave none), references, the base image and the customisation layer's files.
 */
export async function sbomInputFromBuild(build: Build, tool: SbomInput['tool']): Promise<SbomInput> {
  const { spec, closure, image, base, store } = build;
  const limit = pLimit(2);
  const paths = await Promise.all(
    closure.paths.map((p) =>
      limit(async (): Promise<SbomStorePath> => {
        let hash = p.narHash !== undefined ? parseNarHash(p.narHash) : undefined;
        if (p.narHash !== undefined && !hash) throw new ImgbuildError('sbom', `${p.path}: narHash ${JSON.stringify(p.narHash)} is not a SHA-256 hash`);
        hash ??= parseNarHash((await narHashOf(store.fsPath(p.path))).narHash)!;
        return { path: p.path, narHash: hash.toString('hex'), narSize: p.narSize, references: [...p.references].sort() };
      }),
    ),
  );
  return {
    image: imageFacts(image, spec.name),
    created: spec.created,
    roots: [...new Set([...spec.contents, ...spec.copyToRoot])],
    paths: paths.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    ...(base && spec.fromImage ? { base: { name: spec.fromImage, digest: base.descriptor.digest } } : {}),
    files: await customisationFiles(image),
    unknown: [],
    tool,
  };
}

/**
 * The SBOM input of an image read from disk or a registry (one with no SBOM attached): its store
 * paths from the layers' `dev.imgbuild.store-paths` annotations (an image imgbuild built). Their NAR
 * hashes and references are not in the image's metadata: the SBOM says they are unknown. An image
 * without those annotations (not built by imgbuild) gives an SBOM of the image alone, saying so.
 */
export async function sbomInputFromImage(image: Image, tool: SbomInput['tool']): Promise<SbomInput> {
  const storePaths = [...new Set(image.layers.flatMap((l) => layerReason(l).storePaths))].sort();
  const built = image.layers.some((l) => layerReason(l).reason !== undefined);
  const unknown: string[] = [];
  if (!built) unknown.push('the image was not built by imgbuild (its layers carry no dev.imgbuild annotations): its contents are not listed');
  else unknown.push('read back from the image, not from its build: the store paths come from the layers\' dev.imgbuild.store-paths annotations; their NAR hashes and references are unknown (build with --sbom to attach an exact SBOM)');
  const a = image.manifest.annotations ?? {};
  const baseName = a[Annotation.baseName];
  const baseDigest = a[Annotation.baseDigest];
  if (image.layers.some((l) => layerReason(l).reason === undefined) && !baseDigest) unknown.push('the image has layers of a base image that it does not name (no org.opencontainers.image.base.digest annotation)');
  // A layout's ref is often a bare tag: the name is then the image argument as read (tag and all).
  const named = image.refs[0] ? splitRef(image.refs[0]).name : undefined;
  return {
    image: named ? imageFacts(image, named) : { ...imageFacts(image, image.source), tag: undefined },
    created: normaliseCreated(image.config.created),
    paths: storePaths.map((path) => ({ path })),
    ...(baseDigest ? { base: { name: baseName ?? baseDigest, digest: baseDigest as Digest } } : {}),
    files: built ? await customisationFiles(image) : [],
    unknown,
    tool,
  };
}

function imageFacts(image: Image, name: string): SbomInput['image'] {
  const ref = image.refs[0];
  const tag = ref ? splitRef(ref).tag : undefined;
  const platform = imagePlatform(image);
  return { name, ...(tag ? { tag } : {}), digest: image.descriptor.digest, platform: formatPlatform(platform), architecture: platform.architecture };
}


/** SPDX wants `YYYY-MM-DDThh:mm:ssZ`: a config's `created` in that form (the epoch's second 1 when it has none). */
function normaliseCreated(created: string | undefined): string {
  const ms = created ? Date.parse(created) : NaN;
  return new Date(Number.isFinite(ms) ? Math.floor(ms / 1000) * 1000 : 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The regular files of the image's customisation layer (the top layer imgbuild writes), each hashed; none when it has no such layer. */
export async function customisationFiles(image: Image): Promise<SbomFile[]> {
  const layer = image.layers.find((l) => layerReason(l).reason === 'customisation');
  return layer ? hashLayerFiles(layer) : [];
}

async function hashLayerFiles(layer: Layer): Promise<SbomFile[]> {
  const files: SbomFile[] = [];
  for await (const { entry: h, content } of layerEntries(layer)) {
    if (h.type !== 'file' && h.type !== 'contiguous-file') continue;
    const sha1 = createHash('sha1');
    const sha256 = createHash('sha256');
    let size = 0;
    for await (const c of content) {
      sha1.update(c);
      sha256.update(c);
      size += c.length;
    }
    files.push({ path: `/${h.name.replace(/^(\.\/)+/, '').replace(/^\/+/, '')}`, size, sha1: sha1.digest('hex'), sha256: sha256.digest('hex') });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
