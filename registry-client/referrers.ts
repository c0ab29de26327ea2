import { Readable } from 'node:stream';
import { pullScope, pushScope, readCapped, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, type RegistryClient, type RepositoryRef } from './client.js';
import { RegistryAuthError, RegistryContentError, RegistryError } from './errors.js';
import { pushImage } from './push.js';
import { ImageReference } from './reference.js';
import { sha256Digest, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { mergeReferrersIndex, referrersTag, type ReferrerArtifact } from '../oci/referrers.js';
import { IndexSchema, type Descriptor, type Index } from '../oci/schemas.js';
import { retryCutShort } from './retry.js';

// OCI distribution-spec 1.1 referrers: the API (`GET /v2/<name>/referrers/<digest>`), and where a
// registry has none (Debian's docker-registry 2.8, Docker Hub for years), the referrers tag schema:
// an image index under the tag `sha256-<hex>` listing the artifacts whose subject is that digest.

/** How a registry lists an image's referrers: its API, or the referrers tag schema. */
export type ReferrersVia = 'api' | 'tag';

export interface ReferrersList {
  via: ReferrersVia;
  /** The referrers' descriptors (media type, digest, size, artifactType, annotations). */
  manifests: Descriptor[];
}

/**
 * The referrers API's answer for `subject`, or undefined when the registry has no such API.
 * The spec says a registry with the API answers 200 with an image index (empty when nothing
 * refers to the digest); any 404 (or other non-index answer) means the API is not there.
 */
export async function referrersFromApi(client: RegistryClient, repo: RepositoryRef, subject: Digest, artifactType?: string, signal?: AbortSignal): Promise<Descriptor[] | undefined> {
  const what = `list referrers of ${repo.registry}/${repo.repository}@${subject}`;
  const bytes = await retryCutShort(client.retryContext, what, async () => {
    let res;
    try {
      res = await client.request(repo.registry, {
        method: 'GET', path: `/v2/${repo.repository}/referrers/${subject}`, ...(artifactType ? { query: { artifactType } } : {}),
        headers: { accept: MediaType.ociIndex }, scopes: pullScope(repo), what, ...(signal ? { signal } : {}),
      });
    } catch (err) {
      // Some registries without the API refuse the unknown route as unauthorised: the tag schema
      // is then the way (a real credential problem shows on the tag's request, with its hint).
      if (err instanceof RegistryAuthError) return undefined;
      throw err;
    }
    const type = (res.headers['content-type'] as string | undefined)?.split(';')[0]?.trim();
    if (res.status !== 200 || (type !== MediaType.ociIndex && type !== 'application/json')) {
      await res.body.dump();
      return undefined;
    }
    return readCapped(res, MAX_MANIFEST_BYTES, what);
  }, client.signalFor(signal));
  if (!bytes) return undefined;
  const index = parseIndex(bytes, what);
  if (!index) return undefined;
  // A registry may ignore the filter (it then does not say so in OCI-Filters-Applied): apply it here.
  return artifactType ? index.manifests.filter((m) => m.artifactType === artifactType) : index.manifests;
}

/** The index under the referrers tag of `subject`, or undefined when there is none (404). */
export async function referrersFromTag(client: RegistryClient, repo: RepositoryRef, subject: Digest, scopes = pullScope(repo), signal?: AbortSignal): Promise<Index | undefined> {
  const tag = referrersTag(subject);
  const what = `get referrers index ${repo.registry}/${repo.repository}:${tag}`;
  const bytes = await retryCutShort(client.retryContext, what, async () => {
    const res = await client.request(repo.registry, {
      method: 'GET', path: `/v2/${repo.repository}/manifests/${tag}`, headers: { accept: MANIFEST_ACCEPT }, scopes, what, ...(signal ? { signal } : {}),
    });
    if (res.status === 404) {
      await res.body.dump();
      return undefined;
    }
    if (res.status !== 200) throw await client.httpError(repo.registry, 'GET', res, what);
    return readCapped(res, MAX_MANIFEST_BYTES, what);
  }, client.signalFor(signal));
  if (!bytes) return undefined;
  const index = parseIndex(bytes, what);
  // The tag schema says: a tag holding something other than an index is not ours to overwrite.
  if (!index) throw new RegistryContentError(`${what}: the tag holds something other than an image index`);
  return index;
}

/** An image's referrers: from the API when the registry has it, else from the referrers tag. */
export async function listReferrers(client: RegistryClient, repo: RepositoryRef, subject: Digest, options: { artifactType?: string; signal?: AbortSignal } = {}): Promise<ReferrersList> {
  const fromApi = await referrersFromApi(client, repo, subject, options.artifactType, options.signal);
  if (fromApi) return { via: 'api', manifests: fromApi };
  const index = await referrersFromTag(client, repo, subject, pullScope(repo), options.signal);
  const manifests = index?.manifests ?? [];
  return { via: 'tag', manifests: options.artifactType ? manifests.filter((m) => m.artifactType === options.artifactType) : manifests };
}

export interface PushReferrerResult {
  /** The artifact manifest's digest. */
  digest: Digest;
  via: ReferrersVia;
  /** With the tag schema: whether the referrers index changed (false: the artifact was listed already). */
  indexUpdated: boolean;
}

/**
 * Push an artifact that refers to an image: its blobs, its manifest by digest, then — unless the
 * registry has the referrers API (it then lists the artifact itself) — its descriptor merged into
 * the index under the subject's referrers tag (no entry twice; the index is put only when it
 * changed). The subject should be in the repository already (a registry may refuse otherwise).
 */
export async function pushReferrer(client: RegistryClient, repo: RepositoryRef, artifact: ReferrerArtifact, options: { signal?: AbortSignal } = {}): Promise<PushReferrerResult> {
  const { signal } = options;
  const digest = artifact.descriptor.digest;
  const ref = new ImageReference(repo.registry, repo.repository, undefined, digest);
  await pushImage(client, ref, {
    manifest: { bytes: artifact.manifestBytes, mediaType: artifact.descriptor.mediaType },
    blobs: artifact.blobs.map((b) => ({ digest: b.digest, size: b.size, open: () => Readable.from([b.bytes]) })),
  }, signal ? { signal } : {});
  if (await referrersFromApi(client, repo, artifact.subject.digest, undefined, signal)) return { digest, via: 'api', indexUpdated: false };
  const scopes = pushScope(repo);
  const existing = await referrersFromTag(client, repo, artifact.subject.digest, scopes, signal);
  const merged = mergeReferrersIndex(existing, [artifact.descriptor]);
  if (merged.changed) await client.putManifest(repo, referrersTag(artifact.subject.digest), merged.bytes, MediaType.ociIndex, scopes, signal);
  return { digest, via: 'tag', indexUpdated: merged.changed };
}

/** A referrer's one layer (an SBOM, a signature): its manifest fetched, then the blob, each checked against its digest. */
export async function fetchReferrerBlob(client: RegistryClient, repo: RepositoryRef, manifestDigest: Digest, maxBytes = 64 * 1024 * 1024, options: { signal?: AbortSignal } = {}): Promise<{ mediaType: string; bytes: Buffer; manifest: { artifactType?: string; layers: Descriptor[]; subject?: Descriptor } }> {
  const { signal } = options;
  const m = await client.getManifest(repo, manifestDigest, signal);
  const manifest = JSON.parse(m.bytes.toString('utf8')) as { artifactType?: string; layers?: Descriptor[]; subject?: Descriptor };
  const layer = manifest.layers?.[0];
  const what = `referrer ${repo.registry}/${repo.repository}@${manifestDigest}`;
  if (!layer || manifest.layers!.length !== 1) throw new RegistryContentError(`${what}: not an artifact with one layer`);
  if (layer.size > maxBytes) throw new RegistryError('too-large', `${what}: its blob is ${layer.size} bytes, more than ${maxBytes}`);
  const bytes = await retryCutShort(client.retryContext, what, async () => readCapped(await client.getBlob(repo, layer.digest as Digest, signal), maxBytes, what), client.signalFor(signal));
  if (sha256Digest(bytes) !== layer.digest) throw new RegistryContentError(`${what}: blob ${layer.digest} does not hash to its digest`);
  return { mediaType: layer.mediaType, bytes, manifest: { ...(manifest.artifactType ? { artifactType: manifest.artifactType } : {}), layers: manifest.layers!, ...(manifest.subject ? { subject: manifest.subject } : {}) } };
}

function parseIndex(bytes: Buffer, what: string): Index | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryContentError(`${what}: the answer is not JSON`);
  }
  const parsed = IndexSchema.safeParse(doc);
  return parsed.success ? parsed.data : undefined;
}
