import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ImgbuildError } from '../errors.js';
import { readTar, TarReadError, type TarReadItem } from '../layer/tar-read.js';
import { createZstdDecompressStream, isZstd } from '../layer/zstd-decompress.js';
import type { Layer } from '../model/layer.js';
import { abortable } from '../settle-all.js';
import { checkLayer, checkOptions, checkString } from '../arguments.js';

/** One entry of a layer's tar, as `tar tv` would list it. */
export interface LayerFile {
  /** Relative, without `./` or a trailing slash: `nix/store/…-hello/bin/hello`. */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** For a symlink or hard link: what it points at. */
  linkTarget?: string;
}

/** How a layer is read: `signal` stops the read (the promise rejects with its reason, the blob is closed: a registry's request aborted). */
export interface LayerReadOptions {
  signal?: AbortSignal;
}

/** The files of a layer, in tar order (its bytes are read once: for a registry layer, fetched). */
export async function layerFiles(layer: Layer, options: LayerReadOptions = {}): Promise<LayerFile[]> {
  checkLayer('layerFiles', layer);
  checkOptions('layerFiles', options, { signal: 'signal' });
  const out: LayerFile[] = [];
  await walk(layer, (file) => {
    out.push(file);
    return 'skip';
  }, options.signal);
  return out;
}

/**
 * The content of one regular file of a layer, or undefined when the layer has no such file; reads
 * the layer only up to it. `path` may be written with or without a leading `/`. The third
 * argument is the largest file read (default 64 MiB), or `{ maxBytes, signal }`.
 */
export async function readLayerFile(layer: Layer, path: string, options: number | (LayerReadOptions & { maxBytes?: number }) = {}): Promise<Buffer | undefined> {
  checkLayer('readLayerFile', layer);
  checkString('readLayerFile', 'the path', path, 'name the file as the layer holds it: readLayerFile(layer, \'/etc/os-release\')');
  const opts = typeof options === 'number' ? { maxBytes: options } : options;
  checkOptions('readLayerFile', opts, { signal: 'signal', maxBytes: 'count' });
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  const wanted = normalise(path);
  let found: Buffer | undefined;
  await walk(layer, (file) => {
    if (file.path !== wanted || file.type !== 'file') return 'skip';
    if (file.size > maxBytes) throw new ImgbuildError('layer-read', `${path} is ${file.size} bytes, more than ${maxBytes}`, 'pass a larger maxBytes');
    return (data) => {
      found = data;
    };
  }, opts.signal);
  return found;
}

type Visit = (file: LayerFile) => 'skip' | ((data: Buffer) => void);

/** Reads the layer's tar (decompressed when it is gzip or zstd), calling `visit` per entry; stops once a visitor has taken its data. */
async function walk(layer: Layer, visit: Visit, signal: AbortSignal | undefined): Promise<void> {
  await abortable(signal, () => walkNow(layer, visit, signal));
}

async function walkNow(layer: Layer, visit: Visit, signal: AbortSignal | undefined): Promise<void> {
  for await (const { entry: h, content } of layerEntries(layer, signal)) {
    const file: LayerFile = {
      path: normalise(h.name),
      type: h.type === 'file' || h.type === 'contiguous-file' ? 'file' : h.type === 'directory' ? 'directory' : h.type === 'symlink' ? 'symlink' : h.type === 'link' ? 'hardlink' : 'other',
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      size: h.size,
      ...(h.linkname ? { linkTarget: h.linkname } : {}),
    };
    const take = visit(file);
    if (take === 'skip') continue;
    const chunks: Buffer[] = [];
    for await (const c of content) chunks.push(c);
    take(Buffer.concat(chunks));
    return;
  }
}

/**
 * The entries of a layer's tar (decompressed when it is gzip or zstd), read once, as readTar
 * gives them. A tar or decompression fault is `error[layer-read]` naming the layer; an error of
 * the caller's own (thrown while it reads an entry) passes as it is. The blob is closed when the
 * caller stops, early or not.
 */
export async function* layerEntries(layer: Layer, signal?: AbortSignal): AsyncGenerator<TarReadItem> {
  signal?.throwIfAborted();
  const blob = layer.open();
  // An abort closes the blob at once (a registry layer's request is aborted with it).
  const onAbort = () => blob.destroy(signal!.reason as Error);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    yield* readTar(decompressed(blob));
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err instanceof ImgbuildError && !(err instanceof TarReadError) ? err : new ImgbuildError('layer-read', `layer ${layer.digest}: cannot read it as a tar: ${(err as Error).message}`, undefined, { cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
    blob.destroy();
  }
}

/** The blob's bytes, decompressed when they start with gzip's or zstd's magic. */
export async function* decompressed(blob: Readable): AsyncGenerator<Buffer> {
  const it = blob[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  if (first.done) return;
  const rest = async function* () {
    yield first.value;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  };
  if (first.value[0] === 0x1f && first.value[1] === 0x8b) yield* Readable.from(rest()).pipe(createGunzip());
  else if (isZstd(first.value)) yield* Readable.from(rest()).pipe(createZstdDecompressStream());
  else yield* rest();
}

function normalise(name: string): string {
  let p = name;
  while (p.startsWith('./')) p = p.slice(2);
  return p.replace(/^\/+/, '').replace(/\/+$/, '');
}
