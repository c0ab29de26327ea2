import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ImgbuildError } from '../errors.js';
import { openImage } from '../input/open-image.js';
import { diffImages, type ImageDiff } from './diff.js';
import { openImageSource, type OpenSourceOptions } from './image-source.js';

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

export interface VerifyOptions {
  /** The spec file or directory, as the user named it. */
  spec: string;
  /** An image to compare one build with instead of building twice. */
  against?: string;
  /** More arguments for each `imgbuild build` (store and registry flags), paths made absolute. */
  buildArgs?: string[];
  /** Keep the temp dirs (builds, caches) and report where they are. */
  keep?: boolean;
  /** The CLI to run builds with: node binary and script (default: this process's). */
  node?: string;
  cli?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Opens `--against` images (registry refs need a remote opener). */
  open?: OpenSourceOptions;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface VerifyBuild extends BuildConditions {
  cwd: string;
  output: string;
  cacheDir: string | undefined;
  manifestDigest: string;
}

export interface VerifyResult {
  reproducible: boolean;
  builds: VerifyBuild[];
  /** The image compared with, when `against` was given. */
  against?: { source: string; manifestDigest: string };
  /** Where the builds are, when kept. */
  workDir?: string;
  /** Set when the digests differ. */
  diff?: ImageDiff;
}

/**
 * Build a spec twice, each time as a separate `imgbuild build` process in its own temp dir and
 * under other conditions (umask, TZ, locale, cwd; the second with an empty cache), and compare the
 * manifest digests; with `against`, build once (fresh cache) and compare with that image. When
 * the digests differ, the result carries the full diff of the two images.
 */
export async function verifySpec(options: VerifyOptions): Promise<VerifyResult> {
  const log = options.log ?? (() => {});
  // Open the image to compare with first: a wrong name fails before minutes of building.
  const other = options.against ? await openImageSource(options.against, options.open) : undefined;
  const work = await mkdtemp(join(tmpdir(), 'imgbuild-verify-'));
  try {
    const conditions = other ? [{ ...BUILD_CONDITIONS[1] }] : BUILD_CONDITIONS;
    const builds: VerifyBuild[] = [];
    for (const [i, c] of conditions.entries()) {
      log(`build ${i + 1}/${conditions.length}: umask ${c.umask}, TZ ${c.tz}, LANG ${c.locale}, ${c.freshCache ? 'empty cache' : 'your cache'}`);
      builds.push(await buildOnce(options, c, join(work, `build-${i + 1}`)));
      log(`build ${i + 1}/${conditions.length}: ${builds[i]!.manifestDigest}`);
    }
    const first = builds[0]!;
    const result: VerifyResult = { reproducible: false, builds, ...(options.keep ? { workDir: work } : {}) };
    if (other) {
      result.against = { source: other.source, manifestDigest: other.manifestDigest };
      result.reproducible = other.manifestDigest === first.manifestDigest;
      if (!result.reproducible) result.diff = await diffImages(other, await openImage(first.output));
    } else {
      const second = builds[1]!;
      result.reproducible = first.manifestDigest === second.manifestDigest;
      if (!result.reproducible) result.diff = await diffImages(await openImage(first.output), await openImage(second.output));
    }
    return result;
  } finally {
    if (!options.keep) await rm(work, { recursive: true, force: true });
  }
}

async function buildOnce(options: VerifyOptions, c: BuildConditions, dir: string): Promise<VerifyBuild> {
  const cwd = join(dir, 'cwd');
  await mkdir(cwd, { recursive: true });
  const cacheDir = c.freshCache ? join(dir, 'cache') : undefined;
  const output = join(dir, 'image.oci');
  const node = options.node ?? process.execPath;
  const cli = options.cli ?? process.argv[1];
  if (!cli) throw new ImgbuildError('verify', 'cannot tell which imgbuild CLI to run the builds with');
  const args = [node, resolve(cli), 'build', resolve(options.spec), '-o', output, '--json'];
  args.push(...(options.buildArgs ?? []));
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), TZ: c.tz, LANG: c.locale, LC_ALL: c.locale };
  if (cacheDir) env.IMGBUILD_CACHE_DIR = cacheDir;
  // Node cannot set a child's umask: a shell sets it, then becomes the build.
  const r = await run('/bin/sh', ['-c', `umask ${c.umask} && exec "$@"`, 'sh', ...args], cwd, env, options.signal);
  if (r.code !== 0) {
    throw new ImgbuildError('verify', `the build (umask ${c.umask}, TZ ${c.tz}) failed with exit code ${r.code ?? r.signal}:\n${r.stderr.trimEnd()}`);
  }
  let manifestDigest: string;
  try {
    manifestDigest = (JSON.parse(r.stdout) as { manifestDigest: string }).manifestDigest;
  } catch {
    throw new ImgbuildError('verify', `the build printed no JSON summary: ${r.stdout.slice(0, 200)}`);
  }
  return { ...c, cwd, output, cacheDir, manifestDigest };
}

/** After Ctrl-C, how long a build gets to clean up its temp files before it is killed. */
const KILL_GRACE_MS = 2000;

/**
 * Run a build. On abort the child gets SIGINT (it removes its temp files and exits), then SIGKILL
 * if it is still there after a grace period; the promise settles only once the child is gone, so
 * the caller never removes a directory a build is still writing into.
 */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    if (signal?.aborted) return reject(abortError());
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      child.kill('SIGINT');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code, sig) => {
      clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(abortError());
      else resolvePromise({ code, signal: sig, stdout, stderr });
    });
  });
}

function abortError(): Error {
  return Object.assign(new Error('verify was interrupted'), { name: 'AbortError' });
}
