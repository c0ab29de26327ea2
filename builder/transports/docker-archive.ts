import { createWriteStream } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { checkWriteArguments } from '../arguments.js';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable as WritableStream } from 'node:stream';
import * as z from 'zod/mini';
import { canonicalJson } from '../../oci/canonical-json.js';
import { DigestingStream, digestHex, sha256Digest, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { Manifest } from '../../oci/schemas.js';
import { completeImage, ImageReadError, parseDocument } from '../model/complete.js';
import { splitRef, type Image } from '../model/image.js';
import { writeArchive, type ArchiveMember } from './archive-tar.js';
import { IMAGE_ARCHIVE, writeFileAtomically } from './atomic.js';
import { openBlob } from './blob-source.js';
import type { WriteOptions } from './oci-layout.js';
import { isZstd } from '../layer/zstd-decompress.js';
import { gzipTarStorage } from './gzip-tar-storage.js';
import { nonRegularKind, tarStorage, type MemberStorage } from './member-storage.js';

// zod/mini, as oci/schemas.ts. Every push loads this module (transports/open.ts): the schema is
// made when a docker-archive is first read (making it cost a push of a layout ~0.5 ms of CPU).
const dockerArchiveManifest = () => z.array(z.looseObject({ Config: z.string(), RepoTags: z.nullish(z.array(z.string())), Layers: z.array(z.string()) })).check(z.minLength(1));
let madeDockerArchiveManifest: ReturnType<typeof dockerArchiveManifest> | undefined;
type Entry = z.infer<ReturnType<typeof dockerArchiveManifest>>[number];

/** Whether a file starts with gzip's magic bytes. */
export async function isGzipFile(path: string): Promise<boolean> {
  const fh = await openFile(path, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** A tar archive's members, whether the tar is plain or gzipped. It must be a regular file: an archive is read by seeking. */
export async function archiveStorage(path: string, source: string): Promise<MemberStorage & { digestOf?(name: string): Digest | undefined }> {
  const kind = nonRegularKind(path);
  if (kind) {
    throw new ImageReadError(source, `is ${kind}, not a regular file: an archive is read by seeking in it, so it must be a seekable (regular) file`, `save it to a file first (cat … > image.tar, or build -o image.tar) and name that file`);
  }
  return (await isGzipFile(path)) ? gzipTarStorage(path, source) : tarStorage(path, source);
}

/**
 * The image of a docker-archive (`docker save`, dockerTools' buildImage/buildLayeredImage, gzipped
 * or not). One holding several images needs `name` (`name:tag`, as RepoTags list it; dockerTools'
 * fromImageName/fromImageTag) and lists what it holds when it is missing or matches none.
 */
export async function readDockerArchive(storage: MemberStorage & { digestOf?(name: string): Digest | undefined }, source: string, name?: string): Promise<Image> {
  if (!(await storage.has('manifest.json'))) throw new ImageReadError(source, 'manifest.json is missing: not a docker-archive');
  const entries = parseDocument(source, 'manifest.json', (madeDockerArchiveManifest ??= dockerArchiveManifest()), await storage.read('manifest.json'));
  const entry = pickEntry(entries, source, name);
  if (!(await storage.has(entry.Config))) throw new ImageReadError(source, `config ${entry.Config} is missing`);
  const configBytes = await storage.read(entry.Config);
  // A docker-archive names layers by file, not digest: each one is hashed to describe it (the
  // gzip index pass hashed them already).
  const byDigest = new Map<Digest, string>();
  const layers: Manifest['layers'] = [];
  for (const file of entry.Layers) {
    if (!(await storage.has(file))) throw new ImageReadError(source, `layer ${file} is missing`);
    const { digest, size, gzip, zstd } = await describe(storage, file);
    byDigest.set(digest, file);
    layers.push({ mediaType: gzip ? MediaType.ociLayerGzip : zstd ? MediaType.ociLayerZstd : MediaType.ociLayer, digest, size });
  }
  const configDigest = sha256Digest(configBytes);
  byDigest.set(configDigest, entry.Config);
  const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configBytes.length }, layers };
  return completeImage({
    source,
    // Key order as imgbuild has always written it, so a docker-archive keeps its manifest digest.
    manifestBytes: Buffer.from(JSON.stringify(manifest)),
    configBytes,
    refs: entry.RepoTags ?? [],
    openBlob: (digest) => {
      const file = byDigest.get(digest);
      if (!file) throw new ImageReadError(source, `no blob ${digest}`);
      return storage.open(file);
    },
  });
}

function pickEntry(entries: Entry[], source: string, name: string | undefined): Entry {
  const all = entries.flatMap((e) => e.RepoTags ?? []);
  if (name === undefined) {
    if (entries.length === 1) return entries[0]!;
    throw new ImageReadError(source, `the archive holds ${entries.length} images: ${all.join(', ') || '(untagged)'}`, `pick one: docker-archive:${source.replace(/^docker-archive:/, '')}:<name>:<tag>`);
  }
  const wanted = normaliseName(name);
  const found = entries.filter((e) => (e.RepoTags ?? []).some((t) => normaliseName(t) === wanted));
  if (found.length === 1) return found[0]!;
  throw new ImageReadError(source, `no image named ${name}; the archive holds ${all.join(', ') || '(untagged images only)'}`);
}

/** `name` with `:latest` when it has no tag, and without Docker Hub's implied prefixes. */
function normaliseName(name: string): string {
  const { name: n, tag } = splitRef(name);
  const bare = (n ?? tag).replace(/^(docker\.io\/)?(library\/)?/, '');
  return `${bare}:${n ? tag : 'latest'}`;
}

async function describe(storage: MemberStorage & { digestOf?(name: string): Digest | undefined }, file: string): Promise<{ digest: Digest; size: number; gzip: boolean; zstd: boolean }> {
  let first: Buffer | undefined;
  const known = storage.digestOf?.(file);
  if (known) {
    for await (const c of storage.open(file)) {
      first = c as Buffer;
      break;
    }
    return { digest: known, size: (await storage.size(file))!, gzip: isGzip(first), zstd: first !== undefined && isZstd(first) };
  }
  const hasher = new DigestingStream();
  await pipeline(
    storage.open(file),
    hasher,
    new WritableStream({
      write(chunk: Buffer, _e, cb) {
        first ??= chunk;
        cb();
      },
    }),
  );
  return { digest: hasher.digest(), size: hasher.size, gzip: isGzip(first), zstd: first !== undefined && isZstd(first) };
}

function isGzip(b: Buffer | undefined): boolean {
  return b !== undefined && b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

export interface ArchiveNaming {
  /** `name:tag` written as the image's RepoTags; default the image's first ref. */
  ref?: string;
}

/**
 * The members of a docker-archive (`docker save` format, what `docker load`/`podman load` and
 * `skopeo copy docker-archive:` read): layers first, then the config, then manifest.json, so
 * the archive can be produced as a stream. Layer files hold the layer blobs as they are (gzip or
 * not): docker and podman detect the compression.
 */
function dockerArchiveMembers(image: Image, naming: ArchiveNaming): ArchiveMember[] {
  const layerFiles = image.layers.map((l) => `${digestHex(l.digest)}.tar`);
  const configFile = `${digestHex(image.configDescriptor.digest)}.json`;
  const ref = naming.ref ?? image.refs[0];
  const manifestJson = canonicalJson([{ Config: configFile, RepoTags: ref ? [ref] : [], Layers: layerFiles }]);
  const seen = new Set<string>();
  const members: ArchiveMember[] = [];
  image.layers.forEach((l, i) => {
    const name = layerFiles[i]!;
    if (seen.has(name)) return;
    seen.add(name);
    members.push({ name, kind: 'stream', size: l.size, open: () => openBlob(l) });
  });
  members.push({ name: configFile, kind: 'bytes', data: image.configBytes });
  members.push({ name: 'manifest.json', kind: 'bytes', data: Buffer.from(manifestJson) });
  return members;
}

/** `--stream`: the docker-archive to a stream (stdout), for `| docker load`. */
export async function streamDockerArchive(image: Image, out: Writable, naming: ArchiveNaming = {}, options: WriteOptions = {}): Promise<void> {
  checkWriteArguments('streamDockerArchive', image, 'image', { stream: out }, naming, options);
  return writeArchive(dockerArchiveMembers(image, naming), out, options.signal);
}

export async function writeDockerArchive(image: Image, outFile: string, naming: ArchiveNaming = {}, options: WriteOptions = {}): Promise<void> {
  checkWriteArguments('writeDockerArchive', image, 'image', { path: outFile }, naming, options);
  return writeFileAtomically(outFile, IMAGE_ARCHIVE, async (temp) => {
    await writeArchive(dockerArchiveMembers(image, naming), createWriteStream(temp, { flags: 'wx' }), options.signal);
    // The last look at the signal before the rename: an interrupt seen here leaves nothing written.
    options.signal?.throwIfAborted();
  });
}
