import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import type { ClosureGraph, StorePathInfo } from '../../../layering/types.js';
import { ImgbuildError } from '../../errors.js';
import { closureOf } from '../closure-graph.js';
import { parseNarHash } from '../nar-hash.js';
import { nixBase32Encode } from '../nix-base32.js';
import { normaliseStoreDir, parseStorePath } from '../store-path.js';
import type { StoreSource } from '../types.js';
import { decompress } from './decompress.js';
import { BinaryCacheError, NarMismatchError } from './errors.js';
import { fetchBytes, fetchStream, NotFound, shownUrl, shownUrlText, type CacheFetchOptions } from './fetch.js';
import { MAX_NARINFO_BYTES, parseCacheInfo, parseNarInfo, type NarInfo } from './narinfo.js';
import { isSignedBy, type PublicKey } from './signatures.js';

export interface BinaryCacheSourceOptions {
  /** The cache: `https://cache.example.org`, `http://127.0.0.1:8080/sub`, `file:///srv/cache`. */
  url: string;
  /** Trusted keys (signatures/parsePublicKeys). Given: every path must carry a valid signature by one. Empty: none is checked. */
  publicKeys?: readonly PublicKey[];
  /** The store dir the spec expects; the cache's `nix-cache-info` must say the same. */
  storeDir?: string;
  /** narinfo requests at once while the closure is read (default 16), and NAR downloads at once (default 4). */
  narinfoConcurrency?: number;
  narConcurrency?: number;
  fetch?: CacheFetchOptions;
}

/** Longest nix-cache-info read. */
const MAX_CACHE_INFO_BYTES = 64 * 1024;

/**
 * A Nix binary cache (cache.nixos.org, an S3 bucket behind HTTP, Cachix, Attic, nix-serve, a
 * `file://` directory made by `nix copy --to`) as a store: the closure comes from `<hash>.narinfo`
 * files (References), a path's files from its NAR, fetched, checked (FileSize and FileHash of the
 * download, NarSize and NarHash of the decompressed NAR) and decompressed as the layer is written.
 * Nothing is written to disk. With trusted keys, a path without a valid signature by one of them
 * is refused before anything of it is used.
 */
export class BinaryCacheStoreSource implements StoreSource {
  /** Paths are named by their hash (like a Nix store): a layer's cache key is its paths' names. */
  readonly immutable = true;
  private readonly infos = new Map<string, NarInfo>();
  private readonly narLimit: ReturnType<typeof pLimit>;

  private constructor(
    readonly storeDir: string,
    private readonly base: URL,
    private readonly keys: readonly PublicKey[],
    private readonly opts: BinaryCacheSourceOptions,
  ) {
    this.narLimit = pLimit(opts.narConcurrency ?? 4);
  }

  get description(): string {
    return `binary cache ${shownUrl(this.base).replace(/\/$/, '')}`;
  }

  /** Reads the cache's `nix-cache-info` (its StoreDir; `/nix/store` when the cache has none). */
  static async open(opts: BinaryCacheSourceOptions): Promise<BinaryCacheStoreSource> {
    const base = cacheUrl(opts.url);
    let storeDir = '/nix/store';
    try {
      const text = (await fetchBytes(new URL('nix-cache-info', base), MAX_CACHE_INFO_BYTES, opts.fetch)).toString('utf8');
      storeDir = normaliseStoreDir(parseCacheInfo(text, shownUrl(new URL('nix-cache-info', base))).storeDir);
    } catch (e) {
      // Nix, too, takes a cache without nix-cache-info for one of /nix/store.
      if (!(e instanceof NotFound)) throw e;
    }
    if (opts.storeDir !== undefined && normaliseStoreDir(opts.storeDir) !== storeDir) {
      throw new BinaryCacheError(
        `the spec expects the store dir ${normaliseStoreDir(opts.storeDir)}, but the binary cache ${shownUrl(base)} holds paths of ${storeDir} (its nix-cache-info)`,
        [],
        'set store.storeDir (or --store-dir) to the cache\'s store dir, or use a cache of that store',
      );
    }
    return new BinaryCacheStoreSource(storeDir, base, opts.publicKeys ?? [], opts);
  }

  fsPath(storePath: string): string {
    throw new BinaryCacheError(
      `${storePath} has no files on this machine: it is read from the ${this.description} as the layer is written`,
      [storePath],
      'copyToRoot and includeNixDB read files from disk; build them from a Nix store (--nix) or a directory store',
    );
  }

  /** Reads the narinfos of `roots` and of everything they reference, `narinfoConcurrency` at a time. */
  async closure(roots: string[]): Promise<ClosureGraph> {
    const checked = roots.map((r) => parseStorePath(r, this.storeDir, 'content path').path);
    const limit = pLimit(this.opts.narinfoConcurrency ?? 16);
    const infos = new Map<string, StorePathInfo>();
    // Every path is fetched once and its references are queued, never awaited from inside a
    // visit: a reference cycle between narinfos (A -> B -> A) would otherwise have each visit
    // wait on the other, leave the event loop empty and end the process with no output.
    // closureOf names the cycle as the directory store and the closure file do.
    const pending = new Map<string, Promise<void>>();
    const order: Promise<void>[] = [];
    const visit = (path: string): void => {
      if (pending.has(path)) return;
      const p = limit(() => this.narInfo(path)).then((info) => {
        const references = info.references.map((r) => `${this.storeDir}/${r}`);
        infos.set(path, { path, narSize: info.narSize, references, narHash: info.narHash });
        for (const r of references) if (r !== path) visit(r);
      });
      // Handled here so that a failure met before the loop below reaches it is not an
      // unhandled rejection; the loop still sees (and throws) it.
      p.catch(() => undefined);
      pending.set(path, p);
      order.push(p);
    };
    for (const root of checked) visit(root);
    for (let i = 0; i < order.length; i++) await order[i];
    return closureOf(this.storeDir, checked, infos, this.description);
  }

  /** The narinfo of `storePath`, checked (its StorePath, and its signature when keys are given); fetched once. */
  async narInfo(storePath: string): Promise<NarInfo> {
    const known = this.infos.get(storePath);
    if (known) return known;
    const { hashPart, path } = parseStorePath(storePath, this.storeDir);
    const url = new URL(`${hashPart}.narinfo`, this.base);
    let text: string;
    try {
      text = (await fetchBytes(url, MAX_NARINFO_BYTES, this.opts.fetch)).toString('utf8');
    } catch (e) {
      if (e instanceof NotFound) {
        throw new BinaryCacheError(
          `${path} is not in the ${this.description} (no ${shownUrl(url)})`,
          [path],
          `push it there first (nix copy --to <cache> ${path}), or name the cache that holds it with --substituter`,
        );
      }
      throw e;
    }
    const shown = shownUrl(url);
    const info = parseNarInfo(text, shown);
    if (info.storePath !== path) throw new BinaryCacheError(`${shown} describes ${info.storePath}, not ${path}`, [path]);
    for (const r of info.references) parseStorePath(`${this.storeDir}/${r}`, this.storeDir, `a reference in ${shown}`);
    if (!parseNarHash(info.narHash)) throw new BinaryCacheError(`${shown}: NarHash ${JSON.stringify(info.narHash)} is not a SHA-256 hash`, [path]);
    if (this.keys.length > 0 && !isSignedBy(info, this.storeDir, this.keys)) {
      const names = this.keys.map((k) => k.name).join(', ');
      const has = info.sigs.length === 0 ? 'is not signed' : `carries no valid signature by a trusted key (its signatures: ${info.sigs.map((s) => (s.indexOf(':') > 0 ? s.slice(0, Math.min(s.indexOf(':'), 64)) : '(unnamed)')).join(', ')})`;
      throw new BinaryCacheError(
        `${path} in the ${this.description} ${has}; trusted keys: ${names}`,
        [path],
        'sign the cache (nix store sign --key-file <secret-key> --store <cache> -r <path>), or trust its key with --trusted-public-key',
      );
    }
    this.infos.set(storePath, info);
    return info;
  }

  /**
   * The NAR of `storePath`, decompressed, as it downloads. Checked as it goes: the download
   * against FileSize and FileHash, the NAR against NarSize and NarHash. A mismatch (or a stream
   * that does not decompress) fails the iteration at the latest when the last byte would have
   * been given, so a consumer that reads to the end never takes a wrong NAR for a right one.
   */
  async *narStream(storePath: string): AsyncGenerator<Uint8Array> {
    const info = await this.narInfo(storePath);
    const release = await this.slot();
    try {
      yield* verifiedNar(storePath, info, this.base, this.opts.fetch);
    } finally {
      release();
    }
  }

  /**
   * What a worker thread needs to stream the NARs of `paths` itself (verifiedNar): the cache,
   * each path's narinfo (already checked here, signatures included), the fetch options.
   */
  async narJob(paths: readonly string[]): Promise<NarJob> {
    const infos: Record<string, NarInfo> = {};
    for (const p of paths) infos[p] = await this.narInfo(p);
    const { signal: _, ...fetch } = this.opts.fetch ?? {};
    return { cacheUrl: this.base.href, infos, fetch };
  }

  /** One of the `narConcurrency` download slots, held while a NAR streams. */
  private slot(): Promise<() => void> {
    return new Promise((take) => {
      void this.narLimit(() => new Promise<void>((done) => take(done)));
    });
  }
}

/** A NAR job's cache, narinfos and fetch options: structured-cloneable, for a worker thread. */
export interface NarJob {
  cacheUrl: string;
  infos: Record<string, NarInfo>;
  fetch: Omit<CacheFetchOptions, 'signal'>;
}

/**
 * The NAR of `storePath` as described by its (checked) narinfo, decompressed, as it downloads,
 * checked as it goes: the download against FileSize and FileHash, the NAR against NarSize and
 * NarHash. A mismatch (or a stream that does not decompress) fails the iteration at the latest
 * when the last byte would have been given, so a consumer that reads to the end never takes a
 * wrong NAR for a right one.
 */
export async function* verifiedNar(storePath: string, info: NarInfo, base: URL, fetchOptions: CacheFetchOptions | undefined): AsyncGenerator<Uint8Array> {
  const url = new URL(info.url, base);
  const what = `${storePath} (${shownUrl(url)})`;
  const fileHash = info.fileHash === undefined ? undefined : parseNarHash(info.fileHash);
  if (info.fileHash !== undefined && !fileHash) throw new BinaryCacheError(`the narinfo of ${storePath}: FileHash ${JSON.stringify(info.fileHash)} is not a SHA-256 hash`, [storePath]);
  const fileSha = createHash('sha256');
  let fileBytes = 0;
  const limit = info.fileSize ?? (info.compression === 'none' ? info.narSize : Number.MAX_SAFE_INTEGER);
  const download = fetchStream(url, limit, fetchOptions);
  const counted = async function* (): AsyncGenerator<Uint8Array> {
    try {
      for await (const c of download) {
        fileSha.update(c);
        fileBytes += c.length;
        yield c;
      }
    } catch (e) {
      if (e instanceof NotFound) throw new BinaryCacheError(`the NAR of ${storePath} is missing from the cache: ${shownUrl(url)} (its narinfo names it)`, [storePath], 'push the path again: nix copy --to <cache> <path>');
      if (e instanceof ImgbuildError && e.code === 'binary-cache' && /longer than/.test(e.message)) throw mismatch(what, `the download is longer than the ${limit} bytes its narinfo says`, e);
      throw e;
    }
    if (info.fileSize !== undefined && fileBytes !== info.fileSize) throw mismatch(what, `the download has ${fileBytes} bytes, FileSize says ${info.fileSize}`);
    if (fileHash) {
      const got = fileSha.digest();
      if (!got.equals(fileHash)) throw mismatch(what, `FileHash is sha256:${nixBase32Encode(fileHash)}, the download hashes to sha256:${nixBase32Encode(got)}`);
    }
  };
  const narSha = createHash('sha256');
  let narBytes = 0;
  try {
    for await (const chunk of decompress(info.compression, counted(), what)) {
      narBytes += chunk.length;
      if (narBytes > info.narSize) throw mismatch(what, `the NAR is longer than NarSize ${info.narSize}`);
      narSha.update(chunk);
      yield chunk;
    }
  } catch (e) {
    if (e instanceof ImgbuildError || (e as Error).name === 'AbortError') throw e;
    // A decoder's error: the compressed bytes are not what was stored.
    throw mismatch(what, `it does not decompress as ${info.compression} (${(e as Error).message ?? String(e)})`, e);
  }
  if (narBytes !== info.narSize) throw mismatch(what, `the NAR has ${narBytes} bytes, NarSize says ${info.narSize}`);
  const want = parseNarHash(info.narHash)!;
  const got = narSha.digest();
  if (!got.equals(want)) throw mismatch(what, `NarHash is sha256:${nixBase32Encode(want)}, the NAR hashes to sha256:${nixBase32Encode(got)}`);
}

function mismatch(what: string, why: string, cause?: unknown): NarMismatchError {
  return new NarMismatchError(`the NAR of ${what} is not the one its narinfo describes: ${why}`, [what.split(' ')[0]!], undefined, cause === undefined ? undefined : { cause });
}

/** The cache's base URL, ending in `/` so that relative names resolve inside it. */
export function cacheUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ImgbuildError('usage', `--substituter ${JSON.stringify(shownUrlText(text))} is not a URL`, 'name the binary cache as Nix does: https://cache.nixos.org, http://host:port/path or file:///dir');
  }
  if (!['http:', 'https:', 'file:'].includes(url.protocol)) {
    throw new ImgbuildError('usage', `--substituter ${shownUrl(url)}: imgbuild reads binary caches over http(s):// and file:// (not ${url.protocol}//)`, 's3:// and ssh:// caches: serve them over HTTP (an S3 bucket has an HTTPS endpoint) or copy them with nix copy');
  }
  if (url.search || url.hash) throw new ImgbuildError('usage', `--substituter ${shownUrl(url)}${url.search ? '' : url.hash}: query parameters are not read`, 'drop the part after ?');
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}
