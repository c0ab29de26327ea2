import { canonicalJson } from '../../oci/canonical-json.js';
import { digestHex, isDigest, sha256Digest, type Digest } from '../../oci/digest.js';
import { Annotation, MediaType } from '../../oci/media-types.js';
import { isReferrersTag, mergeReferrersIndex, referrersTag, type ArtifactBlob, type ReferrerArtifact } from '../../oci/referrers.js';
import { IndexSchema, ManifestSchema, type Descriptor, type Index, type Manifest } from '../../oci/schemas.js';
import { ImageReadError, parseDocument } from '../model/complete.js';
import { bytesStream } from '../model/image.js';
import type { MemberStorage } from './member-storage.js';
import type { ImageBlob } from './oci-layout.js';

// Referrers in an OCI layout directory, the way regclient's ocidir keeps them: the referrers tag
// schema, inside the layout. Each artifact's manifest and blobs go into blobs/, and per subject an
// image index listing its artifacts is a blob too, named in index.json with the ref name
// `sha256-<hex>` (the tag a registry without the referrers API would hold). The image's own entry
// stays as it was; a reader looking for the image by tag, or for the only non-referrers entry,
// finds it.
//
// An OCI archive names the image alone in index.json: `podman load` and skopeo's
// `oci-archive:<file>` (containers/image) take the only entry of index.json and refuse one with
// two ("more than one image in oci, choose an image"), and `podman load` cannot name a tag. Its
// artifacts' manifests and blobs are in blobs/ all the same, each manifest naming the image as its
// `subject`; a reader finds them by looking through the archive's blobs for such manifests (as
// cosign finds the signatures it saves into a layout), which an archive's index of members makes
// cheap: only members small enough to be a manifest whose first byte is `{` are read.

/**
 * The layout pieces for `referrers`: every blob to write and the index.json entries to add (one
 * per subject). `listed: false` (an OCI archive): the artifacts' manifests and blobs alone, no
 * referrers index and no index.json entry.
 */
export function layoutReferrers(referrers: readonly ReferrerArtifact[], options: { listed?: boolean } = {}): { blobs: ImageBlob[]; entries: Descriptor[] } {
  const bySubject = new Map<Digest, ReferrerArtifact[]>();
  for (const r of referrers) bySubject.set(r.subject.digest, [...(bySubject.get(r.subject.digest) ?? []), r]);
  const blobs = new Map<string, ImageBlob>();
  const add = (digest: Digest, bytes: Buffer) => {
    if (!blobs.has(digest)) blobs.set(digest, { digest, size: bytes.length, open: () => bytesStream(bytes) });
  };
  const entries: Descriptor[] = [];
  for (const [subject, list] of bySubject) {
    for (const r of list) {
      add(r.descriptor.digest, r.manifestBytes);
      for (const b of r.blobs) add(b.digest, b.bytes);
    }
    if (options.listed === false) continue;
    const { bytes } = mergeReferrersIndex(undefined, list.map((r) => r.descriptor));
    const digest = sha256Digest(bytes);
    add(digest, bytes);
    entries.push({ mediaType: MediaType.ociIndex, digest, size: bytes.length, annotations: { [Annotation.refName]: referrersTag(subject) } });
  }
  return { blobs: [...blobs.values()], entries };
}

/** index.json's text with `entries` appended to its manifests. */
export function withReferrerEntries(indexJson: string, entries: readonly Descriptor[]): string {
  if (entries.length === 0) return indexJson;
  const doc = JSON.parse(indexJson) as Index;
  return canonicalJson({ ...doc, manifests: [...doc.manifests, ...entries] });
}

/** Whether an index.json entry is a referrers index (ref name `sha256-<hex>`), not an image. */
export function isReferrersEntry(d: { mediaType?: string; annotations?: Record<string, string> }): boolean {
  const ref = d.annotations?.[Annotation.refName];
  return ref !== undefined && isReferrersTag(ref);
}

/** Largest blob of a referrer read into memory (an SBOM of a large closure is a few MB). */
const MAX_REFERRER_BLOB = 64 * 1024 * 1024;

/**
 * The artifacts a layout holds for `subject` (its referrers index, named `sha256-<hex>` in
 * index.json), whole: each manifest and its blobs read and checked against their digests, as a
 * push needs them. None when the layout lists none.
 */
export async function readLayoutReferrers(storage: MemberStorage, source: string, subject: Digest): Promise<ReferrerArtifact[]> {
  const read = async (d: string, what: string, max?: number): Promise<Buffer> => {
    if (!isDigest(d)) throw new ImageReadError(source, `${what} digest ${JSON.stringify(d)} is not sha256:<64 hex>`);
    const name = `blobs/sha256/${digestHex(d)}`;
    if (!(await storage.has(name))) throw new ImageReadError(source, `${what} ${d} is missing`);
    const size = await storage.size(name);
    if (max !== undefined && size !== undefined && size > max) throw new ImageReadError(source, `${what} ${d} is ${size} bytes, more than ${max}`);
    const bytes = await storage.read(name);
    if (sha256Digest(bytes) !== d) throw new ImageReadError(source, `${what} ${d} does not hash to its name`);
    return bytes;
  };
  const out: ReferrerArtifact[] = [];
  for (const d of await referrerDescriptors(storage, source, subject)) {
    const manifestBytes = await read(d.digest, 'referrer manifest', 4 * 1024 * 1024);
    const m = parseDocument(source, `referrer ${d.digest}`, ManifestSchema, manifestBytes);
    if (m.subject?.digest !== subject) throw new ImageReadError(source, `referrer ${d.digest} is listed for ${subject}, but its subject is ${m.subject?.digest ?? 'none'}`);
    const blobs = new Map<string, ArtifactBlob>();
    for (const b of [m.config, ...m.layers]) {
      if (blobs.has(b.digest)) continue;
      const bytes = await read(b.digest, `blob of referrer ${d.digest}`, MAX_REFERRER_BLOB);
      blobs.set(b.digest, { mediaType: b.mediaType, digest: b.digest as Digest, size: bytes.length, bytes });
    }
    out.push({
      descriptor: {
        mediaType: d.mediaType, digest: d.digest as Digest, size: d.size,
        artifactType: d.artifactType ?? m.artifactType ?? m.config.mediaType,
        ...(d.annotations ? { annotations: d.annotations } : {}),
      },
      manifestBytes,
      subject: { mediaType: m.subject.mediaType, digest: subject, size: m.subject.size },
      blobs: [...blobs.values()],
    });
  }
  return out;
}

/**
 * The descriptors of the artifacts a layout holds for `subject`: its referrers index (named
 * `sha256-<hex>` in index.json), else, in an archive, the manifests in blobs/ whose subject it is
 * (blobReferrers). None when there are none.
 */
export async function referrerDescriptors(storage: MemberStorage, source: string, subject: Digest): Promise<Descriptor[]> {
  const top = parseDocument(source, 'index.json', IndexSchema, await storage.read('index.json'));
  const entry = top.manifests.find((m) => m.annotations?.[Annotation.refName] === referrersTag(subject));
  if (!entry) return (await blobReferrers(storage, source)).get(subject) ?? [];
  const name = `blobs/sha256/${digestHex(entry.digest as Digest)}`;
  if (!isDigest(entry.digest) || !(await storage.has(name))) throw new ImageReadError(source, `referrers index ${entry.digest} is missing`);
  const size = await storage.size(name);
  if (size !== undefined && size > MAX_MANIFEST) throw new ImageReadError(source, `referrers index ${entry.digest} is ${size} bytes, more than ${MAX_MANIFEST}`);
  const bytes = await storage.read(name);
  if (sha256Digest(bytes) !== entry.digest) throw new ImageReadError(source, `referrers index ${entry.digest} does not hash to its name`);
  return parseDocument(source, `referrers index ${entry.digest}`, IndexSchema, bytes).manifests;
}

/** Largest manifest read (distribution-spec's limit): a larger blob is no referrer's manifest. */
const MAX_MANIFEST = 4 * 1024 * 1024;

const scanned = new WeakMap<MemberStorage, Promise<Map<string, Descriptor[]>>>();

/**
 * The referrers an archive holds in blobs/ alone, by subject digest: every image manifest among
 * its blobs that has a `subject`, described as a referrers list describes it (media type, digest,
 * size, artifactType, annotations), in digest order. Only a storage that lists its members (an
 * archive) is looked through, once; a member whose first byte is not `{`, or too large to be a
 * manifest, is not read.
 */
export function blobReferrers(storage: MemberStorage, source: string): Promise<Map<string, Descriptor[]>> {
  let found = scanned.get(storage);
  if (!found) {
    found = scanBlobs(storage, source);
    scanned.set(storage, found);
  }
  return found;
}

async function scanBlobs(storage: MemberStorage, source: string): Promise<Map<string, Descriptor[]>> {
  const bySubject = new Map<string, Descriptor[]>();
  if (!storage.list || !storage.peek) return bySubject;
  const names = [...storage.list()].filter((n) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(n)).sort();
  for (const name of names) {
    const size = await storage.size(name);
    if (size === undefined || size < 2 || size > MAX_MANIFEST) continue;
    if (storage.peek(name, 1)?.[0] !== 0x7b) continue;
    const bytes = await storage.read(name);
    const digest = `sha256:${name.slice('blobs/sha256/'.length)}` as Digest;
    // A blob that is not an image manifest with a subject is no referrer (an image's own blobs
    // are checked where the image is read): most are configs and the image's own manifests.
    let m: Manifest;
    try {
      const doc = JSON.parse(bytes.toString('utf8')) as { subject?: unknown } | null;
      if (typeof doc !== 'object' || doc === null || doc.subject === undefined) continue;
      m = parseDocument(name, 'manifest', ManifestSchema, bytes);
    } catch {
      continue;
    }
    if (!m.subject || !isDigest(m.subject.digest) || (m.mediaType ?? MediaType.ociManifest) !== MediaType.ociManifest) continue;
    // A damaged one is said, not skipped: a push would otherwise leave its SBOM behind unnoticed.
    if (sha256Digest(bytes) !== digest) throw new ImageReadError(source, `referrer manifest ${digest} does not hash to its name`);
    const descriptor: Descriptor = {
      mediaType: MediaType.ociManifest, digest, size: bytes.length,
      artifactType: m.artifactType ?? m.config.mediaType,
      ...(m.annotations ? { annotations: m.annotations } : {}),
    };
    bySubject.set(m.subject.digest, [...(bySubject.get(m.subject.digest) ?? []), descriptor]);
  }
  return bySubject;
}
