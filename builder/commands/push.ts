import { writeFile } from 'node:fs/promises';
import type { PushResult } from '../../registry-client/index.js';
import { openArtifact } from '../transports/open.js';
import { pushProgress } from '../progress.js';
import { printJson } from './common.js';
import { cliProgress } from './progress.js';
import { chunkSizeOf, lazyClient, type RegistryFlags } from './registry-flags.js';

interface PushFlags extends RegistryFlags {
  tag?: string[];
  digestFile?: string;
  json?: boolean;
}

export interface PushSummary extends PushResult {
  target: string;
}

/**
 * `imgbuild push <image> <reference>`: any image argument (a layout, an archive, a registry
 * image) to a registry. From another registry, blobs are mounted when both are on one registry
 * and streamed through otherwise: the image is never written to disk.
 */
export async function runPush(image: string, reference: string, flags: PushFlags): Promise<void> {
  const { parseReference } = await import('../../registry-client/index.js');
  const target = reference.startsWith('docker://') ? reference.slice('docker://'.length) : reference;
  const ref = parseReference(target);
  chunkSizeOf(flags);
  const client = lazyClient(flags, ref.registry);
  const progress = cliProgress();
  try {
    // A multi-platform image is pushed whole: every platform's image, then the index.
    const source = await openArtifact(image, { registry: client.get });
    const { pushImage } = await import('../transports/registry.js');
    const result = await pushImage(await client.get(), ref, source, { tags: flags.tag ?? [], chunkSize: chunkSizeOf(flags), ...pushProgress(progress, ref.toString()) });
    progress.onEvent({ phase: 'pushed', ...result });
    progress.close();
    await reportPush({ ...result, target: ref.toString() }, flags);
  } finally {
    progress.close();
    await client.close();
  }
}

/** Print what a push did and write `--digest-file` (for CI: the digest to verify against). */
export async function reportPush(s: PushSummary, flags: { digestFile?: string; json?: boolean }, stream: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (flags.digestFile) await writeFile(flags.digestFile, `${s.digest}\n`);
  if (flags.json) {
    printJson(s);
    return;
  }
  stream.write(`pushed ${s.reference}\n`);
  stream.write(`blobs: ${s.uploaded} uploaded (${s.bytesSent} bytes), ${s.mounted} mounted, ${s.skipped} already there${s.alreadyThere ? ' (the registry held the manifest)' : ''}\n`);
}
