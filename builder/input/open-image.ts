import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { DigestingStream, digestHex, isDigest, sha256Digest, type Digest } from '../../oci/digest.js';
import { Annotation, MediaType, isIndexMediaType } from '../../oci/media-types.js';
import { ImageConfigSchema, IndexSchema, ManifestSchema, type Descriptor, type ImageConfig, type Manifest } from '../../oci/schemas.js';
import { ImgbuildError } from '../errors.js';
import { indexTar, type TarMember } from './tar-index.js';

export type ImageKind = 'oci' | 'oci-archive' | 'docker-archive';

/** An image read from disk: its documents, and its blobs as streams. */
export interface ImageHandle {
  /** What was opened, for messages (`oci:./hello.oci`). */
  source: string;
  kind: ImageKind;
  manifest: Manifest;
  manifestBytes: Buffer;
  manifestDigest: Digest;
  config: ImageConfig;
  configBytes: Buffer;
  /** `name:tag` references the image carries (index annotations or docker RepoTags). */
  refs: string[];
  openBlob(digest: string): Readable;
}

export class ImageReadError extends ImgbuildError {
  override name = 'ImageReadError';
  constructor(source: string, message: string, hint?: string) {
    super('image-read', `${source}: ${message}`, hint);
  }
}

const DockerArchiveManifest = z.array(z.object({ Config: z.string(), RepoTags: z.array(z.string()).nullish(), Layers: z.array(z.string()) }).loose()).min(1);

/** Open an OCI layout directory, an OCI archive or a docker-archive, telling them apart by content. */
export async function openImage(path: string): Promise<ImageHandle> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new ImageReadError(path, 'no such file or directory');
  if (st.isDirectory()) {
    const readMember = (name: string) => readFile(join(path, name));
    return openOci(`oci:${path}`, 'oci', readMember, (hex) => createReadStream(join(path, 'blobs', 'sha256', hex)));
  }
  const members = await indexTar(path).catch((e: Error) => {
    throw new ImageReadError(path, `not a tar archive (${e.message})`);
  });
  const readMember = (name: string) => readTarMember(path, members, name);
  const openMember = (name: string) => {
    const m = members.get(name);
    if (!m) throw new ImageReadError(path, `archive has no member ${name}`);
    return m.size === 0 ? emptyStream(path) : createReadStream(path, { start: m.offset, end: m.offset + m.size - 1 });
  };
  if (members.has('oci-layout') && members.has('index.json')) {
    return openOci(`oci-archive:${path}`, 'oci-archive', readMember, (hex) => openMember(`blobs/sha256/${hex}`));
  }
  if (members.has('manifest.json')) return openDockerArchive(path, readMember, openMember);
  throw new ImageReadError(path, 'neither an OCI layout, an OCI archive nor a docker-archive (no oci-layout or manifest.json)');
}

async function openOci(
  source: string,
  kind: ImageKind,
  readMember: (name: string) => Promise<Buffer>,
  openHex: (hex: string) => Readable,
): Promise<ImageHandle> {
  const index = parseJson(source, 'index.json', IndexSchema, await readMember('index.json').catch(() => missing(source, 'index.json')));
  const blob = async (d: string) => readMember(`blobs/sha256/${hexOf(source, d)}`).catch(() => missing(source, `blob ${d}`));
  let desc = pickManifest(source, index.manifests);
  let bytes = await blob(desc.digest);
  while (isIndexMediaType(desc.mediaType)) {
    desc = pickManifest(source, parseJson(source, desc.digest, IndexSchema, bytes).manifests);
    bytes = await blob(desc.digest);
  }
  const manifest = parseJson(source, desc.digest, ManifestSchema, bytes);
  const configBytes = await blob(manifest.config.digest);
  return {
    source,
    kind,
    manifest,
    manifestBytes: bytes,
    manifestDigest: sha256Digest(bytes),
    config: parseJson(source, manifest.config.digest, ImageConfigSchema, configBytes),
    configBytes,
    refs: index.manifests.map((m) => m.annotations?.[Annotation.refName]).filter((r): r is string => !!r),
    openBlob: (d) => openHex(hexOf(source, d)),
  };
}

async function openDockerArchive(
  path: string,
  readMember: (name: string) => Promise<Buffer>,
  openMember: (name: string) => Readable,
): Promise<ImageHandle> {
  const source = `docker-archive:${path}`;
  const entry = parseJson(source, 'manifest.json', DockerArchiveManifest, await readMember('manifest.json'))[0]!;
  const configBytes = await readMember(entry.Config).catch(() => missing(source, entry.Config));
  const config = parseJson(source, entry.Config, ImageConfigSchema, configBytes);
  // A docker-archive names layers by file, not digest: hash each one to describe it.
  const byDigest = new Map<string, string>();
  const layers: Descriptor[] = [];
  for (const file of entry.Layers) {
    const { digest, size, gzip } = await describeStream(openMember(file));
    byDigest.set(digest, file);
    layers.push({ mediaType: gzip ? MediaType.ociLayerGzip : MediaType.ociLayer, digest, size });
  }
  const configDigest = sha256Digest(configBytes);
  byDigest.set(configDigest, entry.Config);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configBytes.length },
    layers,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return {
    source,
    kind: 'docker-archive',
    manifest,
    manifestBytes,
    manifestDigest: sha256Digest(manifestBytes),
    config,
    configBytes,
    refs: entry.RepoTags ?? [],
    openBlob: (d) => {
      const file = byDigest.get(d);
      if (!file) throw new ImageReadError(source, `no blob ${d}`);
      return openMember(file);
    },
  };
}

async function describeStream(s: Readable): Promise<{ digest: Digest; size: number; gzip: boolean }> {
  const hasher = new DigestingStream();
  let first: Buffer | undefined;
  await pipeline(
    s,
    hasher,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        first ??= chunk;
        cb();
      },
    }),
  );
  return { digest: hasher.digest(), size: hasher.size, gzip: first !== undefined && first[0] === 0x1f && first[1] === 0x8b };
}

function pickManifest(source: string, manifests: Descriptor[]): Descriptor {
  if (manifests.length === 1) return manifests[0]!;
  const linux = manifests.filter((m) => !m.platform || (m.platform.os === 'linux' && m.platform.architecture === goArch()));
  if (linux.length >= 1 && manifests.some((m) => m.platform)) return linux[0]!;
  throw new ImageReadError(source, `index lists ${manifests.length} manifests; expected exactly one`);
}

function goArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
}

function hexOf(source: string, d: string): string {
  if (!isDigest(d)) throw new ImageReadError(source, `unsupported digest ${d} (only sha256)`);
  return digestHex(d);
}

function parseJson<T>(source: string, what: string, schema: z.ZodType<T>, bytes: Buffer): T {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new ImageReadError(source, `${what} is not JSON: ${(e as Error).message}`);
  }
  const r = schema.safeParse(value);
  if (!r.success) throw new ImageReadError(source, `${what} is not valid: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

function missing(source: string, what: string): never {
  throw new ImageReadError(source, `${what} is missing`);
}

async function readTarMember(path: string, members: Map<string, TarMember>, name: string): Promise<Buffer> {
  const m = members.get(name);
  if (!m) throw new ImageReadError(path, `archive has no member ${name}`);
  const chunks: Buffer[] = [];
  if (m.size === 0) return Buffer.alloc(0);
  for await (const c of createReadStream(path, { start: m.offset, end: m.offset + m.size - 1 })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function emptyStream(_path: string): Readable {
  return Readable.from([]);
}
