import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { canonicalJson } from '../../oci/canonical-json.js';
import { digestHex } from '../../oci/digest.js';
import type { BlobStore } from '../blobs/blob-store.js';
import type { BuiltImage } from '../image/types.js';
import { writeArchive, type ArchiveMember } from './archive-tar.js';
import { writeFileAtomically } from './atomic.js';
import { imageBlobs, ociIndexJson, ociLayoutFile } from './oci-layout.js';

/** The members of an OCI archive: the OCI layout directory as a tar (what `skopeo copy oci-archive:` reads). */
function ociArchiveMembers(image: BuiltImage, store: BlobStore): ArchiveMember[] {
  const blobs = [...new Set(imageBlobs(image))].sort();
  return [
    { name: 'blobs/', kind: 'directory' },
    { name: 'blobs/sha256/', kind: 'directory' },
    ...blobs.map((d): ArchiveMember => ({ name: `blobs/sha256/${digestHex(d)}`, kind: 'stream', size: blobSize(image, d), open: () => store.open(d) })),
    { name: 'index.json', kind: 'bytes', data: Buffer.from(ociIndexJson(image)) },
    { name: 'oci-layout', kind: 'bytes', data: Buffer.from(ociLayoutFile) },
  ];
}

/**
 * The members of a docker-archive (`docker save` format, what `docker load`/`podman load` and
 * `skopeo copy docker-archive:` read): layers first, then the config, then manifest.json, so
 * the archive can be produced as a stream. Layer files hold the layer blobs as they are (gzip or
 * not): docker and podman detect the compression.
 */
function dockerArchiveMembers(image: BuiltImage, store: BlobStore): ArchiveMember[] {
  const layerFiles = image.layers.map((l) => `${digestHex(l.digest)}.tar`);
  const configFile = `${digestHex(image.configDescriptor.digest)}.json`;
  const manifestJson = canonicalJson([{ Config: configFile, RepoTags: [`${image.name}:${image.tag}`], Layers: layerFiles }]);
  const seen = new Set<string>();
  const members: ArchiveMember[] = [];
  image.layers.forEach((l, i) => {
    const name = layerFiles[i]!;
    if (seen.has(name)) return;
    seen.add(name);
    members.push({ name, kind: 'stream', size: l.size, open: () => store.open(l.digest) });
  });
  members.push({ name: configFile, kind: 'bytes', data: image.config });
  members.push({ name: 'manifest.json', kind: 'bytes', data: Buffer.from(manifestJson) });
  return members;
}

function blobSize(image: BuiltImage, digest: string): number {
  if (digest === image.configDescriptor.digest) return image.configDescriptor.size;
  if (digest === image.manifestDescriptor.digest) return image.manifestDescriptor.size;
  const layer = image.layers.find((l) => l.digest === digest);
  if (!layer) throw new Error(`blob ${digest} is not part of the image`);
  return layer.size;
}

export function streamDockerArchive(image: BuiltImage, store: BlobStore, out: Writable): Promise<void> {
  return writeArchive(dockerArchiveMembers(image, store), out);
}

export function writeDockerArchive(image: BuiltImage, store: BlobStore, outFile: string): Promise<void> {
  return writeFileAtomically(outFile, (temp) => writeArchive(dockerArchiveMembers(image, store), createWriteStream(temp, { flags: 'wx' })));
}

export function writeOciArchive(image: BuiltImage, store: BlobStore, outFile: string): Promise<void> {
  return writeFileAtomically(outFile, (temp) => writeArchive(ociArchiveMembers(image, store), createWriteStream(temp, { flags: 'wx' })));
}
