import { checkDigestFile, writeDigestFile } from './digest-file.js';
import { checkImageArgument, checkTags, referenceArgument } from './arguments.js';
import { formatPlatform } from '../model/complete.js';
import type { Index } from '../model/image.js';
import { openArtifact } from '../transports/open.js';
import { pushProgress } from '../progress.js';
import { printJson } from './print.js';
import type { PushDocument } from './documents.js';
import { cliProgress } from './progress.js';
import { formatPush, pushSummary, referrersField, type PushSummary } from './push-summary.js';
import { chunkSizeOf, lazyClient, timeoutOptions, type RegistryFlags } from './registry-flags.js';
import { SCHEMA_VERSION } from './schema-version.js';
import { cliBlobLocations } from './cache-dir.js';
import { watchInterrupts } from './interrupt.js';

interface PushFlags extends RegistryFlags {
  tag?: string[];
  digestFile?: string;
  json?: boolean;
}

/**
 * `imgbuild push <image> <reference>`: any image argument (a layout, an archive, a registry
 * image) to a registry. From another registry, blobs are mounted when both are on one registry
 * and streamed through otherwise: the image is never written to disk.
 */
export async function runPush(image: string, reference: string, flags: PushFlags): Promise<void> {
  // Every argument and flag is checked before anything is read or pushed: a bad --tag or
  // --digest-file found after the push left the reference's tag moved.
  checkImageArgument(image);
  const ref = referenceArgument(reference);
  checkTags(ref, flags.tag);
  chunkSizeOf(flags);
  timeoutOptions(flags);
  if (flags.digestFile !== undefined) await checkDigestFile(flags.digestFile);
  const progress = cliProgress();
  // As build --push: the first Ctrl-C (or SIGTERM) stops the push before any tag moves, a second exits at once.
  const interrupts = watchInterrupts({ waitForWork: true });
  // The client gets the signal too: its /v2/ ping, token requests and backoff waits end with it.
  const client = lazyClient(flags, ref.registry, interrupts.signal);
  try {
    // A multi-platform image is pushed whole: every platform's image, then the index.
    const source = await openArtifact(image, { registry: client.get });
    const { pushImage } = await import('../transports/registry.js');
    // Once pushImage has returned, the manifest and its tags are in: an interrupt after that does
    // not make it "nothing was written", the push stands and is reported.
    const result = await pushImage(await client.get(), ref, source, { tags: flags.tag ?? [], chunkSize: chunkSizeOf(flags), signal: interrupts.signal, blobLocations: await cliBlobLocations(), ...pushProgress(progress, ref.toString()) });
    progress.onEvent({ phase: 'pushed', ...result });
    progress.close();
    const summary = pushSummary(result, ref, flags.tag ?? []);
    const doc: PushDocument = {
      schemaVersion: SCHEMA_VERSION,
      source: source.source,
      digest: summary.digest,
      mediaType: source.descriptor.mediaType!,
      reference: summary.reference,
      tags: summary.tags,
      pushed: summary.pushed,
      ...(source.kind === 'index' ? { platforms: indexPlatforms(source) } : {}),
      ...referrersField(summary),
    };
    await reportPush(summary, doc, flags);
  } finally {
    progress.close();
    await client.close();
    interrupts.stop();
  }
}

/** An index's images as a push document lists them. */
export function indexPlatforms(index: Index): { platform: string; digest: string; mediaType: string }[] {
  return index.manifests.map((m) => ({ platform: formatPlatform(m.platform), digest: m.descriptor.digest, mediaType: m.descriptor.mediaType }));
}

/**
 * Say what a push did: stdout gets the pinned reference alone (or with --json, `doc`), stderr
 * the tags and blob counts; `--digest-file` gets the digest (for CI: the digest to verify against).
 */
export async function reportPush(s: PushSummary, doc: object, flags: { digestFile?: string; json?: boolean }): Promise<void> {
  if (flags.digestFile) await writeDigestFile(flags.digestFile, s.digest);
  if (flags.json) {
    printJson(doc);
    return;
  }
  for (const line of formatPush(s)) process.stderr.write(`${line}\n`);
  process.stdout.write(`${s.reference}\n`);
}
