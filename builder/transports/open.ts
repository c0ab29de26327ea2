import { statSync } from 'node:fs';
import type { RegistryClient } from '../../registry-client/index.js';
import { ImgbuildError } from '../errors.js';
import { ImageReadError, imageForPlatform, type PlatformWanted } from '../model/complete.js';
import type { Image, Index } from '../model/image.js';
import { archiveStorage, readDockerArchive } from './docker-archive.js';
import { formatImageRef, parseImageRef, type ImageRef, type ParseImageRefOptions } from './image-ref.js';
import { directoryStorage, type MemberStorage } from './member-storage.js';
import { cappedStorage, checkLayout } from './layout-checks.js';
import { readOci } from './oci-read.js';
import { abortable } from '../settle-all.js';
import { checkImageArgument, checkOptions } from '../arguments.js';

export interface OpenImageOptions extends ParseImageRefOptions {
  /** How to reach a registry, for `docker://` images: a client, or a function making one when one is named. */
  registry?: RegistryClient | (() => Promise<RegistryClient>);
  /** Which image of an index (a multi-platform image, a layout holding several). */
  platform?: PlatformWanted;
  /**
   * Stops the open: the promise rejects with the signal's reason at once, and the registry
   * requests under way are aborted. For a registry image it also governs the requests that open
   * an index's images later; a layer's bytes are read under the signal of what reads them
   * (`layerFiles`, `diffImages`, a writer's or a push's).
   */
  signal?: AbortSignal;
}

/** Open an image argument (see ImageRef) as an Image or an Index, whatever transport it names. */
export async function openArtifact(arg: string | ImageRef, options: OpenImageOptions = {}): Promise<Image | Index> {
  checkImageArgument('openArtifact', arg);
  checkOptions('openArtifact', options, { signal: 'signal', registry: 'registry' });
  return abortable(options.signal, () => openArtifactNow(arg, options));
}

async function openArtifactNow(arg: string | ImageRef, options: OpenImageOptions): Promise<Image | Index> {
  const ref = typeof arg === 'string' ? parseImageRef(arg, options) : arg;
  const shown = formatImageRef(ref);
  switch (ref.transport) {
    case 'docker': {
      if (!options.registry) throw new ImgbuildError('image-ref', `${shown}: a registry image, and no registry client was given`, 'pass `registry` in the options (a RegistryClient from imgbuild/registry-client)');
      // Loaded here so that local images never load the HTTP client.
      const { readRegistryImage } = await import('./registry.js');
      const client = typeof options.registry === 'function' ? await options.registry() : options.registry;
      return readRegistryImage(client, ref.reference, options.signal ? { signal: options.signal } : {});
    }
    case 'oci':
      if (!(await isDirectory(ref.path))) throw new ImageReadError(shown, 'not a directory: an OCI layout is a directory', 'for an archive write oci-archive:<file>');
      return readLayout(directoryStorage(ref.path), shown, ref.tag);
    case 'oci-archive':
    case 'docker-archive': {
      if (await isDirectory(ref.path)) throw new ImageReadError(shown, 'is a directory, not an archive', 'for an OCI layout directory write oci:<dir>');
      const storage = cappedStorage(await archiveStorage(ref.path, shown), shown);
      if (ref.transport === 'oci-archive') return readLayout(storage, shown, ref.tag);
      return readDockerArchive(storage, shown, ref.name);
    }
    case 'local': {
      // A bare path: the kind is told apart by content.
      if (await isDirectory(ref.path)) return readLayout(directoryStorage(ref.path), `oci:${ref.path}`, undefined);
      const storage = cappedStorage(await archiveStorage(ref.path, ref.path), ref.path);
      if ((await storage.has('oci-layout')) && (await storage.has('index.json'))) return readLayout(storage, `oci-archive:${ref.path}`, undefined);
      if (await storage.has('manifest.json')) return readDockerArchive(storage, `docker-archive:${ref.path}`, undefined);
      throw new ImageReadError(ref.path, 'neither an OCI layout, an OCI archive nor a docker-archive (no oci-layout or manifest.json)');
    }
  }
}

/** An OCI layout (a directory's or an archive's), its metadata checked first (layout-checks.ts), its documents read capped. */
async function readLayout(storage: MemberStorage, source: string, tag: string | undefined): Promise<Image | Index> {
  const capped = cappedStorage(storage, source);
  await checkLayout(capped, source);
  return readOci(capped, source, tag);
}

/** Open an image argument as one Image: of an index, the one for `options.platform` (or its only one). */
export async function openImage(arg: string | ImageRef, options: OpenImageOptions = {}): Promise<Image> {
  checkImageArgument('openImage', arg);
  checkOptions('openImage', options, { signal: 'signal', registry: 'registry' });
  return abortable(options.signal, async () => imageForPlatform(await openArtifactNow(arg, options), options.platform));
}

// Synchronous, as member-storage.ts's directory reads: no node:fs/promises to load for a push.
async function isDirectory(path: string): Promise<boolean> {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
