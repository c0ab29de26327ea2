import { createWriteStream } from 'node:fs';
import { digestHex } from '../../oci/digest.js';
import type { Image, Index } from '../model/image.js';
import { writeArchive, type ArchiveMember } from './archive-tar.js';
import { IMAGE_ARCHIVE, writeFileAtomically } from './atomic.js';
import { layoutReferrers } from './layout-referrers.js';
import { artifactBlobs, ociIndexJson, ociLayoutFile, type LayoutNaming, type WriteOptions } from './oci-layout.js';
import { openBlob } from './blob-source.js';
import { checkWriteArguments } from '../arguments.js';

/**
 * The members of an OCI archive: the OCI layout directory as a tar (what `skopeo copy
 * oci-archive:` and `podman load` read). Its index.json names the image alone, referrers or not:
 * those tools take the only entry, and refuse a second (layout-referrers.ts).
 */
async function ociArchiveMembers(image: Image | Index, naming: LayoutNaming): Promise<ArchiveMember[]> {
  const referrers = layoutReferrers(naming.referrers ?? [], { listed: false });
  const all = new Map([...referrers.blobs, ...(await artifactBlobs(image))].map((b) => [b.digest, b]));
  const blobs = [...all.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  return [
    { name: 'blobs/', kind: 'directory' },
    { name: 'blobs/sha256/', kind: 'directory' },
    ...blobs.map((b): ArchiveMember => ({ name: `blobs/sha256/${digestHex(b.digest)}`, kind: 'stream', size: b.size, open: () => openBlob(b) })),
    { name: 'index.json', kind: 'bytes', data: Buffer.from(ociIndexJson(image, naming)) },
    { name: 'oci-layout', kind: 'bytes', data: Buffer.from(ociLayoutFile) },
  ];
}

export async function writeOciArchive(image: Image | Index, outFile: string, naming: LayoutNaming = {}, options: WriteOptions = {}): Promise<void> {
  checkWriteArguments('writeOciArchive', image, 'image-or-index', { path: outFile }, naming, options);
  return writeFileAtomically(outFile, IMAGE_ARCHIVE, async (temp) => {
    await writeArchive(await ociArchiveMembers(image, naming), createWriteStream(temp, { flags: 'wx' }), options.signal);
    // The last look at the signal before the rename: an interrupt seen here leaves nothing written.
    options.signal?.throwIfAborted();
  });
}
