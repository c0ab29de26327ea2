import { Annotation } from '../../oci/media-types.js';
import { IndexSchema } from '../../oci/schemas.js';
import { digestHex, sha256Digest, type Digest } from '../../oci/digest.js';
import { canonicalJson } from '../../oci/canonical-json.js';
import { completeImage, completeIndex, formatPlatform, isIndexDocument, ImageReadError, parseDocument } from '../model/complete.js';
import type { CheckedDescriptor, Image, Index } from '../model/image.js';
import type { MemberStorage } from './member-storage.js';
import { isReferrersEntry, readLayoutReferrers } from './layout-referrers.js';

const blobName = (d: Digest) => `blobs/sha256/${digestHex(d)}`;

/**
 * An OCI layout's image (or index), from a directory or an archive: the manifest tagged `tag`
 * (`org.opencontainers.image.ref.name`), else the only one. A layout holding several images
 * (skopeo copies into one layout under several tags) is refused unless a tag names one, as skopeo
 * does, with their tags; only a layout whose index.json is itself a platform index (every entry
 * has a platform, no two the same) is read as one multi-platform image.
 */
export async function readOci(storage: MemberStorage, source: string, tag?: string): Promise<Image | Index> {
  if (!(await storage.has('index.json'))) throw new ImageReadError(source, 'index.json is missing: not an OCI layout');
  const indexBytes = await storage.read('index.json');
  const doc = parseDocument(source, 'index.json', IndexSchema, indexBytes);
  const refOf = (d: { annotations?: Record<string, string> }) => d.annotations?.[Annotation.refName];
  const openChild = (d: CheckedDescriptor, refs: string[]) => openDescriptor(storage, source, d, refs);
  if (tag !== undefined) {
    const entry = doc.manifests.find((m) => refOf(m) === tag);
    if (!entry) {
      const tags = doc.manifests.filter((m) => !isReferrersEntry(m)).map(refOf).filter(Boolean);
      throw new ImageReadError(source, `no image tagged ${JSON.stringify(tag)}`, tags.length ? `it holds: ${tags.join(', ')}` : 'it holds no tagged image');
    }
    const layoutIndex = completeIndex({ source, bytes: indexBytes, openChild: (d) => openChild(d, [tag]) });
    return layoutIndex.manifests.find((m) => m.descriptor.digest === entry.digest)!.open();
  }
  // Referrers indexes (SBOMs attached, layout-referrers.ts) are not images.
  const images = doc.manifests.map((m, i) => ({ m, i })).filter(({ m }) => !isReferrersEntry(m));
  if (images.length === 0) throw new ImageReadError(source, 'the layout holds no image');
  if (images.length === 1) {
    const only = images[0]!;
    const layoutIndex = completeIndex({ source, bytes: indexBytes, openChild: (d) => openChild(d, []) });
    return openChild(layoutIndex.manifests[only.i]!.descriptor, refOf(only.m) ? [refOf(only.m)!] : []);
  }
  const platforms = images.map(({ m }) => (m.platform ? formatPlatform(m.platform) : undefined));
  if (platforms.some((p) => p === undefined) || new Set(platforms).size !== platforms.length) {
    const names = images.map(({ m }) => refOf(m) ?? `${m.digest.slice(0, 19)}… (untagged)`);
    throw new ImageReadError(source, `the layout holds ${images.length} images (${names.join(', ')}); name one: ${source}:<tag>`,
      images.some(({ m }) => refOf(m) === undefined) ? 'only a tagged image can be named (org.opencontainers.image.ref.name in index.json)' : undefined);
  }
  // index.json is a platform index. Its referrers entries are no platform's image: the index is
  // read without them (it is not a blob: no digest changes that anything points to).
  const bytes = images.length === doc.manifests.length ? indexBytes : Buffer.from(canonicalJson({ ...doc, manifests: images.map(({ m }) => m) }));
  return completeIndex({
    source, bytes, refs: images.map(({ m }) => refOf(m)).filter((r): r is string => !!r), openChild: (d) => openChild(d, []),
    referrers: () => readLayoutReferrers(storage, source, sha256Digest(bytes)),
  });
}

async function openDescriptor(storage: MemberStorage, source: string, d: CheckedDescriptor, refs: string[]): Promise<Image | Index> {
  const name = blobName(d.digest);
  if (!(await storage.has(name))) throw new ImageReadError(source, `manifest ${d.digest} is missing`);
  const bytes = await storage.read(name);
  if (sha256Digest(bytes) !== d.digest) throw new ImageReadError(source, `manifest ${d.digest} does not hash to its name (${sha256Digest(bytes)})`);
  if (isIndexDocument(bytes, d.mediaType)) {
    return completeIndex({ source, bytes, mediaType: d.mediaType, refs, openChild: (child) => openDescriptor(storage, source, child, []), referrers: () => readLayoutReferrers(storage, source, d.digest) });
  }
  return completeImage({
    source,
    manifestBytes: bytes,
    mediaType: d.mediaType,
    refs,
    referrers: () => readLayoutReferrers(storage, source, d.digest),
    openBlob: (digest) => storage.open(blobName(digest)),
    blobSize: (digest) => storage.size(blobName(digest)),
    readBlob: (digest) => storage.read(blobName(digest)),
    ...(storage.file ? { blobFile: (digest: Digest) => storage.file!(blobName(digest)) } : {}),
    ...(storage.readSmall ? { readSmallBlob: (digest: Digest) => storage.readSmall!(blobName(digest)) } : {}),
  });
}
