import { Readable } from 'node:stream';
import { isDigest, sha256Digest, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { readCapped } from '../../registry-client/client.js';
import { retryCutShort } from '../../registry-client/retry.js';
import { parseReference, pushImage as pushToRegistry, RegistryError, RegistryHttpError, type ImageReference, type RegistryClient, type RepositoryRef } from '../../registry-client/index.js';
import type { LayerHints } from '../cache/layer-hints.js';
import { ImgbuildError } from '../errors.js';
import type { LayerBlob } from '../layer/types.js';

/** The artifact type of a layer records artifact, and the media type of its one blob. */
export const LAYER_RECORDS_TYPE = 'application/vnd.imgbuild.layer-records.v1+json';
/** The OCI 1.1 empty config (`{}`), as artifacts without a config of their own carry. */
const EMPTY_CONFIG = Buffer.from('{}');
const EMPTY_CONFIG_TYPE = 'application/vnd.oci.empty.v1+json';
/** The tag a `--cache-ref` without one names. */
export const DEFAULT_RECORDS_TAG = 'imgbuild-layers';
/** Largest records blob read (a record is ~300 bytes: tens of thousands of layers). */
const MAX_RECORDS_BYTES = 16 * 1024 * 1024;
/** Records kept in one artifact: this build's first, then earlier ones, up to this many. */
const MAX_RECORDS = 20_000;

/** One layer record as kept in the registry: the cache key and what the layer is. */
export interface RegistryLayerRecord extends LayerBlob {
  key: string;
  /** The layer's store paths (for people reading the artifact; not used to decide anything). */
  storePaths: string[];
}

/**
 * Layer records kept in a registry (`--cache-ref <repo>[:tag]`, spec `cache.ref`): fetched
 * before a build so a runner with an empty disk knows each layer's digest, and pushed after it.
 * As a LayerHints, a record counts only when the push target already holds its blob (a HEAD):
 * then no byte of the layer is read from the store or sent. A record is never trusted for
 * bytes: a layer the target lacks is made from the store, and what it turns out to be is recorded.
 */
export class RegistryLayerRecords implements LayerHints {
  /** Requests this made: HEADs of the target, for tests and progress. */
  readonly stats = { fetched: 0, held: 0, missing: 0 };
  private readonly noted = new Map<string, RegistryLayerRecord>();

  private constructor(
    private readonly client: RegistryClient,
    readonly ref: ImageReference,
    private readonly records: ReadonlyMap<string, RegistryLayerRecord>,
    /** Where the image is pushed: a record counts when this repository holds its blob. */
    private readonly target: RepositoryRef | undefined,
  ) {}

  /** The records at `ref` (none when the tag does not exist yet: a first build). */
  static async fetch(client: RegistryClient, cacheRef: string, target: RepositoryRef | undefined): Promise<RegistryLayerRecords> {
    const ref = recordsReference(cacheRef);
    const repo = { registry: ref.registry, repository: ref.repository };
    let records = new Map<string, RegistryLayerRecord>();
    try {
      const m = await client.getManifest(repo, ref.target);
      records = await readRecords(client, repo, m.bytes, ref.toString());
    } catch (e) {
      if (!(e instanceof RegistryHttpError && e.status === 404)) throw asImgbuildError(e);
    }
    const out = new RegistryLayerRecords(client, ref, records, target);
    out.stats.fetched = records.size;
    return out;
  }

  /** How many records were fetched. */
  get size(): number {
    return this.records.size;
  }

  async held(key: string): Promise<LayerBlob | undefined> {
    const r = this.records.get(key);
    if (!r || !this.target) return undefined;
    const { exists, size } = await this.client.blobExists(this.target, r.digest as Digest).catch((e: unknown) => {
      throw asImgbuildError(e);
    });
    if (!exists || (size !== undefined && size !== r.size)) {
      this.stats.missing++;
      return undefined;
    }
    this.stats.held++;
    return { digest: r.digest, diffId: r.diffId, size: r.size, uncompressedSize: r.uncompressedSize, mediaType: r.mediaType };
  }

  note(key: string, blob: LayerBlob, storePaths: readonly string[]): void {
    this.noted.set(key, { key, ...blobFacts(blob), storePaths: [...storePaths].sort() });
  }

  /**
   * The records to keep: this build's layers, then the fetched ones it did not replace (other
   * platforms, earlier versions), up to MAX_RECORDS. Sorted by key: the same records give the
   * same bytes, so an unchanged build pushes no new blob.
   */
  merged(): RegistryLayerRecord[] {
    const out = new Map(this.noted);
    for (const [k, r] of this.records) {
      if (out.size >= MAX_RECORDS) break;
      if (!out.has(k)) out.set(k, r);
    }
    return [...out.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Pushes the merged records as a small OCI artifact under the cache ref's tag; returns its digest. */
  async push(): Promise<{ digest: Digest; records: number; uploaded: number }> {
    const records = this.merged();
    const blob = Buffer.from(`${JSON.stringify({ v: 1, records })}\n`);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: LAYER_RECORDS_TYPE,
        config: { mediaType: EMPTY_CONFIG_TYPE, digest: sha256Digest(EMPTY_CONFIG), size: EMPTY_CONFIG.length, data: EMPTY_CONFIG.toString('base64') },
        layers: [{ mediaType: LAYER_RECORDS_TYPE, digest: sha256Digest(blob), size: blob.length }],
        annotations: { 'org.opencontainers.image.title': 'imgbuild layer records' },
      }),
    );
    try {
      const result = await pushToRegistry(this.client, this.ref, {
        manifest: { bytes: manifest, mediaType: MediaType.ociManifest },
        blobs: [
          { digest: sha256Digest(EMPTY_CONFIG), size: EMPTY_CONFIG.length, open: () => Readable.from([EMPTY_CONFIG]) },
          { digest: sha256Digest(blob), size: blob.length, open: () => Readable.from([blob]) },
        ],
      });
      return { digest: result.digest, records: records.length, uploaded: result.uploaded };
    } catch (e) {
      throw asImgbuildError(e);
    }
  }
}

/** `<repo>[:tag]` (a digest is refused: records move with each build). */
export function recordsReference(cacheRef: string): ImageReference {
  let ref: ImageReference;
  try {
    ref = parseReference(cacheRef.includes(':', cacheRef.lastIndexOf('/')) || cacheRef.includes('@') ? cacheRef : `${cacheRef}:${DEFAULT_RECORDS_TAG}`);
  } catch (e) {
    throw new ImgbuildError('usage', `--cache-ref ${JSON.stringify(cacheRef)}: ${(e as Error).message}`, 'name a repository and optionally a tag, e.g. --cache-ref ghcr.io/acme/app-cache:layers');
  }
  if (!ref.tag) throw new ImgbuildError('usage', `--cache-ref ${cacheRef} names a digest; the records are pushed under a tag`, `name a tag, e.g. --cache-ref ${ref.registry}/${ref.repository}:${DEFAULT_RECORDS_TAG}`);
  return ref;
}

async function readRecords(client: RegistryClient, repo: RepositoryRef, manifestBytes: Buffer, where: string): Promise<Map<string, RegistryLayerRecord>> {
  const bad = (why: string) => new ImgbuildError('cache-ref', `${where} is not an imgbuild layer records artifact: ${why}`, 'point --cache-ref at a tag of its own (imgbuild pushes the records there), not at an image');
  let manifest: { artifactType?: unknown; layers?: Array<{ mediaType?: unknown; digest?: unknown; size?: unknown }> };
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8')) as typeof manifest;
  } catch {
    throw bad('the manifest is not JSON');
  }
  const layer = manifest.layers?.[0];
  if (manifest.artifactType !== LAYER_RECORDS_TYPE || !layer || layer.mediaType !== LAYER_RECORDS_TYPE || typeof layer.digest !== 'string' || !isDigest(layer.digest)) {
    throw bad(`its artifactType is ${JSON.stringify(manifest.artifactType ?? null)}`);
  }
  if (typeof layer.size !== 'number' || layer.size > MAX_RECORDS_BYTES) throw bad(`its records blob is ${String(layer.size)} bytes (at most ${MAX_RECORDS_BYTES} are read)`);
  const what = `get the layer records of ${where}`;
  const digest = layer.digest;
  // A GET: an answer that breaks off is asked for again.
  const bytes = await retryCutShort(client.retryContext, what, async () => readCapped(await client.getBlob(repo, digest), MAX_RECORDS_BYTES, what));
  if (sha256Digest(bytes) !== layer.digest) throw bad(`its records blob does not match ${layer.digest}`);
  let doc: { v?: unknown; records?: unknown };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    throw bad('the records are not JSON');
  }
  if (doc.v !== 1 || !Array.isArray(doc.records)) throw bad('the records are not version 1');
  const out = new Map<string, RegistryLayerRecord>();
  // A record that does not read is skipped: it only costs that layer a rebuild.
  for (const r of doc.records as unknown[]) {
    const rec = validRecord(r);
    if (rec) out.set(rec.key, rec);
  }
  return out;
}

function validRecord(r: unknown): RegistryLayerRecord | undefined {
  if (typeof r !== 'object' || r === null) return undefined;
  const x = r as Record<string, unknown>;
  const int = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (typeof x.key !== 'string' || !/^[0-9a-f]{64}$/.test(x.key)) return undefined;
  if (typeof x.digest !== 'string' || !isDigest(x.digest) || typeof x.diffId !== 'string' || !isDigest(x.diffId)) return undefined;
  if (!int(x.size) || !int(x.uncompressedSize) || typeof x.mediaType !== 'string') return undefined;
  const storePaths = Array.isArray(x.storePaths) ? x.storePaths.filter((p): p is string => typeof p === 'string') : [];
  return { key: x.key, digest: x.digest, diffId: x.diffId, size: x.size as number, uncompressedSize: x.uncompressedSize as number, mediaType: x.mediaType, storePaths };
}

function blobFacts(b: LayerBlob): LayerBlob {
  return { digest: b.digest, diffId: b.diffId, size: b.size, uncompressedSize: b.uncompressedSize, mediaType: b.mediaType };
}

function asImgbuildError(e: unknown): unknown {
  if (e instanceof RegistryError) return new ImgbuildError(e.code, e.message, e.hint, { cause: e });
  return e;
}
