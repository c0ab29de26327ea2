import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { ImgbuildError } from '../errors.js';
import type { Digest } from '../../oci/digest.js';
import { countArtifactDifferences, formatArtifactDiff } from '../repro/diff-artifacts.js';
import { verifySpec, type BuildConditions, type BuildRunner, type VerifyResult } from '../repro/verify.js';
import { loadCliSpec, readPrevious, specFilePath, type StoreFlags } from './common.js';
import { checkImageArgument } from './arguments.js';
import { printJson } from './print.js';
import type { VerifyDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';
import type { MetadataFlags } from './metadata.js';
import { builderFile } from '../install-paths.js';

export interface VerifyFlags extends StoreFlags, RegistryFlags, MetadataFlags {
  against?: string;
  withReferrers?: boolean;
  previous?: string;
  json?: boolean;
  keep?: boolean;
}

/** `imgbuild verify <spec>`: exit 0 when the builds (or the build and --against) have one digest, 1 otherwise (an error: 2, see cli.ts). */
export async function runVerify(spec: string, flags: VerifyFlags): Promise<void> {
  checkImageArgument(flags.against, '--against');
  checkImageArgument(flags.previous, '--previous');
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // --creds, if given, are for the registry of --against.
  const client = lazyClient(flags, flags.against ? registryOf(flags.against) : undefined, abort.signal);
  try {
    const specFile = resolve(await specFilePath(spec));
    if (flags.withReferrers && !flags.against) throw new ImgbuildError('usage', '--with-referrers compares the SBOMs attached to the --against image', 'add --against <image>');
    const rebuilt: RebuiltReferrer[] = [];
    // --previous: read once here (as `build --previous` reads it), given to every build.
    let previous: { source: string; layers: string[][] } | undefined;
    if (flags.previous) {
      const loaded = await loadCliSpec(specFile, flags);
      if (loaded.platforms) throw new ImgbuildError('usage', '--previous is for a single-platform spec', 'verify a multi-platform spec without --previous');
      const layers = await readPrevious(flags.previous, flags, { os: loaded.os, architecture: loaded.architecture, ...(loaded.variant ? { variant: loaded.variant } : {}) }, abort.signal);
      previous = { source: flags.previous, layers: layers ?? [] };
    }
    const result = await verifySpec({
      against: flags.against,
      ...(previous ? { previous } : {}),
      keep: flags.keep,
      build: processBuild(specFile, flags, rebuilt),
      signal: abort.signal,
      open: { registry: client.get },
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const referrers = flags.withReferrers && flags.against ? await compareReferrers(flags.against, result.reproducible, rebuilt, client.get) : undefined;
    if (flags.json) {
      const doc: VerifyDocument = { schemaVersion: SCHEMA_VERSION, reproducible: result.reproducible, digest: result.builds[0]!.digest, builds: result.builds, ...(result.against ? { against: result.against } : {}), ...(result.previous ? { previous: result.previous } : {}), ...(result.notes ? { notes: result.notes } : {}), ...(referrers ? { referrers } : {}), ...(result.workDir ? { workDir: result.workDir } : {}), ...(result.diff ? { diff: result.diff } : {}) };
      printJson(doc);
    }
    else process.stdout.write(formatVerify(result) + (referrers ? formatReferrers(referrers) : ''));
    process.exitCode = result.reproducible && (referrers?.same ?? true) ? 0 : 1;
  } finally {
    await client.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function registryOf(image: string): string | undefined {
  const ref = image.replace(/^docker:\/\//, '');
  const host = ref.split('/')[0];
  return host && /[.:]/.test(host) ? host : undefined;
}

interface RebuiltReferrer {
  subject: string;
  artifactType: string;
  digest: string;
}

type ReferrersCheck = NonNullable<VerifyDocument['referrers']>;

/**
 * `--with-referrers`: each SBOM attached to the --against image (per platform image, for an
 * index) must be the referrer the build makes for that image, byte for byte (same digest).
 * An image with no SBOM attached fails the check: there is nothing that could be verified.
 */
async function compareReferrers(against: string, reproducible: boolean, rebuilt: RebuiltReferrer[], registry: () => Promise<import('../../registry-client/index.js').RegistryClient>): Promise<ReferrersCheck> {
  const notes: string[] = [];
  if (!reproducible) return { same: false, checked: [], notes: ['the images differ, so their SBOMs were not compared'] };
  const { imageReferrers } = await import('../transports/referrers.js');
  const { SBOM_MEDIA_TYPES } = await import('../sbom/index.js');
  const sbomTypes = new Set(Object.values(SBOM_MEDIA_TYPES));
  const checked: ReferrersCheck['checked'] = [];
  for (const subject of [...new Set(rebuilt.map((r) => r.subject))]) {
    const list = await imageReferrers(against, subject as Digest, { registry });
    for (const m of list.manifests.filter((d) => d.artifactType && sbomTypes.has(d.artifactType))) {
      const mine = rebuilt.find((r) => r.subject === subject && r.artifactType === m.artifactType);
      checked.push({ subject, artifactType: m.artifactType!, digest: m.digest, ...(mine ? { rebuilt: mine.digest } : {}) });
    }
  }
  if (checked.length === 0) notes.push(`${against} has no SBOM attached (attach one with build --sbom)`);
  const same = checked.length > 0 && checked.every((c) => c.rebuilt === c.digest);
  return { same, checked, notes };
}

function formatReferrers(r: ReferrersCheck): string {
  const lines = r.checked.map((c) => `${c.rebuilt === c.digest ? 'same' : 'DIFFERENT'} ${c.artifactType} of ${c.subject}: attached ${c.digest}${c.rebuilt === c.digest ? '' : `, rebuilt ${c.rebuilt ?? 'none'}`}`);
  lines.push(...r.notes.map((n) => `note: ${n}`));
  lines.push(r.same ? 'referrers: the same' : 'referrers: NOT the same');
  return `${lines.join('\n')}\n`;
}

/** Each build as a process of its own (verify-build.js): a shell sets its umask (Node cannot set a child's), then becomes it. */
function processBuild(spec: string, flags: VerifyFlags, rebuilt: RebuiltReferrer[]): BuildRunner {
  const entry = fileURLToPath(builderFile('commands/verify-build.js'));
  // Paths absolute: the build runs in another directory. --creds and --chunk-size concern pushes only.
  const buildFlags: StoreFlags & RegistryFlags & MetadataFlags = {
    ...(flags.store ? { store: resolve(flags.store) } : {}),
    ...(flags.storeDir ? { storeDir: flags.storeDir } : {}),
    ...(flags.nix ? { nix: true } : {}),
    ...(flags.closureFile ? { closureFile: resolve(flags.closureFile) } : {}),
    ...(flags.verifyStore ? { verifyStore: true } : {}),
    // A file:// cache given relative would not resolve from the build's cwd; URLs pass as they are.
    ...(flags.substituter ? { substituter: flags.substituter } : {}),
    ...(flags.trustedPublicKey ? { trustedPublicKey: flags.trustedPublicKey } : {}),
    ...(flags.insecureRegistry ? { insecureRegistry: flags.insecureRegistry } : {}),
    // The timeouts a binary cache (--substituter) is read with, as in build.
    ...(flags.responseTimeout ? { responseTimeout: flags.responseTimeout } : {}),
    ...(flags.idleTimeout ? { idleTimeout: flags.idleTimeout } : {}),
    ...(flags.caFile ? { caFile: flags.caFile.map((f) => resolve(f)) } : {}),
    ...(flags.annotation ? { annotation: flags.annotation } : {}),
    ...(flags.label ? { label: flags.label } : {}),
    ...(flags.ciMetadata !== undefined ? { ciMetadata: flags.ciMetadata } : {}),
  };
  return async (c: BuildConditions, dir: string, signal?: AbortSignal, previous?: string[][]) => {
    const cwd = join(dir, 'cwd');
    await mkdir(cwd, { recursive: true });
    const cacheDir = c.freshCache ? join(dir, 'cache') : undefined;
    const output = join(dir, 'image.oci');
    const env: NodeJS.ProcessEnv = { ...process.env, TZ: c.tz, LANG: c.locale, LC_ALL: c.locale };
    if (cacheDir) env.IMGBUILD_CACHE_DIR = cacheDir;
    const args = [process.execPath, entry, JSON.stringify({ spec, output, flags: buildFlags, ...(previous ? { previous } : {}), ...(flags.withReferrers ? { sbom: ['spdx', 'cyclonedx'] } : {}) })];
    const r = await run('/bin/sh', ['-c', `umask ${c.umask} && exec "$@"`, 'sh', ...args], cwd, env, signal);
    if (r.code !== 0) {
      throw new ImgbuildError('verify', `the build (umask ${c.umask}, TZ ${c.tz}) failed with exit code ${r.code ?? r.signal}:\n${r.stderr.trimEnd()}`);
    }
    let digest: string;
    try {
      const printed = JSON.parse(r.stdout) as { digest: string; referrers?: RebuiltReferrer[] };
      digest = printed.digest;
      rebuilt.push(...(printed.referrers ?? []));
    } catch {
      throw new ImgbuildError('verify', `the build printed no JSON summary: ${r.stdout.slice(0, 200)}`);
    }
    return { digest, output, cwd, cacheDir };
  };
}

export function formatVerify(r: VerifyResult): string {
  const lines: string[] = [];
  r.builds.forEach((b, i) => {
    lines.push(`build ${i + 1}: ${b.digest}  (umask ${b.umask}, TZ ${b.tz}, LANG ${b.locale}, ${b.cacheDir ? 'empty cache' : 'your cache'})`);
  });
  if (r.against) lines.push(`against: ${r.against.digest}  (${r.against.source})`);
  if (r.previous) lines.push(`carried over: ${r.previous.layers} store layer(s) of ${r.previous.source} (${r.previous.from === 'previous' ? '--previous' : 'what it carried over'})`);
  if (r.workDir) lines.push(`kept: ${r.workDir}`);
  for (const n of r.notes ?? []) lines.push(`note: ${n}`);
  if (r.reproducible) lines.push(`reproducible: ${r.builds[0]!.digest}`);
  else {
    const n = r.diff ? countArtifactDifferences(r.diff) : 0;
    lines.push(`NOT reproducible: ${n} difference(s)`);
    if (r.diff) lines.push(formatArtifactDiff(r.diff).trimEnd());
    if (!r.workDir) lines.push('hint: rerun with --keep to keep both images for `imgbuild diff` or `skopeo inspect`');
  }
  return `${lines.join('\n')}\n`;
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
