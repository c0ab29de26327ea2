import { readFile } from 'node:fs/promises';
import {
  RegistryClient,
  defaultCredentialProvider,
  parseReference,
  type ImageReference,
  type PushBlob,
  type PushInput,
  type PushResult,
  pushImage,
} from '../registry-client/index.js';
import type { BlobStore } from './blobs/blob-store.js';
import { ImgbuildError } from './errors.js';
import { parseSize } from './unit-sum.js';
import type { BuiltImage } from './image/types.js';

/** CLI flags shared by every command that talks to a registry. */
export interface RegistryFlags {
  insecureRegistry?: string[];
  caFile?: string[];
  /** `user:password` for the registry the command targets. */
  creds?: string;
  chunkSize?: string;
}

/** A client configured from the flags; `credsRegistry` is the registry `--creds` applies to. */
export async function registryClient(flags: RegistryFlags, credsRegistry?: string): Promise<RegistryClient> {
  const ca = await Promise.all((flags.caFile ?? []).map((f) => readFile(f)));
  return new RegistryClient({
    insecureRegistries: flags.insecureRegistry ?? [],
    ca: ca.length > 0 ? ca : undefined,
    credentials: defaultCredentialProvider({ explicit: flags.creds && credsRegistry ? { [credsRegistry]: flags.creds } : undefined }),
  });
}

/** `--chunk-size` in bytes (0: one PUT), or undefined for the registry's default. */
export function chunkSizeOf(flags: RegistryFlags): number | undefined {
  if (flags.chunkSize === undefined) return undefined;
  const size = parseSize(flags.chunkSize);
  if (size === undefined) throw new ImgbuildError('usage', `--chunk-size ${JSON.stringify(flags.chunkSize)} is not a size`, 'e.g. --chunk-size 4MiB, or 0 for one PUT per blob');
  return size;
}

/**
 * The push input of a built image: every blob straight from the blob store (no archive is
 * written), or made again from the store as it is sent when the build left it out of the blob
 * store (`ImageLayer.remake`); base layers offered as cross-repo mounts from the base
 * image's repository.
 */
export function builtImagePushInput(image: BuiltImage, blobs: BlobStore, extraTags: string[], mountFrom: Map<string, string[]> = new Map()): PushInput {
  const blobList: PushBlob[] = [
    { digest: image.configDescriptor.digest, size: image.configDescriptor.size, path: blobs.path(image.configDescriptor.digest) },
    ...image.layers.map((l) => ({ digest: l.digest, size: l.size, ...(l.remake ? { open: l.remake } : { path: blobs.path(l.digest) }), mountFrom: mountFrom.get(l.digest) })),
  ];
  return {
    manifest: { bytes: image.manifest, mediaType: image.manifestDescriptor.mediaType },
    blobs: dedupe(blobList),
    extraTags,
  };
}

function dedupe(blobs: PushBlob[]): PushBlob[] {
  const seen = new Set<string>();
  return blobs.filter((b) => !seen.has(b.digest) && seen.add(b.digest));
}

export interface PushSummary extends PushResult {
  target: string;
}

export async function pushTo(client: RegistryClient, ref: ImageReference, input: PushInput, flags: RegistryFlags): Promise<PushSummary> {
  const result = await pushImage(client, ref, input, { chunkSize: chunkSizeOf(flags) });
  return { ...result, target: ref.toString() };
}

export { parseReference };
