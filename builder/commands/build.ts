import type { RegistryClient } from '../../registry-client/index.js';
import type { Digest } from '../../oci/digest.js';
import { buildImage, type BuildResult } from '../build.js';
import { defaultOutputPath, streamOutput, writeOutput, type OutputFormat } from '../outputs.js';
import { progressReporter } from '../progress.js';
import type { PushSummary, RegistryFlags } from '../registry.js';
import { loadSpecAndStore, printJson, readPrevious, type StoreFlags } from './common.js';

interface BuildFlags extends StoreFlags, RegistryFlags {
  output?: string;
  format: OutputFormat;
  stream?: boolean;
  json?: boolean;
  previous?: string;
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
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  // One registry client for the base pull and the push, so one token serves both.
  let client: RegistryClient | undefined;
  try {
    const { spec, store } = await loadSpecAndStore(specFile, flags);
    const previous = await readPrevious(flags.previous, flags);
    // The registry modules load only when a registry is involved (a push, a base image).
    const registry = () => import('../registry.js');
    const pushRef = flags.push ? (await registry()).parseReference(flags.push) : undefined;
    // A bad push flag is refused before the build, not after it.
    if (pushRef) (await registry()).chunkSizeOf(flags);
    const getClient = async () => (client ??= await (await registry()).registryClient(flags, pushRef?.registry));
    // Pushing only: a cached layer the registry already holds needs no local blob.
    const pushOnly = pushRef && !flags.output && !flags.stream;
    if (pushOnly) {
      // Reach the registry before building when the push is the only output: an unreachable
      // registry fails before the build, not after it. The first response also starts V8's
      // background compile of undici's HTTP parser (WebAssembly), which then runs beside the
      // build instead of holding up the process's exit (~70 ms here, bench/README.md).
      await (await getClient()).origin(pushRef.registry);
    }
    const blobElsewhere = pushOnly
      ? async (digest: Digest) => {
          const repo = { registry: pushRef.registry, repository: pushRef.repository };
          const { pushScope } = await import('../../registry-client/index.js');
          return (await (await getClient()).blobExists(repo, digest, pushScope(repo))).exists;
        }
      : undefined;
    const result = await buildImage(spec, { store, previous, signal: abort.signal, onEvent: progressReporter(), registryClient: getClient, blobElsewhere });
    const { image, blobs } = result;
    abort.signal.throwIfAborted();

    let output: string | undefined;
    if (flags.stream) {
      await streamOutput(image, blobs, process.stdout);
    } else if (flags.output || !pushRef) {
      output = flags.output ?? defaultOutputPath(spec.name, flags.format);
      await writeOutput(image, blobs, flags.format, output);
    }
    abort.signal.throwIfAborted();

    let pushed: PushSummary | undefined;
    if (pushRef) {
      const { builtImagePushInput, pushTo } = await registry();
      const input = builtImagePushInput(image, blobs, flags.tag ?? [], baseMounts(result, pushRef.registry));
      pushed = await pushTo(await getClient(), pushRef, input, flags);
      const { reportPush } = await import('./push.js');
      await reportPush(pushed, { digestFile: flags.digestFile }, process.stderr);
    }
    report(result, flags, output, pushed);
  } finally {
    await client?.close();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

/** Base layers pushed to the base's own registry are mounted from its repository, not uploaded. */
function baseMounts(result: BuildResult, registry: string): Map<string, string[]> {
  const mounts = new Map<string, string[]>();
  const base = result.base;
  if (base?.registry?.registry === registry) {
    for (const l of base.layers) mounts.set(l.digest, [base.registry.repository]);
  }
  return mounts;
}

function report({ image }: BuildResult, flags: BuildFlags, output: string | undefined, pushed: PushSummary | undefined): void {
  if (flags.json && !flags.stream) {
    printJson({
      name: image.name,
      tag: image.tag,
      manifestDigest: image.manifestDescriptor.digest,
      configDigest: image.configDescriptor.digest,
      format: output ? flags.format : undefined,
      output,
      pushed: pushed ? { reference: pushed.reference, uploaded: pushed.uploaded, mounted: pushed.mounted, skipped: pushed.skipped, bytesSent: pushed.bytesSent, alreadyThere: pushed.alreadyThere } : undefined,
      layers: image.layers.map((l) => ({
        digest: l.digest,
        diffId: l.diffId,
        size: l.size,
        mediaType: l.mediaType,
        reason: l.reason,
        storePaths: l.storePaths,
      })),
    });
    return;
  }
  // With --stream, stdout carries the archive: say everything else on stderr.
  const say = (s: string) => (flags.stream ? process.stderr : process.stdout).write(`${s}\n`);
  say(image.manifestDescriptor.digest);
  if (output) {
    say(`wrote ${flags.format} ${output} (${image.name}:${image.tag}, ${image.layers.length} layers)`);
    say(`look inside: imgbuild inspect ${output}${flags.format === 'oci' ? `   or   skopeo inspect oci:${output}` : ''}`);
  }
}
