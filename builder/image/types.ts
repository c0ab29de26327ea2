import type { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/schemas.js';
import type { LayerBlob } from '../layer/types.js';

/** A layer of a built image, with what the planner put in it. */
export interface ImageLayer extends LayerBlob {
  /** Store paths in the layer (empty for the customisation layer and base layers). */
  storePaths: string[];
  /** `popularity`, `auto`, `explicit`, `carried-over`, `customisation`, `base`, ... */
  reason: string;
  /**
   * Set when the blob is not in the blob store (a build whose only output is a push, of a layer
   * the cache knows but neither this machine nor the registry holds): a fresh stream of its bytes,
   * made from the store as it is read.
   */
  remake?: () => Readable;
}

/** An image whose blobs are in a BlobStore: everything an output or a push needs. */
export interface BuiltImage {
  /** `name:tag` written into docker-archive RepoTags and the OCI ref-name annotation. */
  name: string;
  tag: string;
  manifest: Buffer;
  manifestDescriptor: Descriptor & { digest: Digest };
  config: Buffer;
  configDescriptor: Descriptor & { digest: Digest };
  layers: ImageLayer[];
}
