import { readFile, stat } from 'node:fs/promises';
import { RegistryContentError } from './errors.js';
import { blobPath } from './pull.js';
import type { PushBlob, PushInput, PushManifest } from './push.js';
import { isDigest, sha256Digest, type Digest } from '../oci/digest.js';
import { isIndexMediaType, MediaType } from '../oci/media-types.js';
import { IndexSchema, ManifestSchema, type Descriptor } from '../oci/schemas.js';

/**
 * The PushInput for a manifest (or index) whose blobs are in a content-addressed dir
 * (`<blobDir>/sha256/<hex>`, e.g. an OCI layout's `blobs/`): every config and layer as a file,
 * child manifests of an index read from the same dir. For `imgbuild push <oci-layout> <ref>`.
 * A blob named by a manifest but missing from the dir is an error naming it.
 */
export async function pushInputFromBlobDir(blobDir: string, manifest: Uint8Array, mediaType?: string): Promise<PushInput> {
  const top = { bytes: manifest, mediaType: mediaType ?? mediaTypeOf(manifest, 'the manifest') };
  const blobs = new Map<string, PushBlob>();
  const children: PushManifest[] = [];

  const addBlob = async (d: Descriptor, where: string) => {
    if (!isDigest(d.digest)) throw new RegistryContentError(`${where}: digest ${d.digest} is not sha256`);
    if (blobs.has(d.digest)) return;
    const path = blobPath(blobDir, d.digest);
    const size = await stat(path).then((s) => s.size, () => undefined);
    if (size === undefined) throw new RegistryContentError(`${where}: blob ${d.digest} is not in ${blobDir}`);
    if (size !== d.size) throw new RegistryContentError(`${where}: blob ${d.digest} is ${size} bytes in ${blobDir}, the descriptor says ${d.size}`);
    blobs.set(d.digest, { digest: d.digest, size: d.size, path });
  };

  const visit = async (bytes: Uint8Array, mt: string, where: string, depth: number): Promise<void> => {
    const json = parse(bytes, where);
    if (isIndexMediaType(mt)) {
      if (depth > 2) throw new RegistryContentError(`${where}: indexes nested too deep`);
      const index = IndexSchema.safeParse(json);
      if (!index.success) throw new RegistryContentError(`${where}: not a valid index`);
      for (const m of index.data.manifests) {
        if (!isDigest(m.digest)) throw new RegistryContentError(`${where}: digest ${m.digest} is not sha256`);
        const child = await readFile(blobPath(blobDir, m.digest)).catch(() => {
          throw new RegistryContentError(`${where}: manifest ${m.digest} is not in ${blobDir}`);
        });
        if (sha256Digest(child) !== m.digest) throw new RegistryContentError(`${where}: ${blobPath(blobDir, m.digest as Digest)} does not hash to its name`);
        await visit(child, m.mediaType, `manifest ${m.digest}`, depth + 1);
        children.push({ bytes: child, mediaType: m.mediaType });
      }
      return;
    }
    const m = ManifestSchema.safeParse(json);
    if (!m.success) throw new RegistryContentError(`${where}: not a valid image manifest`);
    await addBlob(m.data.config, where);
    for (const l of m.data.layers) await addBlob(l, where);
  };

  await visit(top.bytes, top.mediaType, 'the manifest', 0);
  return { manifest: top, blobs: [...blobs.values()], ...(children.length ? { childManifests: children } : {}) };
}

function parse(bytes: Uint8Array, where: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new RegistryContentError(`${where}: not JSON`);
  }
}

function mediaTypeOf(bytes: Uint8Array, where: string): string {
  const doc = parse(bytes, where) as { mediaType?: unknown; manifests?: unknown };
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  // OCI allows the field to be absent: an index has `manifests`, a manifest has `config`.
  return Array.isArray(doc.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
}
