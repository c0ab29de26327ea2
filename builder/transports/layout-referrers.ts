import { canonicalJson } from '../../oci/canonical-json.js';
import { sha256Digest, type Digest } from '../../oci/digest.js';
import { Annotation, MediaType } from '../../oci/media-types.js';
import { isReferrersTag, mergeReferrersIndex, referrersTag, type ReferrerArtifact } from '../../oci/referrers.js';
import type { Descriptor, Index } from '../../oci/schemas.js';
import { bytesStream } from '../model/image.js';
import type { ImageBlob } from './oci-layout.js';

// Referrers in an OCI layout, the way regclient's ocidir keeps them: the referrers tag schema,
// inside the layout. Each artifact's manifest and blobs go into blobs/, and per subject an image
// index listing its artifacts is a blob too, named in index.json with the ref name `sha256-<hex>`
// (the tag a registry without the referrers API would hold). The image's own entry stays as it
// was; a reader looking for the image by tag, or for the only non-referrers entry, finds it.

/** The layout pieces for `referrers`: every blob to write and the index.json entries to add (one per subject). */
export function layoutReferrers(referrers: readonly ReferrerArtifact[]): { blobs: ImageBlob[]; entries: Descriptor[] } {
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
