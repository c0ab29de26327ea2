import { copyFile, link, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../../oci/canonical-json.js';
import { digestHex, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { BlobStore } from '../blobs/blob-store.js';
import type { BuiltImage } from '../image/types.js';
import { writeDirAtomically } from './atomic.js';

/** Annotation containerd's `ctr import` reads for the full image name. */
const containerdImageName = 'io.containerd.image.name';

export const ociLayoutFile = canonicalJson({ imageLayoutVersion: '1.0.0' });

/** The `index.json` of a layout holding one image, tagged with the image's tag. */
export function ociIndexJson(image: BuiltImage): string {
  return canonicalJson({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      {
        ...image.manifestDescriptor,
        annotations: {
          'org.opencontainers.image.ref.name': image.tag,
          [containerdImageName]: `${image.name}:${image.tag}`,
        },
      },
    ],
  });
}

/** Every blob of the image: layers, config, manifest. */
export function imageBlobs(image: BuiltImage): Digest[] {
  return [...image.layers.map((l) => l.digest), image.configDescriptor.digest, image.manifestDescriptor.digest];
}

/**
 * Write an OCI image layout directory (image-spec `image-layout.md`). Blobs are hard-linked from
 * the blob store when it is on the same file system (no copy of layer bytes), copied otherwise.
 */
export async function writeOciLayout(image: BuiltImage, store: BlobStore, outDir: string): Promise<void> {
  await writeDirAtomically(outDir, isOciLayout, async (dir) => {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    for (const digest of new Set(imageBlobs(image))) {
      await linkOrCopy(store.path(digest), join(dir, 'blobs', 'sha256', digestHex(digest)));
    }
    await writeFile(join(dir, 'oci-layout'), ociLayoutFile);
    await writeFile(join(dir, 'index.json'), ociIndexJson(image));
  });
}

async function isOciLayout(dir: string): Promise<boolean> {
  return stat(join(dir, 'oci-layout')).then((s) => s.isFile(), () => false);
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}
