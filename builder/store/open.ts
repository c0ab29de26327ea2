import { StoreError } from '../errors.js';
import { ClosureFileStoreSource } from './closure-file-source.js';
import { DirectoryStoreSource } from './directory-source.js';
import { NixStoreSource } from './nix-source.js';
import type { StoreSource } from './types.js';
import type { CacheFetchOptions } from './binary-cache/fetch.js';
import { BinaryCacheStoreSource } from './binary-cache/source.js';
import { parsePublicKeys } from './binary-cache/signatures.js';

export interface OpenStoreSourceOptions {
  kind: 'directory' | 'nix' | 'closure-file' | 'binary-cache';
  /** directory: the store-like directory (required). closure-file: where the files are (default: the store dir). */
  dir?: string;
  /** Logical store dir (default `/nix/store`; for nix, what Nix reports; for closure files, what the file says). */
  storeDir?: string;
  /** closure-file: the file (required). */
  closureFile?: string;
  /** `--verify-store`: check NAR hashes the source gives (nix, closure-file). */
  verify?: boolean;
  /** nix: directory that relative installables (`.#app`) resolve against. */
  cwd?: string;
  /** Where scan results (directory) and header walks (every kind: pathArchitectures) are cached (absent or `false`: no cache). */
  cacheDir?: string | false;
  /** directory: where whole closures are kept (closure-record.ts), with `cacheDir` (absent or `false`: none). */
  closureCacheDir?: string | false;
  /** directory: told of a damaged scan or closure record in the cache (a line for stderr; it is not used). */
  warn?: (message: string) => void;
  /** nix: the environment Nix commands run in (absent: the process's, inherited). */
  env?: Readonly<Record<string, string | undefined>>;
  /** binary-cache: the cache URL (required). */
  url?: string;
  /** binary-cache: trusted public keys in Nix's `name:base64` format. */
  publicKeys?: readonly string[];
  /** binary-cache: how requests are retried and timed out, and the abort signal. */
  fetch?: CacheFetchOptions;
}

/** The store source the CLI's options describe. */
export async function openStoreSource(opts: OpenStoreSourceOptions): Promise<StoreSource> {
  switch (opts.kind) {
    case 'directory':
      if (!opts.dir) throw new StoreError('a directory store source needs the directory that holds the store paths', []);
      if (opts.verify) {
        throw new StoreError('--verify-store needs a source that gives NAR hashes (nix or a closure file); a scanned directory has none', []);
      }
      return new DirectoryStoreSource(opts.dir, opts.storeDir ?? '/nix/store', { cacheDir: opts.cacheDir ?? false, closureCacheDir: opts.closureCacheDir ?? false, ...(opts.warn ? { warn: opts.warn } : {}) });
    case 'nix':
      return NixStoreSource.open({
        ...(opts.storeDir !== undefined ? { storeDir: opts.storeDir } : {}),
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
        ...(opts.env !== undefined ? { env: opts.env as NodeJS.ProcessEnv } : {}),
        verify: opts.verify ?? false,
        cacheDir: opts.cacheDir ?? false,
      });
    case 'closure-file':
      if (!opts.closureFile) throw new StoreError('a closure-file store source needs the closure file', []);
      return ClosureFileStoreSource.open({
        closureFile: opts.closureFile,
        ...(opts.dir !== undefined ? { dir: opts.dir } : {}),
        ...(opts.storeDir !== undefined ? { storeDir: opts.storeDir } : {}),
        verify: opts.verify ?? false,
        cacheDir: opts.cacheDir ?? false,
      });
    case 'binary-cache':
      if (!opts.url) throw new StoreError('a binary-cache store source needs the cache URL (store.url or --substituter)', []);
      return BinaryCacheStoreSource.open({
        url: opts.url,
        publicKeys: parsePublicKeys(opts.publicKeys ?? []),
        ...(opts.storeDir !== undefined ? { storeDir: opts.storeDir } : {}),
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
      });
    default:
      throw new StoreError(`unknown store source kind ${JSON.stringify((opts as { kind: unknown }).kind)}`, []);
  }
}
