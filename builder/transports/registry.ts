import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { ImageReference, parseReference, pushImage as pushToRegistry, RegistryError, type PushBlob, type PushOptions, type PushResult, type RegistryClient } from '../../registry-client/index.js';
import { ImgbuildError } from '../errors.js';
import { argumentError, checkClient, checkImage, checkOptions, describeValue } from '../arguments.js';
import { openBlob, readBlob } from './blob-source.js';
import { completeImage, completeIndex, isIndexDocument } from '../model/complete.js';
import { bytesStream, type CheckedDescriptor, type Image, type Index } from '../model/image.js';
import type { ReferrerArtifact } from '../../oci/referrers.js';

/**
 * A registry image (or index), read lazily: the manifest and config are fetched now, a layer's
 * bytes only when it is read (and checked against its digest as they stream). Its layers say
 * where the registry holds them, so a push to the same registry mounts them instead of copying.
 */
export async function readRegistryImage(client: RegistryClient, reference: string | ImageReference, options: { signal?: AbortSignal } = {}): Promise<Image | Index> {
  const { signal } = options;
  const ref = typeof reference === 'string' ? await withCode(async () => parseReference(reference)) : reference;
  const repo = { registry: ref.registry, repository: ref.repository };
  const source = `docker://${ref.toString()}`;
  const openManifest = async (target: string, refs: string[]): Promise<Image | Index> => {
    const m = await withCode(() => client.getManifest(repo, target, signal));
    if (isIndexDocument(m.bytes, m.mediaType)) {
      return completeIndex({ source, bytes: m.bytes, mediaType: m.mediaType, refs, openChild: (d: CheckedDescriptor) => openManifest(d.digest, []) });
    }
    return completeImage({
      source,
      manifestBytes: m.bytes,
      mediaType: m.mediaType,
      refs,
      location: repo,
      openBlob: (digest) => requestStream((stop) => blobChunks(client, repo, digest, stop)),
    });
  };
  return withCode(() => openManifest(ref.target, ref.tag ? [`${ref.name}:${ref.tag}`] : []));
}

/**
 * A blob's bytes, requested when first read. A body that breaks off (a reset, the idle timeout)
 * is asked for again, with the client's retries and backoff, and its bytes given on from where
 * the last attempt stopped (those before are read again and skipped: the layer checks the whole
 * against its digest). When the retries run out, or the answer is not HTTP, it is an
 * error[network] (error[protocol]) naming the blob, not a bare socket error.
 */
async function* blobChunks(client: RegistryClient, repo: { registry: string; repository: string }, digest: Digest, signal: AbortSignal): AsyncGenerator<Buffer> {
  const what = `get blob ${digest} from ${repo.registry}/${repo.repository}`;
  let given = 0;
  let timeouts = 0;
  for (let attempt = 0; ; attempt++) {
    const res = await withCode(() => client.getBlob(repo, digest, signal));
    let seen = 0;
    try {
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        const start = seen;
        seen += buf.length;
        if (seen <= given) continue;
        const piece = start < given ? buf.subarray(given - start) : buf;
        given += piece.length;
        yield piece;
      }
      return;
    } catch (err) {
      if (err instanceof ImgbuildError || signal.aborted) throw err;
      res.body.destroy();
      const { backoffDelay, describeError, isNetworkError, isTimeout, protocolError, sleep } = await import('../../registry-client/retry.js');
      const parse = protocolError(repo.registry, what, err);
      if (parse) throw new ImgbuildError(parse.code, parse.message, parse.hint, { cause: err });
      const timedOut = isTimeout(err);
      if (timedOut) timeouts++;
      if (!isNetworkError(err) || attempt >= client.retry.retries || timeouts > client.retry.timeoutRetries) {
        throw new ImgbuildError('network', `${what}: the download broke off after ${given} bytes: ${describeError(err)}${attempt > 0 ? ` (${attempt + 1} attempts)` : ''}`,
          'try again; if the registry is slow rather than broken, allow it longer (--idle-timeout)', { cause: err });
      }
      const delay = backoffDelay(client.retry, attempt + 1);
      client.notifyRetry({ what, reason: `the download broke off after ${given} bytes (${describeError(err)})`, attempt: attempt + 2, attempts: (timedOut ? client.retry.timeoutRetries : client.retry.retries) + 1, delayMs: delay, retryAfter: false });
      await sleep(delay, signal);
    }
  }
}

/**
 * A byte stream of `chunks` whose destroy aborts the request behind it at once (a reader that
 * stops early, an abort): Readable.from would wait for the generator's pending request (until
 * its timeout) before closing, holding the connection.
 */
function requestStream(chunks: (signal: AbortSignal) => AsyncGenerator<Buffer>): Readable {
  const stop = new AbortController();
  const it = chunks(stop.signal);
  let reading = false;
  return new Readable({
    read() {
      if (reading) return;
      reading = true;
      it.next().then(
        (r) => {
          reading = false;
          this.push(r.done ? null : r.value);
        },
        (err: unknown) => {
          reading = false;
          this.destroy(err as Error);
        },
      );
    },
    destroy(err, callback) {
      stop.abort(err ?? undefined);
      it.return(undefined).then(() => callback(err), () => callback(err));
    },
  });
}

/**
 * Registry errors carry a code and a hint already: keep them, as ImgbuildErrors (the registry
 * client's error as `cause`), so every caller of the library sees one error shape.
 */
export async function withCode<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw asImgbuildError(err);
  }
}

/** A RegistryError as an ImgbuildError of its code, message and hint (`cause`: the RegistryError); anything else as it is. */
export function asImgbuildError(err: unknown): unknown {
  return err instanceof RegistryError ? new ImgbuildError(err.code, err.message, err.hint, { cause: err }) : err;
}

export interface PushImageOptions extends Pick<PushOptions, 'chunkSize' | 'concurrency' | 'onBlob' | 'onStart' | 'onBlobProgress' | 'signal'> {
  /** More tags for the same manifest, pushed after it. */
  tags?: readonly string[];
  /**
   * Where blobs were pushed before (the CLI passes the cache's store): each blob is offered as a
   * mount from those repositories of the target registry, and after the push every blob is
   * recorded under the target. Without it, a push remembers nothing.
   */
  blobLocations?: BlobLocations;
  /**
   * Carry the artifacts that refer to the image (and to an index's images) where it was read —
   * an OCI layout's SBOMs (Image.referrers) — to the registry after the manifest (default true):
   * through its referrers API, else the `sha256-<hex>` tag, as `build --push --sbom` attaches them.
   */
  referrers?: boolean;
}

/** A referrer carried along with a push: the artifact's manifest digest, its subject, and how the registry lists it. */
export interface CarriedReferrer {
  digest: Digest;
  subject: Digest;
  artifactType: string;
  via: 'api' | 'tag';
  /** With the tag schema: whether the referrers index changed (false: the artifact was listed already). */
  indexUpdated: boolean;
}

/** What a push did: the registry client's result, and the referrers carried along. */
export interface PushImageResult extends PushResult {
  referrers: CarriedReferrer[];
}

/** Where a registry's blobs were pushed before (cache/blob-locations.ts implements it; a hint, so neither method may throw). */
export interface BlobLocations {
  /** Repositories of `registry` known to hold `digest`, newest first. */
  lookup(registry: string, digest: string): string[];
  /** Note that `repository` of `registry` now holds `digests`. */
  record(registry: string, repository: string, digests: readonly string[]): void;
}

/**
 * Push any image to a registry: every blob the registry lacks is read from the image's layers
 * (a built layer from the cache or made from the store, a layer of another registry streamed
 * through, or mounted when it is on the same registry), then the manifest and the tags.
 */
export async function pushImage(client: RegistryClient, reference: string | ImageReference, artifact: Image | Index, options: PushImageOptions = {}): Promise<PushImageResult> {
  checkClient('pushImage', client);
  if (typeof reference !== 'string' && !(reference instanceof ImageReference)) {
    throw argumentError('pushImage', `the reference must be a string (registry/repository:tag) or an ImageReference, got ${describeValue(reference)}`, 'call pushImage(client, \'registry.example/app:1.0\', image)');
  }
  checkImage('pushImage', 'the image', artifact);
  checkOptions('pushImage', options, { signal: 'signal', tags: 'array', referrers: 'boolean', blobLocations: 'object', chunkSize: 'count', concurrency: 'count', onBlob: 'function', onStart: 'function', onBlobProgress: 'function' });
  try {
    const ref = typeof reference === 'string' ? parseReference(reference) : reference;
    const images = artifact.kind === 'index' ? await indexImages(artifact) : [artifact];
    // Read before anything is sent: a layout whose referrers are damaged fails before a tag moves.
    const referrers = options.referrers === false ? [] : await referrersOf([artifact, ...(artifact.kind === 'index' ? images : [])]);
    const blobs = images.flatMap((image) => pushBlobs(image, ref, options.blobLocations));
    const result = artifact.kind === 'index'
      ? await pushIndex(client, ref, artifact, images, blobs, options)
      : await pushToRegistry(client, ref, { manifest: { bytes: artifact.manifestBytes, mediaType: artifact.descriptor.mediaType! }, blobs, extraTags: options.tags ?? [] }, options);
    // Only after the manifest is in: the repository now holds every blob for as long as the image stays.
    options.blobLocations?.record(ref.registry, ref.repository, blobs.map((b) => b.digest));
    // After their subjects (a registry may refuse an artifact whose subject it lacks).
    const carried: CarriedReferrer[] = [];
    for (const r of referrers) {
      options.signal?.throwIfAborted();
      const { pushReferrer } = await import('../../registry-client/referrers.js');
      const pushed = await withCode(() => pushReferrer(client, { registry: ref.registry, repository: ref.repository }, r));
      carried.push({ digest: pushed.digest, subject: r.subject.digest, artifactType: r.descriptor.artifactType, via: pushed.via, indexUpdated: pushed.indexUpdated });
    }
    return { ...result, referrers: carried };
  } catch (err) {
    throw localBlobCause(err) ?? asImgbuildError(err);
  }
}

/** The artifacts referring to each of `subjects` where they were read (an OCI layout's SBOMs), each once. */
async function referrersOf(subjects: readonly (Image | Index)[]): Promise<ReferrerArtifact[]> {
  const out = new Map<string, ReferrerArtifact>();
  for (const s of subjects) {
    for (const r of (await s.referrers?.()) ?? []) if (!out.has(r.descriptor.digest)) out.set(r.descriptor.digest, r);
  }
  return [...out.values()];
}

/**
 * When a push failed because a local blob is damaged (`error[cache]` from the layer cache, a
 * `blob-mismatch` naming a layout's file), that is the error to show, with its hint (what to
 * repair): the registry client's "cannot read the blob" wraps it.
 */
function localBlobCause(err: unknown): ImgbuildError | undefined {
  for (let e = (err as { cause?: unknown })?.cause, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ImgbuildError && (e.code === 'cache' || e.code === 'blob-mismatch')) {
      return new ImgbuildError(e.code, `${(err as Error).message.replace(/: cannot read the blob: .*$/s, '')}: ${e.message}`, e.hint, { cause: err });
    }
  }
  return undefined;
}

/**
 * Push an index: every image's blobs (each once, however many images share it), each image's
 * manifest by digest, then the index under the tag: a registry never holds an index whose
 * images it lacks.
 */
async function pushIndex(client: RegistryClient, ref: ImageReference, index: Index, images: readonly Image[], blobs: PushBlob[], options: PushImageOptions): Promise<PushResult> {
  return pushToRegistry(
    client,
    ref,
    {
      manifest: { bytes: index.bytes, mediaType: index.descriptor.mediaType! },
      childManifests: images.map((image) => ({ bytes: image.manifestBytes, mediaType: image.descriptor.mediaType! })),
      blobs,
      extraTags: options.tags ?? [],
    },
    options,
  );
}

/** An index's images, each opened once. */
async function indexImages(index: Index): Promise<Image[]> {
  const images: Image[] = [];
  for (const entry of index.manifests) {
    const child = await entry.open();
    if (child.kind !== 'image') throw new ImgbuildError('push', `${index.source}: nested indexes cannot be pushed`, 'push each inner index by itself');
    images.push(child);
  }
  return images;
}

/**
 * The blobs of an image as the registry client pushes them: every layer read through the layer
 * (a cache file, checked; made from the store; fetched from another registry); a blob
 * the target registry already holds in another repository offered as a mount: the repository it
 * is read from first, then those it was pushed to before (never the target itself).
 */
function pushBlobs(image: Image, ref: ImageReference, locations: BlobLocations | undefined): PushBlob[] {
  const mount = (digest: string, at: { registry: string; repository: string } | undefined) => {
    const from = at && at.registry === ref.registry ? [at.repository] : [];
    // The newest recorded repository, and only when the blob is not read from another one of
    // this registry: the registry client tries one source, and each one named widens the push's
    // token scope (pull on it) for nothing.
    const recorded = from.some((r) => r !== ref.repository) ? undefined : locations?.lookup(ref.registry, digest).find((r) => r !== ref.repository);
    if (recorded) from.push(recorded);
    return from.length > 0 ? { mountFrom: from } : {};
  };
  return [
    { digest: image.configDescriptor.digest, size: image.configDescriptor.size, open: () => bytesStream(image.configBytes), read: () => image.configBytes, ...mount(image.configDescriptor.digest, image.location) },
    // Through `open()` even when the layer is a file: the layer checks its bytes (a damaged cache
    // file is repaired or refused before the registry sees it), a bare path would not. A small
    // layer of a layout gives them at once (`read`), checked the same way.
    ...image.layers.map((l): PushBlob => ({ digest: l.digest, size: l.size, open: () => openBlob(l), ...(l.read ? { read: () => readBlob(l) } : {}), ...mount(l.digest, l.location) })),
  ];
}
