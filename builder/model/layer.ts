import type { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/schemas.js';

/** A repository on a registry that holds a blob: a push to the same registry can mount it. */
export interface BlobLocation {
  registry: string;
  repository: string;
}

/**
 * One layer of an image: its descriptor facts, and its blob's bytes on demand.
 *
 * Every source gives layers of this one shape: a build (store layers written, taken from the
 * cache, or made again from the store as they are read), an OCI layout or archive, a
 * docker-archive, a registry (fetched only when read). Publishers ask nothing else of a layer.
 */
export interface Layer {
  /** Digest of the blob as stored (compressed or not). */
  readonly digest: Digest;
  /** Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  readonly diffId: Digest;
  readonly size: number;
  readonly mediaType: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * A fresh stream of the blob's bytes, from the start, each call (an upload retry calls it
   * again). A stream whose bytes do not match `digest` and `size` fails instead of ending.
   */
  open(): Readable;
  /**
   * The blob's bytes at once, when they are small and at hand (an OCI layout's file up to
   * member-storage.ts's SYNC_READ_MAX): what `open()` would stream, checked the same way (a
   * mismatch throws the error its stream would fail with); undefined when they must be streamed.
   * A push takes them so (no stream for a small layer).
   */
  read?(): Buffer | undefined;
  /** A local file holding exactly the blob, when there is one: outputs hard-link it instead of copying. */
  readonly file?: string;
  /**
   * Whether `file` is known to hold exactly the blob without reading it: this process hashed its
   * bytes (as it wrote them, or since) and it is still that file (inode, size, mtime). An output
   * that would hash `file` before linking it may skip the hash then.
   */
  readonly fileVerified?: () => boolean;
  /** Where a registry already holds the blob (a registry image, a registry base). */
  readonly location?: BlobLocation;
}

/** The descriptor a manifest lists for a layer. */
export function layerDescriptor(l: Layer): Descriptor {
  return { mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.annotations && Object.keys(l.annotations).length > 0 ? { annotations: { ...l.annotations } } : {}) };
}

/** A layer's facts without its bytes: what `--json` prints and tests compare. */
export function describeLayer(l: Layer): { digest: Digest; diffId: Digest; size: number; mediaType: string; annotations?: Record<string, string> } {
  return { digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType, ...(l.annotations ? { annotations: { ...l.annotations } } : {}) };
}
