import { stat } from 'node:fs/promises';
import { digestHex, sha256Digest, type Digest } from '../../oci/digest.js';
import { ManifestSchema, type Descriptor } from '../../oci/schemas.js';
import type { RegistryClient } from '../../registry-client/index.js';
import { ImgbuildError } from '../errors.js';
import { ImageReadError, parseDocument } from '../model/complete.js';
import { archiveStorage } from './docker-archive.js';
import { formatImageRef, parseImageRef, type ImageRef } from './image-ref.js';
import { directoryStorage, type MemberStorage } from './member-storage.js';
import { referrerDescriptors } from './layout-referrers.js';
import { withCode } from './registry.js';
import { abortable } from '../settle-all.js';
import { argumentError, checkClient, checkImageArgument, checkOptions, describeValue } from '../arguments.js';

/** Largest referrer blob read into memory (an SBOM of a large closure is a few MB). */
const MAX_REFERRER_BLOB = 64 * 1024 * 1024;

/** imageReferrers' options. */
export interface ImageReferrersOptions {
  /** The directory a relative path is relative to (default the process's). */
  cwd?: string;
  /** How to reach a registry, for `docker://`: a client, or a function making one. */
  registry?: RegistryClient | (() => Promise<RegistryClient>);
  /** Stops the listing and the `content()` reads: they reject with its reason, and the requests under way are aborted. */
  signal?: AbortSignal;
}

/** What hangs off an image, and how to read each artifact's content. */
export interface ImageReferrers {
  /** `api`: the registry's referrers API; `tag`: the referrers tag schema on a registry; `layout`: an OCI layout's; `none`: a format that holds none (docker-archive). */
  via: 'api' | 'tag' | 'layout' | 'none';
  manifests: Descriptor[];
  /** An artifact's one layer (an SBOM): its bytes, checked against their digest. */
  content(d: Descriptor): Promise<{ mediaType: string; bytes: Buffer }>;
}

/** The referrers of the image `subject` in the place `arg` names (a registry repository, a layout, an archive). */
export async function imageReferrers(arg: string | ImageRef, subject: Digest, options: ImageReferrersOptions = {}): Promise<ImageReferrers> {
  checkImageArgument('imageReferrers', arg);
  if (typeof subject !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(subject)) {
    throw argumentError('imageReferrers', `the subject must be an image's manifest digest (sha256:<64 hex digits>), got ${describeValue(subject)}`, 'pass the image\'s descriptor.digest: imageReferrers(arg, image.descriptor.digest, { registry })');
  }
  checkOptions('imageReferrers', options, { cwd: 'string', registry: 'registry', signal: 'signal' });
  const { signal } = options;
  return abortable(signal, () => referrersOf(arg, subject, options));
}

async function referrersOf(arg: string | ImageRef, subject: Digest, options: ImageReferrersOptions): Promise<ImageReferrers> {
  const { signal } = options;
  const ref = typeof arg === 'string' ? parseImageRef(arg, options.cwd ? { cwd: options.cwd } : {}) : arg;
  const shown = formatImageRef(ref);
  switch (ref.transport) {
    case 'docker': {
      if (!options.registry) throw new ImgbuildError('image-ref', `${shown}: a registry image, and no registry client was given`);
      const client = typeof options.registry === 'function' ? await options.registry() : options.registry;
      const { listReferrers, fetchReferrerBlob, parseReference } = await import('../../registry-client/index.js');
      const r = await withCode(async () => parseReference(ref.reference));
      const repo = { registry: r.registry, repository: r.repository };
      const list = await withCode(() => listReferrers(client, repo, subject, signal ? { signal } : {}));
      return {
        via: list.via,
        manifests: list.manifests,
        content: async (d) => {
          const got = await abortable(signal, () => withCode(() => fetchReferrerBlob(client, repo, d.digest as Digest, MAX_REFERRER_BLOB, signal ? { signal } : {})));
          return { mediaType: got.mediaType, bytes: got.bytes };
        },
      };
    }
    case 'docker-archive':
      return { via: 'none', manifests: [], content: () => Promise.reject(new ImgbuildError('referrers', `${shown}: a docker-archive holds no referrers`)) };
    case 'oci':
      return layoutReferrers(directoryStorage(ref.path), shown, subject);
    case 'oci-archive':
      return layoutReferrers(await archiveStorage(ref.path, shown), shown, subject);
    case 'local': {
      if (await stat(ref.path).then((s) => s.isDirectory(), () => false)) return layoutReferrers(directoryStorage(ref.path), `oci:${ref.path}`, subject);
      const storage = await archiveStorage(ref.path, ref.path);
      if (await storage.has('index.json')) return layoutReferrers(storage, `oci-archive:${ref.path}`, subject);
      return { via: 'none', manifests: [], content: () => Promise.reject(new ImgbuildError('referrers', `${ref.path}: a docker-archive holds no referrers`)) };
    }
  }
}

/** An OCI layout's referrers of `subject`: the index its index.json names `sha256-<hex>`, else an archive's in blobs/ (layout-referrers.ts). */
async function layoutReferrers(storage: MemberStorage, source: string, subject: Digest): Promise<ImageReferrers> {
  const blob = (d: string) => `blobs/sha256/${digestHex(d as Digest)}`;
  const read = async (d: string, what: string): Promise<Buffer> => {
    if (!(await storage.has(blob(d)))) throw new ImageReadError(source, `${what} ${d} is missing`);
    const bytes = await storage.read(blob(d));
    if (sha256Digest(bytes) !== d) throw new ImageReadError(source, `${what} ${d} does not hash to its name`);
    return bytes;
  };
  const manifests = await referrerDescriptors(storage, source, subject);
  return {
    via: 'layout',
    manifests,
    content: async (d) => {
      const m = parseDocument(source, `referrer ${d.digest}`, ManifestSchema, await read(d.digest, 'referrer manifest'));
      const layer = m.layers[0];
      if (!layer || m.layers.length !== 1) throw new ImageReadError(source, `referrer ${d.digest} is not an artifact with one layer`);
      if (layer.size > MAX_REFERRER_BLOB) throw new ImageReadError(source, `referrer ${d.digest}: its blob is ${layer.size} bytes, more than ${MAX_REFERRER_BLOB}`);
      return { mediaType: layer.mediaType, bytes: await read(layer.digest, 'referrer blob') };
    },
  };
}

/**
 * Push referrer artifacts to the repository of `reference` (after their subjects), each through
 * the referrers API or tag schema. `signal` stops it (the promise rejects with its reason; what
 * is under way is aborted): an artifact already pushed stays.
 */
export async function pushReferrers(client: RegistryClient, reference: { registry: string; repository: string }, artifacts: readonly import('../../oci/referrers.js').ReferrerArtifact[], options: { signal?: AbortSignal } = {}): Promise<{ digest: Digest; subject: Digest; via: 'api' | 'tag'; indexUpdated: boolean }[]> {
  checkClient('pushReferrers', client);
  if (typeof reference !== 'object' || reference === null || typeof reference.registry !== 'string' || typeof reference.repository !== 'string') {
    throw argumentError('pushReferrers', `the reference must be { registry, repository }, got ${describeValue(reference)}`, 'pass the repository of the pushed image: pushReferrers(client, { registry: pushed.reference.registry, repository: pushed.reference.repository }, artifacts) (or parseReference(ref))');
  }
  if (!Array.isArray(artifacts)) throw argumentError('pushReferrers', `the artifacts must be an array, got ${describeValue(artifacts)}`, 'pass the referrer artifacts of buildSboms(): (await buildSboms(build, formats)).map((s) => s.artifact)');
  checkOptions('pushReferrers', options, { signal: 'signal' });
  const { signal } = options;
  return abortable(signal, async () => {
    const { pushReferrer } = await import('../../registry-client/index.js');
    const out = [];
    for (const a of artifacts) {
      signal?.throwIfAborted();
      const r = await withCode(() => pushReferrer(client, reference, a, signal ? { signal } : {}));
      out.push({ ...r, subject: a.subject.digest });
    }
    return out;
  });
}
