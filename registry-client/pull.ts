import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import { type RegistryClient, type RepositoryRef } from './client.js';
import { DigestMismatchError, PlatformNotFoundError, RegistryContentError, RegistryError, RegistryNetworkError, ResponseCutShortError } from './errors.js';
import type { ImageReference } from './reference.js';
import { backoffDelay, blobDeadlineMs, describeError, formatMs, isNetworkError, isTimeout, protocolError, sleep, TIMEOUT_HINT, TimeoutError } from './retry.js';
import { Transform } from 'node:stream';
import { choosePlatform, formatPlatform, hostPlatform, type PlatformWanted } from './platform.js';
import { timerDelay } from './timer.js';
import { DigestingStream, digestHex, isDigest, type Digest } from '../oci/digest.js';
import { isIndexMediaType, MediaType } from '../oci/media-types.js';
import { ImageConfigSchema, IndexSchema, ManifestSchema, type Descriptor, type ImageConfig, type Manifest } from '../oci/schemas.js';

export interface ResolvedImage {
  /** The platform manifest's digest (what its layers hang from). */
  digest: Digest;
  mediaType: string;
  manifest: Manifest;
  manifestBytes: Buffer;
  /** Set when the reference named an index and we picked one platform from it. */
  index?: { digest: Digest; mediaType: string; bytes: Buffer };
}

export interface PullOptions {
  /** The content-addressed directory blobs go into: `<blobDir>/sha256/<hex>` (an OCI layout's `blobs/`). */
  blobDir: string;
  /** Default: the host's (linux/amd64 on x64). */
  platform?: PlatformWanted;
  /** Download layers too (default true); false fetches manifest and config only. */
  layers?: boolean;
  concurrency?: number;
}

export interface PullResult extends ResolvedImage {
  config: ImageConfig;
  configBytes: Buffer;
  configDescriptor: Descriptor;
  /** The layers as the manifest lists them (digests unchanged: reuse them as they are). */
  layers: Descriptor[];
  /** Blobs fetched now vs already in blobDir. */
  downloaded: number;
  cached: number;
}

/**
 * Resolve a reference to one image manifest: GET it (every manifest type in Accept), and if it
 * is an index, pick the entry for `platform` and GET that by digest.
 */
export async function resolveImage(client: RegistryClient, ref: ImageReference, platform: PlatformWanted = hostPlatform()): Promise<ResolvedImage> {
  const repo = { registry: ref.registry, repository: ref.repository };
  const top = await client.getManifest(repo, ref.target);
  if (isIndexMediaType(top.mediaType)) {
    const index = parseDoc(IndexSchema, top.bytes, `index ${ref.toString()}`);
    const entry = choosePlatform(index.manifests, platform);
    if (!entry) throw new PlatformNotFoundError(ref.toString(), formatPlatform(platform), index.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform)));
    if (!isDigest(entry.digest)) throw new RegistryContentError(`index ${ref.toString()}: entry digest ${entry.digest} is not sha256`);
    const m = await client.getManifest(repo, entry.digest);
    if (isIndexMediaType(m.mediaType)) throw new RegistryContentError(`${ref.toString()}: the ${formatPlatform(platform)} entry is another index; nested indexes are not supported`);
    return { ...imageManifest(m, ref), index: { digest: top.digest, mediaType: top.mediaType, bytes: top.bytes } };
  }
  return imageManifest(top, ref);
}

function imageManifest(m: { bytes: Buffer; mediaType: string; digest: Digest }, ref: ImageReference): ResolvedImage {
  if (m.mediaType !== MediaType.ociManifest && m.mediaType !== MediaType.dockerManifest) {
    throw new RegistryContentError(`${ref.toString()}: unsupported manifest type ${JSON.stringify(m.mediaType)} (expected an OCI or Docker v2 schema 2 manifest)`);
  }
  const manifest = parseDoc(ManifestSchema, m.bytes, `manifest ${ref.toString()}`);
  return { digest: m.digest, mediaType: m.mediaType, manifest, manifestBytes: m.bytes };
}

function parseDoc<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, bytes: Buffer, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryContentError(`${what}: not JSON`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new RegistryContentError(`${what}: ${first ? `${first.path.map(String).join('.') || '(top)'}: ${first.message}` : 'invalid'}`);
  }
  return r.data;
}

/**
 * Pull an image for one platform into `blobDir`: manifest (and index), config and layers, each
 * verified against its digest and size while it streams to a temp file, then renamed into place.
 * Blobs already in `blobDir` are not fetched again.
 */
export async function pullImage(client: RegistryClient, ref: ImageReference, options: PullOptions): Promise<PullResult> {
  const resolved = await resolveImage(client, ref, options.platform ?? hostPlatform());
  const repo = { registry: ref.registry, repository: ref.repository };
  const { manifest } = resolved;
  await writeBlobBytes(options.blobDir, resolved.digest, resolved.manifestBytes);
  if (resolved.index) await writeBlobBytes(options.blobDir, resolved.index.digest, resolved.index.bytes);

  let downloaded = 0;
  let cached = 0;
  const fetchOne = async (d: Descriptor) => {
    if (await downloadBlob(client, repo, d, options.blobDir)) downloaded++;
    else cached++;
  };
  await fetchOne(manifest.config);
  const configBytes = await readFile(blobPath(options.blobDir, manifest.config.digest as Digest));
  const config = parseDoc(ImageConfigSchema, configBytes, `config ${manifest.config.digest} of ${ref.toString()}`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new RegistryContentError(`${ref.toString()}: the config lists ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`);
  }
  if (options.layers !== false) {
    const limit = pLimit(Math.max(1, options.concurrency ?? 4));
    await Promise.all(manifest.layers.map((l) => limit(() => fetchOne(l))));
  }
  return { ...resolved, config, configBytes, configDescriptor: manifest.config, layers: manifest.layers, downloaded, cached };
}

/** Where a blob lives in a content-addressed dir. */
export function blobPath(blobDir: string, digest: Digest): string {
  return join(blobDir, 'sha256', digestHex(digest));
}

async function writeBlobBytes(blobDir: string, digest: Digest, bytes: Buffer): Promise<void> {
  const dest = blobPath(blobDir, digest);
  if (await exists(dest, bytes.length)) return;
  await mkdir(join(blobDir, 'sha256'), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, bytes, { flag: 'wx' });
  await rename(tmp, dest);
}

async function exists(path: string, size: number): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isFile() && s.size === size;
  } catch {
    return false;
  }
}

/**
 * Download one blob into `<blobDir>/sha256/<hex>` unless it is there. The bytes stream through
 * a hash to a temp file; a digest or size mismatch deletes the temp file and fails; a reset
 * restarts the download. A body longer than the descriptor's size is cut at that size plus one
 * byte (a registry sending forever fills no disk), and each attempt must end within the blob
 * timeout (a base plus the size at a minimum speed). Returns true when it downloaded, false
 * when the blob was already there.
 */
export async function downloadBlob(client: RegistryClient, repo: RepositoryRef, desc: Descriptor, blobDir: string, given?: AbortSignal): Promise<boolean> {
  const signal = client.signalFor(given);
  if (!isDigest(desc.digest)) throw new RegistryContentError(`blob digest ${desc.digest} is not sha256`);
  const digest = desc.digest;
  const dest = blobPath(blobDir, digest);
  if (await exists(dest, desc.size)) return false;
  await mkdir(join(blobDir, 'sha256'), { recursive: true });
  const what = `download blob ${digest} from ${repo.registry}/${repo.repository}`;
  const limitMs = blobDeadlineMs(client.transport.timeouts, desc.size);
  let timeouts = 0;
  for (let attempt = 0; ; attempt++) {
    const tmp = `${dest}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new TimeoutError('blob', limitMs, `the download did not finish within ${formatMs(limitMs)} (the blob timeout plus its size at the minimum speed)`)), timerDelay(limitMs));
    const both = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
    /** The registry answered: a failure from here on is the body's. */
    let answered = false;
    try {
      const res = await client.getBlob(repo, digest, both);
      answered = true;
      const hash = new DigestingStream();
      await pipeline(res.body, atMost(desc.size, what), hash, createWriteStream(tmp, { flags: 'wx' }), { signal: both });
      if (hash.size !== desc.size) throw new DigestMismatchError(`${what}: size`, String(desc.size), String(hash.size));
      if (hash.digest() !== digest) throw new DigestMismatchError(`${what}: content`, digest, hash.digest());
      await rename(tmp, dest);
      return true;
    } catch (e) {
      await rm(tmp, { force: true });
      if (signal?.aborted) throw signal.reason;
      const err = deadline.signal.aborted ? deadline.signal.reason : e;
      if (err instanceof TimeoutError && err.kind === 'blob') throw new RegistryNetworkError(repo.registry, what, err.message, { cause: err, hint: TIMEOUT_HINT });
      // A body that is not HTTP/1.1 (a bad chunk size): typed, not retried.
      const parse = err instanceof RegistryError ? undefined : protocolError(repo.registry, what, err);
      if (parse) throw parse;
      const transient = !(err instanceof RegistryError) && isNetworkError(err);
      if (!transient) throw err;
      if (isTimeout(err)) timeouts++;
      if (attempt >= client.retry.retries || timeouts > client.retry.timeoutRetries) {
        const tries = attempt + 1;
        const hint = isTimeout(err) ? { hint: TIMEOUT_HINT } : {};
        if (answered) throw new ResponseCutShortError(repo.registry, what, `the download broke off (${describeError(err)})${tries > 1 ? ` (${tries} attempts)` : ''}`, { cause: err, ...hint });
        throw new RegistryNetworkError(repo.registry, what, describeError(err), { cause: err, ...hint });
      }
      const delay = backoffDelay(client.retry, attempt + 1);
      client.notifyRetry({ what, reason: describeError(err), attempt: attempt + 2, attempts: (isTimeout(err) ? client.retry.timeoutRetries : client.retry.retries) + 1, delayMs: delay, retryAfter: false });
      await sleep(delay, signal);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Passes at most `size` bytes; one more fails the stream (the download is then deleted). */
function atMost(size: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > size) return done(new DigestMismatchError(`${what}: size`, String(size), `more than ${size} bytes (the registry kept sending; stopped)`));
      done(null, chunk);
    },
  });
}
