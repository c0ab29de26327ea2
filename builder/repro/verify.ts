import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openArtifact, type OpenImageOptions } from '../transports/open.js';
import { diffArtifacts, type ArtifactDiff } from './diff-artifacts.js';

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

/** Runs one isolated build under `conditions` in `dir` and says the digest it gave (the CLI runs each as a process of its own). */
export type BuildRunner = (conditions: BuildConditions, dir: string, signal?: AbortSignal) => Promise<{ digest: string; output: string; cwd: string; cacheDir: string | undefined }>;

export interface VerifyOptions {
  /** An image to compare one build with instead of building twice. */
  against?: string;
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
  const work = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'imgbuild-verify-'));
  try {
    const conditions = other ? [{ ...BUILD_CONDITIONS[1] }] : BUILD_CONDITIONS;
    const builds: VerifyBuild[] = [];
    for (const [i, c] of conditions.entries()) {
      log(`build ${i + 1}/${conditions.length}: umask ${c.umask}, TZ ${c.tz}, LANG ${c.locale}, ${c.freshCache ? 'empty cache' : 'your cache'}`);
      const dir = join(work, `build-${i + 1}`);
      await mkdir(dir, { recursive: true });
      builds.push({ ...c, ...(await options.build(c, dir, options.signal)) });
      log(`build ${i + 1}/${conditions.length}: ${builds[i]!.digest}`);
    }
    const first = builds[0]!;
    const result: VerifyResult = { reproducible: false, builds, ...(options.keep ? { workDir: work } : {}) };
    if (other) {
      result.against = { source: other.source, digest: other.descriptor.digest };
      result.reproducible = other.descriptor.digest === first.digest;
      if (!result.reproducible) result.diff = await diffArtifacts(other, await openArtifact(`oci:${first.output}`));
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

