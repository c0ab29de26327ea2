import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Annotation } from '../../oci/media-types.js';
import type { Image, Index } from '../model/image.js';
import { openArtifact, type OpenImageOptions } from '../transports/open.js';
import { diffArtifacts, type ArtifactDiff } from './diff-artifacts.js';
import { checkBlobs, describeBlobCheck } from './check-blobs.js';

/** The conditions of one isolated build: each differs between the two builds of a verify. */
export interface BuildConditions {
  umask: string;
  tz: string;
  locale: string;
  /** Fresh cache under the temp dir, or the user's (IMGBUILD_CACHE_DIR / XDG). */
  freshCache: boolean;
}

/** Two builds as unlike as one machine allows: another umask, time zone, locale, cwd and cache. */
export const BUILD_CONDITIONS: readonly [BuildConditions, BuildConditions] = [
  { umask: '022', tz: 'UTC', locale: 'C', freshCache: false },
  { umask: '077', tz: 'Pacific/Chatham', locale: 'de_DE.UTF-8', freshCache: true },
];

/**
 * Runs one isolated build under `conditions` in `dir` and says the digest it gave (the CLI runs
 * each as a process of its own). `previous`: the store layers to carry over (stable layering), as
 * `build --previous` would read them.
 */
export type BuildRunner = (conditions: BuildConditions, dir: string, signal?: AbortSignal, previous?: string[][]) => Promise<{ digest: string; output: string; cwd: string; cacheDir: string | undefined }>;

/** Where the layers a verify's builds carry over came from. */
export interface VerifyPrevious {
  /** `--previous` (the image given), or `against` (the image compared with recorded what it carried over). */
  from: 'previous' | 'against';
  source: string;
  /** How many store layers the builds are given to carry over. */
  layers: number;
}

export interface VerifyOptions {
  /** An image to compare one build with instead of building twice. */
  against?: string;
  /** `--previous`: the store layers of the image the builds carry layers over from, and its name. */
  previous?: { source: string; layers: string[][] };
  /** Keep the temp dirs (builds, caches) and report where they are. */
  keep?: boolean;
  /** Makes each build. */
  build: BuildRunner;
  /** Where the temp dirs go (default the OS temp dir). */
  tmpDir?: string;
  signal?: AbortSignal;
  /** Opens `--against` images (a registry image needs `registry`). */
  open?: OpenImageOptions;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface VerifyBuild extends BuildConditions {
  cwd: string;
  output: string;
  cacheDir: string | undefined;
  digest: string;
}

export interface VerifyResult {
  reproducible: boolean;
  builds: VerifyBuild[];
  /** The image compared with, when `against` was given. */
  against?: { source: string; digest: string };
  /** Where the builds are, when kept. */
  workDir?: string;
  /** Set when the digests differ. */
  diff?: ArtifactDiff;
  /** Set when the builds carried layers over (stable layering). */
  previous?: VerifyPrevious;
  /** How the comparison was made, when that needs saying (a docker-archive, how blobs were checked). */
  notes?: string[];
}

/**
 * What a stable-layered image carried over, from its own layer annotations: a build given
 * `--previous` marks the layers it kept `carried-over` and the rest of its store layers `new`.
 * Given exactly the carried-over layers as `previous`, the planner keeps them all again (each is
 * still whole, and they fit: they did before) and lays the rest out as it did, so the rebuild
 * has the same layers. Undefined for an image built without `--previous` (no layer says either).
 */
export function carriedOverLayers(artifact: Image | Index): string[][] | undefined {
  if (artifact.kind !== 'image') return undefined;
  const reasons = artifact.manifest.layers.map((l) => l.annotations?.[Annotation.layerReason]);
  if (!reasons.some((r) => r === 'carried-over' || r === 'new')) return undefined;
  return artifact.manifest.layers
    .filter((l) => l.annotations?.[Annotation.layerReason] === 'carried-over')
    .map((l) => (l.annotations?.[Annotation.storePaths] ?? '').split('\n').filter((p) => p !== ''));
}

/**
 * Build a spec twice, each time with `options.build` (the CLI: a process of its own) in its own temp dir and
 * under other conditions (umask, TZ, locale, cwd; the second with an empty cache), and compare the
 * manifest digests; with `against`, build once (fresh cache) and compare with that image. When
 * the digests differ, the result carries the full diff of the two images.
 */
export async function verifySpec(options: VerifyOptions): Promise<VerifyResult> {
  const log = options.log ?? (() => {});
  // Open the image to compare with first: a wrong name fails before minutes of building.
  const other = options.against ? await openArtifact(options.against, options.open) : undefined;
  // An image built with --previous is rebuilt carrying over what it carried over (unless
  // --previous names the image to carry over from).
  const derived = other && !options.previous ? carriedOverLayers(other) : undefined;
  const previous = options.previous?.layers ?? derived;
  const previousInfo: VerifyPrevious | undefined = options.previous
    ? { from: 'previous', source: options.previous.source, layers: options.previous.layers.length }
    : derived && other
      ? { from: 'against', source: other.source, layers: derived.length }
      : undefined;
  if (previousInfo?.from === 'against') log(`${previousInfo.source} was built with --previous: the builds carry over its ${previousInfo.layers} carried-over layer(s)`);
  const work = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'imgbuild-verify-'));
  try {
    const conditions = other ? [{ ...BUILD_CONDITIONS[1] }] : BUILD_CONDITIONS;
    const builds: VerifyBuild[] = [];
    for (const [i, c] of conditions.entries()) {
      log(`build ${i + 1}/${conditions.length}: umask ${c.umask}, TZ ${c.tz}, LANG ${c.locale}, ${c.freshCache ? 'empty cache' : 'your cache'}`);
      const dir = join(work, `build-${i + 1}`);
      await mkdir(dir, { recursive: true });
      builds.push({ ...c, ...(await options.build(c, dir, options.signal, previous)) });
      log(`build ${i + 1}/${conditions.length}: ${builds[i]!.digest}`);
    }
    const first = builds[0]!;
    const result: VerifyResult = { reproducible: false, builds, ...(options.keep ? { workDir: work } : {}), ...(previousInfo ? { previous: previousInfo } : {}) };
    if (other) {
      result.against = { source: other.source, digest: other.descriptor.digest };
      const notes: string[] = [];
      let same = other.descriptor.digest === first.digest;
      let built: Image | Index | undefined;
      if (!same && isReconstructed(other)) {
        // A docker-archive holds no manifest: the one read is reconstructed, without the build's
        // annotations. Compare what it does hold: the config and the layers.
        built = await openArtifact(`oci:${first.output}`);
        same = built.kind === 'image' && sameConfigAndLayers(other as Image, built);
        notes.push(`${other.source}: a docker-archive holds no manifest (the one read is reconstructed): compared its config digest and its layers' digests, sizes and diff_ids; layer annotations are not comparable`);
      }
      if (same) {
        // The same digests are the same image only when the blobs hold what the digests say.
        notes.push(describeBlobCheck(await checkBlobs(other)));
      }
      result.reproducible = same;
      if (notes.length) result.notes = notes;
      if (!result.reproducible) result.diff = await diffArtifacts(other, built ?? (await openArtifact(`oci:${first.output}`)));
    } else {
      const second = builds[1]!;
      result.reproducible = first.digest === second.digest;
      if (!result.reproducible) result.diff = await diffArtifacts(await openArtifact(`oci:${first.output}`), await openArtifact(`oci:${second.output}`));
    }
    return result;
  } finally {
    if (!options.keep) await rm(work, { recursive: true, force: true });
  }
}


/** Whether the artifact is a docker-archive's image, whose manifest is reconstructed. */
function isReconstructed(a: Image | Index): boolean {
  return a.kind === 'image' && a.source.startsWith('docker-archive:');
}

/** The same config and the same layer blobs (digest, size, diff_id), in the same order. */
function sameConfigAndLayers(a: Image, b: Image): boolean {
  if (a.configDescriptor.digest !== b.configDescriptor.digest || a.layers.length !== b.layers.length) return false;
  return a.layers.every((l, i) => {
    const m = b.layers[i]!;
    return l.digest === m.digest && l.size === m.size && l.diffId === m.diffId;
  });
}
