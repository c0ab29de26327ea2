import pLimit from 'p-limit';
import type { Readable } from 'node:stream';
import { pushScope, MAX_MANIFEST_BYTES, type RegistryClient, type RepositoryRef } from './client.js';
import type { ScopeSet } from './auth/scope.js';
import { ManifestTooLargeError, RegistryError } from './errors.js';
import { isValidRepositoryName, type ImageReference } from './reference.js';
import { defaultChunkSize, uploadBlob, type BlobSource } from './upload.js';
import { isDigest, sha256Digest, type Digest } from '../oci/digest.js';

/** A blob to push: its descriptor (digest, size) and where its bytes come from. */
export interface PushBlob {
  digest: Digest;
  size: number;
  /** A file holding the blob, or `open` giving a fresh stream of it (called again on retries). */
  path?: string;
  open?: () => Readable;
  /**
   * With `open`: the blob's bytes at once when they are at hand (a config, a small local file),
   * checked as `open`'s stream would be; undefined when they must be streamed. An upload of a
   * blob up to SMALL_BLOB_BYTES takes them instead of reading a stream (upload.ts).
   */
  read?: () => Uint8Array | undefined;
  /** Repositories of the same registry known to hold this blob: tried as a cross-repo mount. */
  mountFrom?: string[];
}

/** A manifest document to push: its exact bytes and media type. */
export interface PushManifest {
  bytes: Uint8Array;
  mediaType: string;
}

export interface PushInput {
  /** The top manifest (an image manifest or an index): pushed last, under the reference's tag or digest. */
  manifest: PushManifest;
  /** Every blob the manifest(s) name: config and layers (order does not matter). */
  blobs: readonly PushBlob[];
  /** For an index: its child manifests, pushed by digest before it. */
  childManifests?: readonly PushManifest[];
  /** More tags for the same manifest, pushed after it. */
  extraTags?: readonly string[];
}

export interface PushOptions {
  /** Blobs uploaded at once (default 4). */
  concurrency?: number;
  /** 0 = monolithic PUT; >0 = PATCH chunks of this size. Default: `defaultChunkSize(registry)` (4 MiB on ghcr.io, else monolithic). */
  chunkSize?: number;
  /** Progress: one event per blob, as it finishes. */
  onBlob?: (e: { digest: Digest; size: number; how: 'uploaded' | 'mounted' | 'skipped' }) => void;
  /**
   * Progress: once, before any blob is checked, the blobs the push covers (each once) and their
   * bytes; `alreadyThere`: the registry holds the manifest(s), so no blob is checked or sent.
   */
  onStart?: (e: { blobs: number; bytes: number; alreadyThere: boolean }) => void;
  /**
   * Progress of a blob's upload: `sent: 0` as it starts, then the bytes of it sent so far, at most
   * 10 times a second and once when all are sent. A retry starts again from 0.
   */
  onBlobProgress?: (e: { digest: Digest; size: number; sent: number }) => void;
  /**
   * Stop the push (Ctrl-C): uploads in flight are cancelled, no manifest is put and so no tag
   * moves; the push rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

export interface PushResult {
  /** The digest of the pushed top manifest (what `--digest-file` writes). */
  digest: Digest;
  /** `registry/repo@digest`: the pushed image, pinned. */
  reference: string;
  uploaded: number;
  skipped: number;
  mounted: number;
  /** Blob bytes sent in request bodies (manifests not counted). */
  bytesSent: number;
  /**
   * The registry already held every manifest of the push (by digest), hence every blob: none was
   * checked one by one (all count as skipped), and only the tags were put.
   */
  alreadyThere: boolean;
}

/**
 * Push an image: every blob (HEAD first, skip what exists; cross-repo mount when the caller
 * names a repository that has it; else upload), in parallel up to `concurrency`; then child
 * manifests by digest, the manifest under the reference's tag (or digest), and extra tags.
 * The manifest goes only after every blob is in, so a registry never holds a manifest whose
 * blobs are missing, and the tag moves only when the image is complete.
 *
 * Before the blobs, one HEAD per manifest by digest: a registry accepts a manifest only when the
 * repository holds its blobs (and an index only with its manifests), so when it already holds
 * them all — a re-push of an unchanged image — no blob needs its own HEAD. The manifests are
 * put all the same: that moves the tags, and checks that we may push at all.
 */
export async function pushImage(client: RegistryClient, ref: ImageReference, input: PushInput, options: PushOptions = {}): Promise<PushResult> {
  const repo = { registry: ref.registry, repository: ref.repository };
  const manifests = [...(input.childManifests ?? []), input.manifest];
  for (const m of manifests) {
    if (m.bytes.byteLength > MAX_MANIFEST_BYTES) throw new ManifestTooLargeError(m.bytes.byteLength, MAX_MANIFEST_BYTES);
  }
  const digest = sha256Digest(input.manifest.bytes);
  if (ref.digest && ref.digest !== digest) {
    throw new RegistryError('digest', `push to ${ref.toString()}: the manifest's digest is ${digest}, not the one in the reference`);
  }

  const blobs = dedupe(input.blobs);
  const mountRepos = new Set<string>();
  for (const b of blobs) {
    if (!isDigest(b.digest)) throw new RegistryError('push-input', `push to ${ref.toString()}: blob digest ${JSON.stringify(b.digest)} is not sha256:<64 hex>`);
    if (!Number.isSafeInteger(b.size) || b.size < 0) throw new RegistryError('push-input', `push to ${ref.toString()}: blob ${b.digest} has an invalid size ${b.size}`);
    if (!b.path && !b.open) throw new RegistryError('push-input', `push to ${ref.toString()}: blob ${b.digest} has neither path nor open()`);
    for (const from of b.mountFrom ?? []) {
      if (!isValidRepositoryName(from)) throw new RegistryError('push-input', `push to ${ref.toString()}: mountFrom ${JSON.stringify(from)} is not a repository name`);
      if (from !== ref.repository) mountRepos.add(from);
    }
  }
  // Ask for one token that covers the whole push (push+pull here, pull on mount sources).
  const scopes = pushScope(repo, mountRepos);
  const chunkSize = options.chunkSize ?? defaultChunkSize(ref.registry);
  const alreadyThere = await holdsAll(client, repo, input.manifest, input.childManifests ?? [], scopes, options.signal);
  const result: PushResult = { digest, reference: `${ref.name}@${digest}`, uploaded: 0, skipped: 0, mounted: 0, bytesSent: 0, alreadyThere };
  options.onStart?.({ blobs: blobs.length, bytes: blobs.reduce((n, b) => n + b.size, 0), alreadyThere });
  const onBlobProgress = options.onBlobProgress;

  // The first blob that fails for good stops the others (uploads in flight are cancelled, the
  // queued ones never start): the error is shown at once, not after every other upload ends.
  const failed = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
  const limit = pLimit(Math.max(1, options.concurrency ?? 4));
  const settled = await Promise.allSettled(blobs.map((b) => limit(async () => {
    signal.throwIfAborted();
    try {
      const src: BlobSource = b.path ? { path: b.path } : { open: b.open!, ...(b.read ? { read: b.read } : {}) };
      let how: 'uploaded' | 'mounted' | 'skipped';
      if (alreadyThere || (await client.blobExists(repo, b.digest, scopes, { signal })).exists) how = 'skipped';
      else {
        const mountFrom = (b.mountFrom ?? []).find((r) => r !== ref.repository);
        const onProgress = onBlobProgress ? (sent: number) => onBlobProgress({ digest: b.digest, size: b.size, sent }) : undefined;
        const r = await uploadBlob(client, repo, b, src, { chunkSize, signal, ...(mountFrom ? { mountFrom } : {}), ...(onProgress ? { onProgress } : {}) });
        if (r.how === 'uploaded') result.bytesSent += r.bytesSent;
        how = r.how === 'exists' ? 'skipped' : r.how;
      }
      result[how === 'uploaded' ? 'uploaded' : how === 'mounted' ? 'mounted' : 'skipped']++;
      options.onBlob?.({ digest: b.digest, size: b.size, how });
    } catch (e) {
      if (!signal.aborted) failed.abort(e);
      throw e;
    }
  })));
  options.signal?.throwIfAborted();
  if (failed.signal.aborted) throw failed.signal.reason;
  const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;

  // Every blob is in. A Ctrl-C from here on still stops before the next manifest: the tag moves
  // last, and only if nothing stopped the push before it.
  const put = (target: string, m: PushManifest) => {
    options.signal?.throwIfAborted();
    return client.putManifest(repo, target, m.bytes, m.mediaType, scopes, options.signal);
  };
  for (const m of input.childManifests ?? []) await put(sha256Digest(m.bytes), m);
  // `name:tag@digest` pushes the tag (the digest was checked above); `name@digest` pushes by digest alone.
  await put(ref.tag ?? ref.digest ?? 'latest', input.manifest);
  for (const tag of input.extraTags ?? []) await put(ref.withTag(tag).tag!, input.manifest);
  return result;
}

/** Whether the repository holds the top manifest and every child manifest, each by digest (the top one asked first). */
async function holdsAll(client: RegistryClient, repo: RepositoryRef, top: PushManifest, children: readonly PushManifest[], scopes: ScopeSet, signal?: AbortSignal): Promise<boolean> {
  if (!(await client.hasManifest(repo, sha256Digest(top.bytes), scopes, signal))) return false;
  const held = await Promise.all(children.map((m) => client.hasManifest(repo, sha256Digest(m.bytes), scopes, signal)));
  return held.every(Boolean);
}

function dedupe(blobs: readonly PushBlob[]): PushBlob[] {
  const seen = new Map<string, PushBlob>();
  for (const b of blobs) if (!seen.has(b.digest)) seen.set(b.digest, b);
  return [...seen.values()];
}
