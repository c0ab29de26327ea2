import { readFile } from 'node:fs/promises';
import { checkDigestFile, writeDigestFile } from './digest-file.js';
import { checkImageArgument, checkTags, referenceArgument, refuseEmpty } from './arguments.js';
import { streamOutputError } from './stream-output.js';
import { buildImage, type Build } from '../build/build-image.js';
import { buildIndex, platformName, selectPlatforms, type IndexBuild } from '../build/build-index.js';
import type { Image } from '../model/image.js';
import type { ResolvedSpec } from '../spec/types.js';
import { layerReason } from '../build/assemble.js';
import { ImgbuildError } from '../errors.js';
import { fsProblemOfCode } from '../fs/errno.js';
import { builtEvent, pushProgress } from '../progress.js';
import { cliProgress } from './progress.js';
import { checkOutputTarget, defaultOutputPath, outputFormats, outputTarget, writeImage, type OutputFormat } from '../transports/write.js';
import { cliBuildContext } from './context.js';
import { dropEarlyBuildWorker, takeEarlyBuildWorker } from './early-worker.js';
import { loadCliSpec, readPrevious, type StoreFlags } from './common.js';
import { printJson } from './print.js';
import { chunkSizeOf, fromImageReference, lazyClient, storeFetchOptions, timeoutOptions, type RegistryFlags } from './registry-flags.js';
import type { BuildDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';
import { cliBlobLocations } from './cache-dir.js';
import { formatPush, pushSummary, type PushSummary } from './push-summary.js';
import { withCliMetadata, type MetadataFlags } from './metadata.js';
import { shellWord } from './shell-word.js';
import type { ImageSbom, SbomFormat } from '../sbom/index.js';

interface BuildFlags extends StoreFlags, RegistryFlags, MetadataFlags {
  sbom?: string;
  output?: string;
  format?: OutputFormat;
  stream?: boolean;
  json?: boolean;
  previous?: string;
  plan?: string;
  platform?: string[];
  push?: string;
  tag?: string[];
  digestFile?: string;
}

export async function runBuild(specFile: string, flags: BuildFlags): Promise<void> {
  const abort = new AbortController();
  // First Ctrl-C aborts cleanly (temp files removed); a second one exits at once.
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
  };
  // Bad flags are refused before the build, not after it: a malformed --tag or a --digest-file
  // that cannot be written, found only once the image was pushed, left its tag moved.
  const pushRef = flags.push !== undefined ? referenceArgument(flags.push, '--push') : undefined;
  if (flags.tag?.length && !pushRef) throw new ImgbuildError('usage', '--tag tags the pushed image, and there is no --push', 'add --push <registry>/<repository>:<tag>, or tag an image already pushed with imgbuild tag <reference> <tag>');
  if (pushRef) checkTags(pushRef, flags.tag);
  if (flags.format !== undefined && !(outputFormats as readonly string[]).includes(flags.format)) {
    throw new ImgbuildError('usage', `-f ${JSON.stringify(flags.format)} is not an output format`, `use ${outputFormats.slice(0, -1).map((f) => `-f ${f}`).join(', ')} or -f ${outputFormats[outputFormats.length - 1]}`);
  }
  checkImageArgument(flags.previous, '--previous');
  refuseEmpty(flags.plan, '--plan', 'a file');
  if (flags.digestFile !== undefined) await checkDigestFile(flags.digestFile);
  // One registry client for the base pull and the push, so one token serves both.
  // --creds is for the push target and for the registry of the spec's fromImage (a private base
  // image), which is known once the spec is read: the client is made after that.
  let spec: ResolvedSpec | undefined;
  // The client gets the interrupt: its /v2/ ping, token requests and backoff waits end with it.
  const client = lazyClient(flags, () => [pushRef?.registry, spec ? fromImageReference(spec) : undefined], abort.signal);
  const progress = cliProgress();
  try {
    if (pushRef) chunkSizeOf(flags);
    timeoutOptions(flags);
    if (flags.json && flags.stream) throw new ImgbuildError('usage', '--json and --stream both write to stdout', 'drop --json (the summary goes to stderr), or write a file with -o instead of --stream');
    if (flags.plan && flags.previous) throw new ImgbuildError('usage', '--plan and --previous cannot be used together', 'make the plan with `imgbuild plan --previous <image> --json`, then build with --plan alone');
    const target = outputTarget(flags.output, flags.format);
    // --stream is the output: an -o or another format beside it was silently ignored before.
    if (flags.stream && flags.output !== undefined) throw new ImgbuildError('usage', '--stream writes the image to stdout, and -o names a file too', 'drop -o (redirect stdout to a file), or drop --stream');
    if (flags.stream && flags.format !== undefined && flags.format !== 'docker-archive') throw new ImgbuildError('usage', `--stream writes a docker-archive, and -f says ${flags.format}`, 'drop -f, or write a file with -o instead of --stream');
    const sbomFormats = flags.sbom !== undefined ? (await import('../sbom/index.js')).parseSbomFormats(flags.sbom) : [];
    spec = withCliMetadata(await loadCliSpec(specFile, flags), flags, process.env);
    // Installed once the spec is loaded: until then a signal ends the process as it would any
    // program (nothing is written while a spec loads), even a spec stuck in an endless loop.
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigint);
    const multi = spec.platforms !== undefined;
    // A single-platform spec builds its one platform; --platform may only name it.
    if (!multi && flags.platform?.length) selectPlatforms(spec, flags.platform);
    // A docker-archive holds one image: known before any layer is made.
    if (multi && (flags.stream || target.format === 'docker-archive') && selectPlatforms(spec, flags.platform).length !== 1) {
      throw new ImgbuildError('usage', `a docker-archive holds one platform, and this spec builds ${selectPlatforms(spec, flags.platform).map((p) => platformName(p)).join(', ')}`, 'pick one with --platform, or write an OCI layout (-f oci) or OCI archive (-f oci-archive), which hold them all');
    }
    if (multi && flags.plan && selectPlatforms(spec, flags.platform).length !== 1) {
      throw new ImgbuildError('usage', `--plan follows the plan of one platform, and this spec builds ${selectPlatforms(spec, flags.platform).map((p) => platformName(p)).join(', ')}`, 'pick the platform the plan was made for with --platform (imgbuild plan --platform <os/arch> --json writes one)');
    }
    const plan = flags.plan ? await readPlanFile(flags.plan) : undefined;
    // Where the image goes is checked before the build (a missing directory, a device or a
    // spec file in the way), not after it; the writer checks again.
    const writesFile = !flags.stream && (target.path !== undefined || !pushRef);
    if (writesFile) await checkOutputTarget(target.format, target.path ?? defaultOutputPath(spec.name, target.format));
    if (pushRef && !flags.output && !flags.stream) {
      // Reach the registry before building when the push is the only output: an unreachable
      // registry fails before the build, not after it.
      await (await client.get()).origin(pushRef.registry);
    }
    const records = spec.cacheRef ? await fetchLayerRecords(spec.cacheRef, client, pushRef, (m) => progress.log(m)) : undefined;
    const ctx = cliBuildContext({ signal: abort.signal, onEvent: (e) => progress.onEvent(e), warn: (m) => progress.log(m), registry: client.get, storeFetch: storeFetchOptions(flags), startedWorker: takeEarlyBuildWorker, ...(records ? { layerHints: records } : {}) });
    let built: Built;
    if (multi) {
      const previous = await previousByPlatform(flags.previous, flags, abort.signal);
      built = await buildIndex(spec, ctx, { ...(flags.platform ? { platforms: flags.platform } : {}), ...(previous ? { previous } : {}), ...(plan ? { plan } : {}) });
    } else {
      const previous = await readPrevious(flags.previous, flags, { os: spec.os, architecture: spec.architecture, ...(spec.variant ? { variant: spec.variant } : {}) }, abort.signal);
      built = await buildImage(spec, ctx, { ...(previous ? { previous } : {}), ...(plan ? { plan } : {}) });
    }
    // Built: a worker started for the build and not taken only holds memory now.
    await dropEarlyBuildWorker();
    const artifact = 'index' in built ? built.index : built.image;
    abort.signal.throwIfAborted();
    progress.onEvent(builtEvent(built));

    // An SBOM is attached to an OCI layout or archive, or to the pushed image: a docker-archive
    // (or --stream) alone holds none, so none is made, listed or said to be attached (docs/sbom.md).
    const attachable = pushRef !== undefined || (!flags.stream && target.format !== 'docker-archive');
    if (sbomFormats.length > 0 && !attachable) {
      const print = sbomFormats.map((f) => `imgbuild sbom ${shellWord(specFile)}${f === 'spdx' ? '' : ` --format ${f}`}`).join(' and ');
      progress.log(`warning: no SBOM was attached: a docker-archive holds no referrers (to attach ${sbomFormats.length === 1 ? 'it' : 'them'}, write -f oci or -f oci-archive, or --push; ${print} print${sbomFormats.length === 1 ? 's it' : ' them'})`);
    }
    const sboms = attachable ? await makeSboms(built, sbomFormats) : [];
    const referrers = sboms.map((s) => s.artifact);

    // Honoured up to here: nothing is written yet. An interrupt while the output is written stops
    // it before its rename (the temp output removed); once the output is in place it stands.
    abort.signal.throwIfAborted();
    let output: string | undefined;
    if (flags.stream) {
      const { streamDockerArchive } = await import('../transports/docker-archive.js');
      const { whileStreamingToStdout } = await import('./stdout-errors.js');
      await whileStreamingToStdout(() => streamDockerArchive(onePlatform(built), process.stdout, {}, { signal: abort.signal })).catch((err: unknown) => {
        throw streamOutputError(err);
      });
    } else if (writesFile) {
      output = target.path ?? defaultOutputPath(spec.name, target.format);
      await writeImage(target.format === 'docker-archive' ? onePlatform(built) : artifact, target.format, output, { referrers }, { signal: abort.signal });
    }
    if (abort.signal.aborted && !pushRef) {
      // The interrupt came after the output was complete (renamed into place, or streamed whole):
      // undoing it would help no one, and "nothing was written" would be false. It stands.
      progress.log(`note: interrupted after ${output ?? 'the archive'} was written in full: it is complete, and kept`);
    }

    let pushed: PushSummary | undefined;
    if (pushRef) {
      const { pushImage } = await import('../transports/registry.js');
      // Ctrl-C stops the push: uploads cancelled, no manifest put, no tag moved, exit 130. Once
      // pushImage has returned, the manifest and its tags are in: the push stands.
      const push = async () => {
        abort.signal.throwIfAborted();
        return pushImage(await client.get(), pushRef, artifact, { tags: flags.tag ?? [], chunkSize: chunkSizeOf(flags), signal: abort.signal, blobLocations: await cliBlobLocations(), ...pushProgress(progress, pushRef.toString()) });
      };
      const result = await push().catch((err: unknown) => {
        // Interrupted once the output is in place: it stays, and the message says so.
        if (output !== undefined && abort.signal.aborted) {
          throw new ImgbuildError('interrupted', `interrupted: the push to ${pushRef.toString()} was stopped; ${output} was written and is complete`, `push it when you are ready: imgbuild push ${shellWord(output)} ${shellWord(flags.push ?? pushRef.toString())}`, { cause: err });
        }
        throw err;
      });
      progress.onEvent({ phase: 'pushed', ...result });
      if (referrers.length > 0) {
        const { pushReferrers } = await import('../transports/referrers.js');
        for (const r of await pushReferrers(await client.get(), pushRef, referrers)) {
          progress.log(`attached ${r.digest} to ${r.subject} (${r.via === 'api' ? 'referrers API' : `referrers tag ${r.subject.replace(':', '-')}${r.indexUpdated ? '' : ', listed already'}`})`);
        }
      }
      progress.close();
      pushed = pushSummary(result, pushRef, flags.tag ?? []);
    }
    // The digest build prints (the pushed manifest's, with --push), with or without a push.
    if (flags.digestFile) await writeDigestFile(flags.digestFile, pushed?.digest ?? artifact.descriptor.digest);
    if (records) {
      // The image is out: the records are a hint for the next build, so failing to keep them only warns.
      try {
        const kept = await records.push();
        progress.log(`layer records: ${kept.records} kept in ${records.ref.toString()} (${kept.digest})`);
      } catch (e) {
        progress.log(`warning: the layer records were not pushed to ${records.ref.toString()}: ${(e as Error).message}`);
      }
    }
    progress.close();
    report(built, flags, target.format, output, pushed, sboms);
  } finally {
    progress.close();
    await dropEarlyBuildWorker();
    await client.close();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

type PlatformSbom = ImageSbom & { platform: string };

/** Each image's SBOMs (every platform's, for a multi-platform build), in the formats asked. */
async function makeSboms(built: Built, formats: readonly SbomFormat[]): Promise<PlatformSbom[]> {
  if (formats.length === 0) return [];
  const { buildSboms } = await import('../sbom/index.js');
  const out: PlatformSbom[] = [];
  for (const b of 'index' in built ? built.builds : [built]) {
    for (const s of await buildSboms(b, formats)) out.push({ ...s, platform: platformName(b.spec) });
  }
  return out;
}

/**
 * The layer records at `--cache-ref` (spec `cache.ref`), checked against the push target: a
 * records tag that does not exist yet is a first build, not an error.
 */
async function fetchLayerRecords(cacheRef: string, client: ReturnType<typeof lazyClient>, pushRef: { registry: string; repository: string } | undefined, log: (m: string) => void) {
  const { RegistryLayerRecords, recordsReference } = await import('../transports/registry-records.js');
  recordsReference(cacheRef); // a malformed ref is refused before anything is fetched
  const target = pushRef ? { registry: pushRef.registry, repository: pushRef.repository } : undefined;
  const records = await RegistryLayerRecords.fetch(await client.get(), cacheRef, target);
  log(`layer records: ${records.size} from ${records.ref.toString()}${target ? '' : ' (no --push: every layer is made, the records are only updated)'}`);
  return records;
}

async function readPlanFile(file: string): Promise<{ value: unknown; file: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    // A path that is no file is a malformed argument; a file that cannot be read, the file system's problem.
    const code = (e as NodeJS.ErrnoException).code;
    const missing = code === 'ENOENT' || code === 'ENOTDIR' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a plan file' : undefined;
    if (missing) throw new ImgbuildError('usage', `--plan ${file}: ${missing}`, 'name the file `imgbuild plan <spec> --json > plan.json` wrote, e.g. --plan plan.json', { cause: e });
    const problem = fsProblemOfCode(code);
    throw new ImgbuildError('plan', `--plan ${file}: ${problem ? `cannot read it: ${problem.what}` : (e as Error).message}`, problem ? problem.hint('--plan') : 'write one with `imgbuild plan <spec> --json > plan.json`', { cause: e });
  }
  try {
    return { value: JSON.parse(text), file };
  } catch (e) {
    throw new ImgbuildError('plan', `--plan ${file}: not JSON (${(e as Error).message})`, 'write one with `imgbuild plan <spec> --json > plan.json`');
  }
}

type Built = Build | IndexBuild;


/** The one image a docker-archive or a stream can hold: a multi-platform build must have made exactly one. */
function onePlatform(built: Built): Image {
  if (!('index' in built)) return built.image;
  if (built.builds.length === 1) return built.builds[0]!.image;
  throw new ImgbuildError('usage', `a docker-archive holds one platform, and this build made ${built.builds.map((b) => platformName(b.spec)).join(', ')}`, 'pick one with --platform, or write an OCI layout (-f oci) or OCI archive (-f oci-archive), which hold them all');
}

/** `--previous` for a multi-platform build: each platform's store layers from that platform's image of the previous index. */
async function previousByPlatform(image: string | undefined, flags: RegistryFlags, signal: AbortSignal): Promise<((platform: ResolvedSpec) => Promise<string[][] | undefined>) | undefined> {
  if (!image) return undefined;
  return (platform) => readPrevious(image, flags, { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}) }, signal);
}

/** What `--json` says of one image's layers. */
function layerSummaries(image: Image): BuiltLayer[] {
  return image.layers.map((l) => {
    const { reason, storePaths } = layerReason(l);
    return { digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType, reason: reason ?? 'base', storePaths };
  });
}

type BuiltLayer = Extract<BuildDocument, { layers: unknown }>['layers'][number];

/**
 * stdout is the result alone: the digest (`DIGEST=$(imgbuild build ...)`), or after a push the
 * pinned reference `<registry>/<repository>@<digest>`, or with --json one document. What was
 * written, what was pushed and how to look inside go to stderr; with --stream, stdout carries
 * the archive and everything else goes to stderr.
 */
function report(built: Built, flags: BuildFlags, format: OutputFormat, output: string | undefined, pushed: PushSummary | undefined, sboms: PlatformSbom[]): void {
  const { spec } = built;
  const artifact = 'index' in built ? built.index : built.image;
  const tag = artifact.refs[0]!.slice(spec.name.length + 1);
  if (flags.json) {
    const common = {
      schemaVersion: SCHEMA_VERSION,
      name: spec.name,
      tag,
      digest: artifact.descriptor.digest,
      mediaType: artifact.descriptor.mediaType!,
    };
    const where = {
      ...(output ? { format, output } : {}),
      ...(pushed ? { reference: pushed.reference, tags: pushed.tags, pushed: pushed.pushed } : {}),
      ...(sboms.length > 0
        ? { sboms: sboms.map((s) => ({ platform: s.platform, format: s.format, mediaType: s.mediaType, subject: s.artifact.subject.digest, digest: s.artifact.descriptor.digest, size: s.bytes.length })) }
        : {}),
    };
    const doc: BuildDocument = 'index' in built
      ? {
          ...common,
          platforms: built.builds.map((b) => ({ platform: platformName(b.spec), digest: b.image.descriptor.digest, mediaType: b.image.descriptor.mediaType!, configDigest: b.image.configDescriptor.digest, layers: layerSummaries(b.image) })),
          ...where,
        }
      : { ...common, platform: platformName(spec), configDigest: built.image.configDescriptor.digest, layers: layerSummaries(built.image), ...where };
    printJson(doc);
    return;
  }
  const note = (s: string) => process.stderr.write(`${s}\n`);
  if (output) {
    const what = 'index' in built ? `${built.builds.length === 1 ? 'platform' : `${built.builds.length} platforms`}: ${built.builds.map((b) => platformName(b.spec)).join(', ')}` : `${built.image.layers.length} layers`;
    note(`wrote ${format} ${output} (${artifact.refs[0]}, ${what})`);
  }
  if (pushed) formatPush(pushed).forEach(note);
  // With referrers in the layout, index.json has more than one entry: skopeo then needs the tag.
  // Commands to paste: each path quoted as a shell needs it (spaces, quotes, newlines).
  if (output) note(`look inside: imgbuild inspect ${shellWord(output)}${format === 'oci' ? `   or   skopeo inspect ${shellWord(`oci:${output}${sboms.length > 0 ? `:${tag}` : ''}`)}` : ''}`);
  if (output && format !== 'docker-archive' && sboms.length > 0) note(`attached ${sboms.length} SBOM${sboms.length === 1 ? '' : 's'}: imgbuild referrers ${shellWord(`${format === 'oci' ? 'oci' : 'oci-archive'}:${output}:${tag}`)}`);
  // An archive's index.json names the image alone (its SBOMs are in blobs/ only): it loads as any other.
  if (output && format === 'oci-archive' && sboms.length > 0) note(`load it: podman load -i ${shellWord(output)}   or   skopeo copy ${shellWord(`oci-archive:${output}`)} <destination> (the SBOMs stay in the archive: podman and skopeo copy the image alone)`);
  if (flags.stream) note(artifact.descriptor.digest);
  else process.stdout.write(`${pushed ? pushed.reference : artifact.descriptor.digest}\n`);
}
