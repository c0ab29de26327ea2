import { isDeepStrictEqual } from 'node:util';
import type { Descriptor } from '../../oci/schemas.js';
import { alignLayers, type LayerKey } from './align-layers.js';
import { openImageBlob, type Image } from '../model/image.js';
import { ImgbuildError } from '../errors.js';
import { abortable } from '../settle-all.js';
import { checkImage, checkOptions } from '../arguments.js';
import { closedOnAbort } from '../transports/blob-source.js';
import { requireImage } from '../model/complete.js';
import { diffJson, type FieldChange } from './json-diff.js';
import { checkBlobs, describeBlobCheck } from './check-blobs.js';
import { summariseLayer, type EntrySummary, type LayerSummary } from './layer-summary.js';

export type { FieldChange } from './json-diff.js';

/** A layer as reported: position, descriptor and the config's diff_id. */
export interface LayerInfo {
  index: number;
  digest: string;
  diffId: string | undefined;
  size: number;
  mediaType: string;
}

/** How one file (tar entry) differs. `fields` names the entry fields, `content` meaning sha256. */
export type FileDiff =
  | { path: string; change: 'added'; b: EntrySummary }
  | { path: string; change: 'removed'; a: EntrySummary }
  | { path: string; change: 'changed'; fields: FieldChange[] };

/** Same entries in another order: the first position where the orders part. */
export interface OrderDiff {
  /** Position among the entries both tars hold. */
  position: number;
  a: string;
  b: string;
  /** How many of the common entries sit at another position. */
  displaced: number;
}

export type LayerDiff =
  | { change: 'added'; b: LayerInfo }
  | { change: 'removed'; a: LayerInfo }
  /** Same blob, other position or descriptor fields (annotations, media type). */
  | { change: 'moved'; a: LayerInfo; b: LayerInfo; descriptor: FieldChange[] }
  /** Same tar (both read: its sha256 is both configs' diff_id), other compressed bytes. */
  | { change: 'compression'; a: LayerInfo; b: LayerInfo; descriptor: FieldChange[]; gzipHeader: FieldChange[] }
  | {
      change: 'content';
      a: LayerInfo;
      b: LayerInfo;
      descriptor: FieldChange[];
      /** Entries in each tar. */
      entries: { a: number; b: number };
      files: FileDiff[];
      /** How many changed files have each field changed (`mtime: 120`), for a one-line summary. */
      fieldCounts: Record<string, number>;
      order?: OrderDiff;
      /** Problems found while reading: a diff_id in the config that the tar does not have, ... */
      notes: string[];
    };

export interface ImageDiff {
  kind: 'image';
  /** `digest`: the manifest's. */
  a: { source: string; digest: string; configDigest: string };
  b: { source: string; digest: string; configDigest: string };
  /** True when the manifests are the same bytes (so everything under them is). */
  identical: boolean;
  /** Manifest fields other than the layer list and the config descriptor's digest and size. */
  manifest: FieldChange[];
  /** Config fields other than rootfs.diff_ids (layers speak for those). */
  config: FieldChange[];
  layers: LayerDiff[];
  /** Differences no field shows (the same JSON in other bytes, ...). */
  notes: string[];
}

/**
 * Everything that differs between two images, from the manifest down to the files in each
 * changed layer. Layers are read as streams, each changed pair once (a pair whose configs give
 * one diff_id too: the tars are hashed before "only the compression differs" is said); a blob
 * both images list by one digest is not read, except that images called identical have every
 * local blob hashed first.
 */
export async function diffImages(a: Image, b: Image, options: { signal?: AbortSignal } = {}): Promise<ImageDiff> {
  checkImage('diffImages', 'the first image', a, 'image');
  checkImage('diffImages', 'the second image', b, 'image');
  checkOptions('diffImages', options, { signal: 'signal' });
  const { signal } = options;
  return abortable(signal, () => diffNow(a, b, signal));
}

async function diffNow(a: Image, b: Image, signal: AbortSignal | undefined): Promise<ImageDiff> {
  const result: ImageDiff = {
    kind: 'image',
    a: { source: a.source, digest: a.descriptor.digest, configDigest: a.manifest.config.digest },
    b: { source: b.source, digest: b.descriptor.digest, configDigest: b.manifest.config.digest },
    identical: a.descriptor.digest === b.descriptor.digest,
    manifest: [],
    config: [],
    layers: [],
    notes: [],
  };
  if (result.identical) {
    // One manifest digest is one image only when the blobs hold what it names: read them.
    result.notes.push(...(await Promise.all([checkBlobs(a, new Set(), signal), checkBlobs(b, new Set(), signal)])).map(describeBlobCheck));
    return result;
  }
  // An artifact's blobs are not layers of files.
  requireImage(a, 'diff');
  requireImage(b, 'diff');
  const reconstructed = [a, b].filter((s) => s.source.startsWith('docker-archive:')).map((s) => s.source);
  if (reconstructed.length > 0) {
    result.notes.push(`${reconstructed.join(' and ')}: a docker-archive holds no manifest; the one compared is reconstructed (no annotations, so another digest): compare its config and layers`);
  }

  const { layers: la, config: ca, ...ma } = a.manifest;
  const { layers: lb, config: cb, ...mb } = b.manifest;
  const { digest: _da, size: _sa, ...restCa } = ca;
  const { digest: _db, size: _sb, ...restCb } = cb;
  result.manifest = diffJson({ ...ma, config: restCa }, { ...mb, config: restCb });
  if (result.manifest.length === 0 && isDeepStrictEqual(la, lb) && ca.digest === cb.digest) {
    result.notes.push('the manifests hold the same fields in different bytes (key order, whitespace or escaping)');
  }

  if (ca.digest !== cb.digest) {
    result.config = diffJson(withoutDiffIds(a.config), withoutDiffIds(b.config));
    if (result.config.length === 0 && isDeepStrictEqual(a.config.rootfs, b.config.rootfs)) {
      result.notes.push('the configs hold the same fields in different bytes (key order, whitespace or escaping)');
    }
  }

  const info = (img: Image, d: Descriptor, index: number): LayerInfo => ({
    index,
    digest: d.digest,
    diffId: img.config.rootfs.diff_ids[index],
    size: d.size,
    mediaType: d.mediaType,
  });
  const ia = la.map((d, i) => info(a, d, i));
  const ib = lb.map((d, i) => info(b, d, i));
  const key = (l: LayerInfo): LayerKey => ({ index: l.index, digest: l.digest, diffId: l.diffId });
  for (const p of alignLayers(ia.map(key), ib.map(key))) {
    if (p.kind === 'added') result.layers.push({ change: 'added', b: ib[p.b.index]! });
    else if (p.kind === 'removed') result.layers.push({ change: 'removed', a: ia[p.a.index]! });
    else {
      const x = ia[p.a.index]!;
      const y = ib[p.b.index]!;
      const descriptor = diffJson(descriptorFields(la[x.index]!), descriptorFields(lb[y.index]!));
      if (x.digest === y.digest) {
        if (x.index !== y.index || descriptor.length > 0) result.layers.push({ change: 'moved', a: x, b: y, descriptor });
      } else {
        // Both tars are read and hashed: the configs' diff_ids are claims, not facts.
        const [sa, sb] = await Promise.all([summarise(a, x, signal), summarise(b, y, signal)]);
        if (p.kind === 'same' && sa.diffId === x.diffId && sb.diffId === y.diffId) {
          result.layers.push({ change: 'compression', a: x, b: y, descriptor, gzipHeader: diffJson(sa.gzipHeader ?? null, sb.gzipHeader ?? null, 'gzip') });
        } else {
          result.layers.push(contentDiff(a, b, x, y, descriptor, sa, sb));
        }
      }
    }
  }
  return result;
}

function withoutDiffIds(config: Image['config']): unknown {
  const { rootfs, ...rest } = config;
  const { diff_ids: _d, ...rootfsRest } = rootfs;
  return { ...rest, rootfs: rootfsRest };
}

/** Descriptor fields worth comparing once digests are known to differ or not: all but digest and size. */
function descriptorFields(d: Descriptor): unknown {
  const { digest: _d, size: _s, ...rest } = d;
  return rest;
}

/** A layer blob of `img` read to its end: compression, the tar's sha256 (its true diff_id), entries. */
function summarise(img: Image, l: LayerInfo, signal: AbortSignal | undefined): Promise<LayerSummary> {
  return summariseLayer(closedOnAbort(blobOf(img, l.digest), signal), `${img.source} layer ${l.index + 1} (${l.digest})`);
}

function contentDiff(a: Image, b: Image, x: LayerInfo, y: LayerInfo, descriptor: FieldChange[], sa: LayerSummary, sb: LayerSummary): LayerDiff {
  const notes: string[] = [];
  for (const [img, l, s] of [[a, x, sa], [b, y, sb]] as const) {
    if (l.diffId !== undefined && l.diffId !== s.diffId) notes.push(`${img.source} layer ${l.index + 1}: the config says diff_id ${l.diffId} but the tar's sha256 is ${s.diffId}`);
  }
  const { files, fieldCounts, order } = compareEntries(sa, sb);
  if (files.length === 0 && !order && sa.diffId !== sb.diffId) {
    notes.push('the tars differ in bytes that no entry shows: padding after file data, or the end-of-archive blocks');
  }
  if (sa.compression !== sb.compression) descriptor = [...descriptor, { path: 'compression', a: sa.compression, b: sb.compression }];
  return { change: 'content', a: x, b: y, descriptor, entries: { a: sa.entries.length, b: sb.entries.length }, files, fieldCounts, ...(order ? { order } : {}), notes };
}

const entryFields = ['type', 'sha256', 'size', 'mode', 'uid', 'gid', 'uname', 'gname', 'mtime', 'linkname', 'devmajor', 'devminor'] as const;

/** Field names as users know them: `content` rather than `sha256`. */
const fieldLabel: Record<string, string> = { sha256: 'content', linkname: 'link target' };

export function compareEntries(sa: LayerSummary, sb: LayerSummary): { files: FileDiff[]; fieldCounts: Record<string, number>; order?: OrderDiff } {
  const mb = new Map(sb.entries.map((e) => [e.path, e]));
  const ma = new Map(sa.entries.map((e) => [e.path, e]));
  const files: FileDiff[] = [];
  const fieldCounts: Record<string, number> = {};
  for (const ea of sa.entries) {
    const eb = mb.get(ea.path);
    if (!eb) {
      files.push({ path: ea.path, change: 'removed', a: ea });
      continue;
    }
    const fields: FieldChange[] = [];
    for (const f of entryFields) {
      if (ea[f] !== eb[f]) fields.push(change(fieldLabel[f] ?? f, ea[f], eb[f]));
    }
    for (const c of diffJson(ea.pax ?? {}, eb.pax ?? {}, 'pax')) fields.push(c);
    if (ea.header.format !== eb.header.format) fields.push({ path: 'tar format', a: ea.header.format, b: eb.header.format });
    // Same values, other bytes: padding of numbers, checksum format, name/prefix split, unused fields.
    else if (fields.length === 0 && ea.header.hash !== eb.header.hash) fields.push({ path: 'header bytes', a: `sha256:${ea.header.hash}`, b: `sha256:${eb.header.hash}` });
    if (fields.length) {
      files.push({ path: ea.path, change: 'changed', fields });
      for (const c of fields) {
        const k = c.path.startsWith('pax.') ? 'pax' : c.path;
        fieldCounts[k] = (fieldCounts[k] ?? 0) + 1;
      }
    }
  }
  for (const eb of sb.entries) if (!ma.has(eb.path)) files.push({ path: eb.path, change: 'added', b: eb });
  const order = orderDiff(sa.entries.filter((e) => mb.has(e.path)).map((e) => e.path), sb.entries.filter((e) => ma.has(e.path)).map((e) => e.path));
  return { files, fieldCounts, ...(order ? { order } : {}) };
}

function change(path: string, a: unknown, b: unknown): FieldChange {
  const c: FieldChange = { path };
  if (a !== undefined) c.a = a;
  if (b !== undefined) c.b = b;
  return c;
}

function orderDiff(a: string[], b: string[]): OrderDiff | undefined {
  let first = -1;
  let displaced = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    displaced++;
    if (first === -1) first = i;
  }
  if (first === -1) return undefined;
  return { position: first, a: a[first]!, b: b[first]!, displaced };
}

/** A blob of an image, for reading: every one a diff asks for is named by the image's manifest. */
function blobOf(img: Image, digest: string) {
  const stream = openImageBlob(img, digest);
  if (!stream) throw new ImgbuildError('image-read', `${img.source}: no blob ${digest}`);
  return stream;
}
