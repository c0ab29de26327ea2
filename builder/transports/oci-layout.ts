import { copyFile, link, mkdir, stat, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import type { ReferrerArtifact } from '../../oci/referrers.js';
import { layoutReferrers, withReferrerEntries } from './layout-referrers.js';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { canonicalJson } from '../../oci/canonical-json.js';
import { digestHex, type Digest } from '../../oci/digest.js';
import { Annotation, MediaType } from '../../oci/media-types.js';
import { bytesStream, splitRef, type Image, type Index } from '../model/image.js';
import { ImageReadError } from '../model/complete.js';
import type { Readable } from 'node:stream';
import { writeDirAtomically } from './atomic.js';
import { checkFile } from '../cache/checked-blob.js';
import { openBlob } from './blob-source.js';
import pLimit from 'p-limit';
import { settleAll } from '../settle-all.js';
import { checkWriteArguments } from '../arguments.js';

/** Annotation containerd's `ctr import` reads for the full image name. */
const containerdImageName = 'io.containerd.image.name';

export const ociLayoutFile = canonicalJson({ imageLayoutVersion: '1.0.0' });

export interface LayoutNaming {
  /** `name:tag` (or a bare tag) the image is tagged with; default the image's first ref. */
  ref?: string;
  /** Artifacts referring to the image (or its platform images): SBOMs, kept as layout-referrers.ts says. */
  referrers?: readonly ReferrerArtifact[];
}

/** How an output is written: `signal` stops it (the temp output is removed, nothing is left). */
export interface WriteOptions {
  signal?: AbortSignal;
}

/** The `index.json` of a layout holding one image or one index (a multi-platform image), tagged with its ref. */
export function ociIndexJson(image: Image | Index, naming: LayoutNaming = {}): string {
  const ref = naming.ref ?? image.refs[0];
  const annotations: Record<string, string> = {};
  if (ref) {
    const { name, tag } = splitRef(ref);
    annotations[Annotation.refName] = tag;
    if (name) annotations[containerdImageName] = `${name}:${tag}`;
  }
  return canonicalJson({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [{ ...image.descriptor, ...(ref ? { annotations } : {}) }],
  });
}

/** One blob of an image to write: its digest, size, and bytes (a file to link, or a stream). */
export interface ImageBlob {
  digest: Digest;
  size: number;
  file?: string;
  /** The layer's `fileVerified` (model/layer.ts). */
  fileVerified?: () => boolean;
  open(): Readable;
}

/** Every blob of an image or of an index and its images (nested indexes too), each once. */
export async function artifactBlobs(artifact: Image | Index, depth = 0): Promise<ImageBlob[]> {
  if (artifact.kind === 'image') return imageBlobs(artifact);
  if (depth > 4) throw new ImageReadError(artifact.source, 'indexes nested more than 4 deep');
  const out = new Map<string, ImageBlob>();
  for (const entry of artifact.manifests) {
    for (const b of await artifactBlobs(await entry.open(), depth + 1)) if (!out.has(b.digest)) out.set(b.digest, b);
  }
  const d = artifact.descriptor;
  if (!out.has(d.digest)) out.set(d.digest, { digest: d.digest, size: d.size, open: () => bytesStream(artifact.bytes) });
  return [...out.values()];
}

/** Every blob of the image, each once: layers, config, manifest. */
export function imageBlobs(image: Image): ImageBlob[] {
  const out = new Map<string, ImageBlob>();
  for (const l of image.layers) if (!out.has(l.digest)) out.set(l.digest, { digest: l.digest, size: l.size, ...(l.file ? { file: l.file } : {}), ...(l.fileVerified ? { fileVerified: l.fileVerified } : {}), open: () => l.open() });
  const config = image.configDescriptor;
  if (!out.has(config.digest)) out.set(config.digest, { digest: config.digest, size: config.size, open: () => bytesStream(image.configBytes) });
  const m = image.descriptor;
  if (!out.has(m.digest)) out.set(m.digest, { digest: m.digest, size: m.size, open: () => bytesStream(image.manifestBytes) });
  return [...out.values()];
}

/** Blobs a layout writes at once (hashed and linked, or streamed). */
const BLOBS_AT_ONCE = 3;

/**
 * Write an OCI image layout directory (image-spec `image-layout.md`). A blob held in a local file
 * (the layer cache, another layout) is hashed, then hard-linked when it is on the same file
 * system, copied otherwise; a file that does not match its digest is read through the blob's
 * stream instead (a cached layer's repairs the cache; any other fails naming the file). Any other
 * blob is streamed from its source (made from the store, fetched), checked as it streams.
 */
export async function writeOciLayout(image: Image | Index, outDir: string, naming: LayoutNaming = {}, options: WriteOptions = {}): Promise<void> {
  checkWriteArguments('writeOciLayout', image, 'image-or-index', { path: outDir }, naming, options);
  const { signal } = options;
  await writeDirAtomically(outDir, isOciLayout, async (dir) => {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    const referrers = layoutReferrers(naming.referrers ?? []);
    const blobs = new Map([...referrers.blobs, ...(await artifactBlobs(image))].map((b) => [b.digest, b]));
    const put = async (blob: ImageBlob): Promise<void> => {
      signal?.throwIfAborted();
      const to = join(dir, 'blobs', 'sha256', digestHex(blob.digest));
      // A local file is hashed before it is linked (unless this process hashed it as it wrote it
      // and it is unchanged since: re-reading the build's layers was a serial second at the end
      // of a 1 GB build): a damaged one is read through its checked stream instead.
      if (blob.file && (blob.fileVerified?.() || (await checkFile(blob.file, blob).then((c) => c.ok, () => false)))) {
        await linkOrCopy(blob.file, to);
        return;
      }
      await pipeline(openBlob(blob), createWriteStream(to, { flags: 'wx' }), ...(signal ? [{ signal }] : []));
    };
    // A few at once: one blob's reads wait on the thread pool while another's bytes are hashed (a
    // warm build hashes every cached blob it links: one at a time, its main thread idled ~15% of
    // the run). All settle before the first failure is thrown: the directory is then removed.
    const limit = pLimit(BLOBS_AT_ONCE);
    await settleAll([...blobs.values()].map((b) => limit(() => put(b))));
    await writeFile(join(dir, 'oci-layout'), ociLayoutFile);
    await writeFile(join(dir, 'index.json'), withReferrerEntries(ociIndexJson(image, naming), referrers.entries));
    // The last look at the signal before the rename: an interrupt seen here leaves nothing written.
    signal?.throwIfAborted();
  });
}

async function isFileOfSize(path: string, size: number): Promise<boolean> {
  return stat(path).then((s) => s.isFile() && s.size === size, () => false);
}

/** Whether a directory is an OCI layout (holds an `oci-layout` file): one a layout output may replace. */
export async function isOciLayout(dir: string): Promise<boolean> {
  return stat(join(dir, 'oci-layout')).then((s) => s.isFile(), () => false);
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}
