import { readFile } from 'node:fs/promises';
import type { PushResult } from '../../registry-client/index.js';
import { buildImage, type Build } from '../build/build-image.js';
import { layerReason } from '../build/assemble.js';
import { ImgbuildError } from '../errors.js';
import { progressReporter } from '../progress.js';
import { defaultOutputPath, writeImage, type OutputFormat } from '../transports/write.js';
import { cliBuildContext } from './context.js';
import { loadCliSpec, printJson, readPrevious, type StoreFlags } from './common.js';
import { chunkSizeOf, lazyClient, type RegistryFlags } from './registry-flags.js';

interface BuildFlags extends StoreFlags, RegistryFlags {
  output?: string;
  format: OutputFormat;
  stream?: boolean;
  json?: boolean;
  previous?: string;
  plan?: string;
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
  const { parseReference } = flags.push ? await import('../../registry-client/index.js') : { parseReference: undefined };
  const pushRef = flags.push ? parseReference!(flags.push) : undefined;
  const client = lazyClient(flags, pushRef?.registry);
  try {
    // Bad flags are refused before the build, not after it.
    if (pushRef) chunkSizeOf(flags);
    if (flags.plan && flags.previous) throw new ImgbuildError('usage', '--plan and --previous cannot be used together', 'make the plan with `imgbuild plan --previous <image> --json`, then build with --plan alone');
    const spec = await loadCliSpec(specFile, flags);
    const plan = flags.plan ? await readPlanFile(flags.plan) : undefined;
    const previous = await readPrevious(flags.previous, flags);
    if (pushRef && !flags.output && !flags.stream) {
      // Reach the registry before building when the push is the only output: an unreachable
      // registry fails before the build, not after it. The first response also starts V8's
      // background compile of undici's HTTP parser (WebAssembly), which then runs beside the
      // build instead of holding up the process's exit (~70 ms here, bench/README.md).
      await (await client.get()).origin(pushRef.registry);
    }
    const ctx = cliBuildContext({ signal: abort.signal, onEvent: progressReporter(), registry: client.get });
    const build = await buildImage(spec, ctx, { ...(previous ? { previous } : {}), ...(plan ? { plan } : {}) });
    const { image } = build;
    abort.signal.throwIfAborted();

    let output: string | undefined;
    if (flags.stream) {
      const { streamDockerArchive } = await import('../transports/docker-archive.js');
      await streamDockerArchive(image, process.stdout);
    } else if (flags.output || !pushRef) {
      output = flags.output ?? defaultOutputPath(spec.name, flags.format);
      await writeImage(image, flags.format, output);
    }
    abort.signal.throwIfAborted();

    let pushed: PushResult | undefined;
    if (pushRef) {
      const { pushImage } = await import('../transports/registry.js');
      pushed = await pushImage(await client.get(), pushRef, image, { tags: flags.tag ?? [], chunkSize: chunkSizeOf(flags) });
      const { reportPush } = await import('./push.js');
      await reportPush({ ...pushed, target: pushRef.toString() }, { digestFile: flags.digestFile }, process.stderr);
    }
    report(build, flags, output, pushed);
  } finally {
    await client.close();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

async function readPlanFile(file: string): Promise<{ value: unknown; file: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ImgbuildError('plan', `--plan ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, 'write one with `imgbuild plan <spec> --json > plan.json`');
  }
  try {
    return { value: JSON.parse(text), file };
  } catch (e) {
    throw new ImgbuildError('plan', `--plan ${file}: not JSON (${(e as Error).message})`, 'write one with `imgbuild plan <spec> --json > plan.json`');
  }
}

function report({ spec, image }: Build, flags: BuildFlags, output: string | undefined, pushed: PushResult | undefined): void {
  const tag = image.refs[0]!.slice(spec.name.length + 1);
  if (flags.json && !flags.stream) {
    printJson({
      name: spec.name,
      tag,
      manifestDigest: image.descriptor.digest,
      configDigest: image.configDescriptor.digest,
      format: output ? flags.format : undefined,
      output,
      pushed: pushed ? { reference: pushed.reference, uploaded: pushed.uploaded, mounted: pushed.mounted, skipped: pushed.skipped, bytesSent: pushed.bytesSent, alreadyThere: pushed.alreadyThere } : undefined,
      layers: image.layers.map((l) => {
        const { reason, storePaths } = layerReason(l);
        return { digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType, reason: reason ?? 'base', storePaths };
      }),
    });
    return;
  }
  // With --stream, stdout carries the archive: say everything else on stderr.
  const say = (s: string) => (flags.stream ? process.stderr : process.stdout).write(`${s}\n`);
  say(image.descriptor.digest);
  if (output) {
    say(`wrote ${flags.format} ${output} (${image.refs[0]}, ${image.layers.length} layers)`);
    say(`look inside: imgbuild inspect ${output}${flags.format === 'oci' ? `   or   skopeo inspect oci:${output}` : ''}`);
  }
}
