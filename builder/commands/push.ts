import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { PushInput } from '../../registry-client/index.js';
import { openImage, type ImageHandle } from '../input/open-image.js';
import { parseReference, pushTo, registryClient, type PushSummary, type RegistryFlags } from '../registry.js';
import { printJson } from './common.js';

export interface PushFlags extends RegistryFlags {
  tag?: string[];
  digestFile?: string;
  json?: boolean;
}

/** The push input of an image read from disk: its manifest as it is, every blob streamed from it. */
function handlePushInput(img: ImageHandle, extraTags: string[]): PushInput {
  const configDigest = img.manifest.config.digest as `sha256:${string}`;
  return {
    manifest: { bytes: img.manifestBytes, mediaType: img.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json' },
    blobs: [
      { digest: configDigest, size: img.configBytes.length, open: () => Readable.from([img.configBytes]) },
      ...img.manifest.layers.map((l) => ({ digest: l.digest as `sha256:${string}`, size: l.size, open: () => img.openBlob(l.digest) })),
    ],
    extraTags,
  };
}

export async function runPush(imagePath: string, reference: string, flags: PushFlags): Promise<void> {
  const ref = parseReference(reference);
  const img = await openImage(imagePath);
  const client = await registryClient(flags, ref.registry);
  try {
    const summary = await pushTo(client, ref, handlePushInput(img, flags.tag ?? []), flags);
    await reportPush(summary, flags);
  } finally {
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
