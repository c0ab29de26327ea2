import { digestHex } from '../../oci/digest.js';
import { IndexSchema } from '../../oci/schemas.js';
import { ImgbuildError } from '../errors.js';
import { ImageReadError, MAX_CONFIG_BYTES, parseDocument } from '../model/complete.js';
import { isReferrersEntry } from './layout-referrers.js';
import type { MemberStorage } from './member-storage.js';

/** The OCI image layout versions read (image-spec's `imageLayoutVersion`; umoci and skopeo accept 1.0.0 alone). */
export const IMAGE_LAYOUT_VERSIONS: readonly string[] = ['1.0.0'];

/** index.json and manifests are small JSON documents: capped as configs are (model/complete.ts). */
export const MAX_DOCUMENT_BYTES = MAX_CONFIG_BYTES;

/**
 * An OCI layout's metadata, checked before its image is read: `oci-layout` there, JSON, of a
 * version read here; index.json within MAX_DOCUMENT_BYTES and listing at least one image (a
 * referrers index alone is not one); each manifest it lists of the size it says.
 */
export async function checkLayout(storage: MemberStorage, source: string): Promise<void> {
  if (!(await storage.has('index.json'))) throw new ImageReadError(source, 'index.json is missing: not an OCI layout');
  if (!(await storage.has('oci-layout'))) throw new ImageReadError(source, 'oci-layout is missing: not an OCI layout (every layout has one, saying its imageLayoutVersion)');
  const layoutBytes = await storage.read('oci-layout');
  let version: unknown;
  try {
    version = (JSON.parse(layoutBytes.toString('utf8')) as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  } catch (e) {
    throw new ImageReadError(source, `oci-layout is not JSON: ${(e as Error).message.replace(/\s+/g, ' ')}`);
  }
  if (typeof version !== 'string') throw new ImageReadError(source, 'oci-layout has no imageLayoutVersion');
  if (!IMAGE_LAYOUT_VERSIONS.includes(version)) throw new ImageReadError(source, `oci-layout says imageLayoutVersion ${JSON.stringify(version)}; only ${IMAGE_LAYOUT_VERSIONS.join(', ')} is read`);
  const index = parseDocument(source, 'index.json', IndexSchema, await storage.read('index.json'));
  if (!index.manifests.some((m) => !isReferrersEntry(m))) {
    throw new ImgbuildError('image-read', `${source} holds no image: its index.json lists ${index.manifests.length === 0 ? 'no manifest' : 'only referrers'}`, 'write an image into it (imgbuild build <spec> -o <layout>) or name another');
  }
  for (const [i, m] of index.manifests.entries()) {
    if (typeof m.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(m.digest)) continue; // completeIndex says what is wrong with it
    const size = await storage.size(`blobs/sha256/${digestHex(m.digest as `sha256:${string}`)}`);
    if (size !== undefined && size !== m.size) {
      throw new ImageReadError(source, `index.json manifests[${i}] says manifest ${m.digest} is ${m.size} bytes, but its blob is ${size} bytes`);
    }
  }
}

/**
 * The storage with its `read` (index.json, manifests, configs: documents read whole) refusing a
 * member larger than MAX_DOCUMENT_BYTES before reading it (a 300 MB index.json is not read
 * into memory). Layers are streamed through `open`, not capped.
 */
export function cappedStorage<S extends MemberStorage>(storage: S, source: string): S {
  return {
    ...storage,
    read: async (name: string) => {
      const size = await storage.size(name);
      if (size !== undefined && size > MAX_DOCUMENT_BYTES) throw new ImageReadError(source, `${name} is ${size} bytes; an image's JSON documents (index.json, manifests, configs) are read up to ${MAX_DOCUMENT_BYTES} bytes`);
      return storage.read(name);
    },
  };
}
