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

export function chunkSizeOf(flags: RegistryFlags): number | undefined {
  if (flags.chunkSize === undefined) return undefined;
  const m = /^(\d+)([KMG]i?B?)?$/i.exec(flags.chunkSize.trim());
  if (!m) throw new Error(`--chunk-size: expected a size such as 4MiB or 0, got ${flags.chunkSize}`);
  const unit = (m[2] ?? '').toUpperCase()[0];
  return Number(m[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1);
}

/**
 * The push input of a built image: every blob straight from the blob store (no archive is
 * written), base layers offered as cross-repo mounts from the base image's repository.
 */
export function builtImagePushInput(image: BuiltImage, blobs: BlobStore, extraTags: string[], mountFrom: Map<string, string[]> = new Map()): PushInput {
  const blobList: PushBlob[] = [
    { digest: image.configDescriptor.digest, size: image.configDescriptor.size, path: blobs.path(image.configDescriptor.digest) },
    ...image.layers.map((l) => ({ digest: l.digest, size: l.size, path: blobs.path(l.digest), mountFrom: mountFrom.get(l.digest) })),
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
