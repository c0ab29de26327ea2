import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import type { ImageConfig, Manifest } from '../../oci/schemas.js';
import { ImgbuildError } from '../errors.js';
import { openImage, type ImageHandle } from '../input/open-image.js';

/**
 * What `diff` and `verify` need from an image, wherever it lives: its two documents and its blobs
 * as streams. An ImageHandle from openImage (OCI layout, OCI archive, docker-archive) is one; a
 * registry image is another (given by a `RemoteImageOpener`, so this module does not depend on
 * the registry client).
 */
export interface ImageSource {
  /** For messages: `oci:./hello.oci`, `docker://ghcr.io/acme/app@sha256:...`. */
  source: string;
  manifest: Manifest;
  manifestBytes: Buffer;
  manifestDigest: Digest;
  config: ImageConfig;
  configBytes: Buffer;
  openBlob(digest: string): Readable;
}

/** Opens `docker://<ref>` (or a bare registry reference) as an ImageSource. */
export type RemoteImageOpener = (reference: string) => Promise<ImageSource>;

export interface OpenSourceOptions {
  remote?: RemoteImageOpener;
}

const localPrefixes = ['oci:', 'oci-archive:', 'docker-archive:'] as const;

/**
 * An image named the way skopeo names them: `oci:<dir>`, `oci-archive:<file>`,
 * `docker-archive:<file>`, a plain path (kind told apart by content), or `docker://<ref>` for a
 * registry (needs `options.remote`). An `oci:` name may end in `:<tag>`, which is ignored when the
 * layout holds one image.
 */
export async function openImageSource(name: string, options: OpenSourceOptions = {}): Promise<ImageSource> {
  if (name.startsWith('docker://')) return openRemote(name.slice('docker://'.length), name, options);
  for (const prefix of localPrefixes) {
    if (!name.startsWith(prefix)) continue;
    const path = await existingPath(name.slice(prefix.length));
    if (!path) throw new ImgbuildError('image-read', `${name}: no such file or directory`);
    return checkKind(await openImage(path), prefix.slice(0, -1) as ImageHandle['kind'], name);
  }
  if (await existingPath(name)) return openImage(name);
  if (looksLikeReference(name)) return openRemote(name, `docker://${name}`, options);
  throw new ImgbuildError('image-read', `${name}: no such file or directory`, 'name an OCI layout directory, an OCI archive, a docker-archive, or a registry image as docker://<registry>/<repo>@sha256:<digest>');
}

async function openRemote(ref: string, shown: string, options: OpenSourceOptions): Promise<ImageSource> {
  if (!options.remote) throw new ImgbuildError('image-read', `${shown}: registry images cannot be opened here yet`, 'pull it first: skopeo copy docker://<ref> oci:<dir>, then name the directory');
  return options.remote(ref);
}

/** The path, or `path` without a trailing `:<tag>` (skopeo's `oci:<dir>:<tag>`), when it exists. */
async function existingPath(p: string): Promise<string | undefined> {
  if (await stat(p).then(() => true, () => false)) return p;
  const colon = p.lastIndexOf(':');
  if (colon > 0 && (await stat(p.slice(0, colon)).then(() => true, () => false))) return p.slice(0, colon);
  return undefined;
}

const kindLabel: Record<ImageHandle['kind'], string> = { oci: 'an OCI layout', 'oci-archive': 'an OCI archive', 'docker-archive': 'a docker-archive' };

function checkKind(img: ImageHandle, want: ImageHandle['kind'], name: string): ImageHandle {
  if (img.kind !== want) throw new ImgbuildError('image-read', `${name}: this is ${kindLabel[img.kind]}, not ${kindLabel[want]}`);
  return img;
}

/** `host[:port]/repo[:tag|@digest]` — a name with a registry host, as CI passes a pushed digest. */
function looksLikeReference(name: string): boolean {
  return /^[a-z0-9.-]+(:\d+)?\/[a-z0-9._/-]+(:[\w.-]+)?(@sha256:[a-f0-9]{64})?$/.test(name) && /[.:]/.test(name.split('/')[0]!);
}
