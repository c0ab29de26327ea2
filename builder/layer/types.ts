import type { Digest } from '../../oci/digest.js';

/**
 * One entry of a layer tarball. `path` is the path inside the image, relative, without a leading
 * or trailing slash (`nix/store/<hash>-hello/bin/hello`). Producers yield entries in the final
 * tar order: depth-first, parents before children, siblings sorted by the bytes of their names
 * (the order of GNU tar's --sort=name).
 */
export type LayerEntry = DirectoryEntry | FileEntry | SymlinkEntry;

interface EntryBase {
  path: string;
  /** Owner overrides; the writer's defaults (from the spec) apply when absent. */
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

export interface DirectoryEntry extends EntryBase {
  kind: 'directory';
  /** Permission bits including setuid/setgid/sticky, e.g. 0o555 or 0o1777. */
  mode: number;
}

export interface FileEntry extends EntryBase {
  kind: 'file';
  mode: number;
  content: FileContent;
}

export interface SymlinkEntry extends EntryBase {
  kind: 'symlink';
  target: string;
}

export type FileContent =
  | { from: 'disk'; fsPath: string; size: number }
  | { from: 'bytes'; data: Uint8Array }
  /**
   * Bytes read from a stream as the tar is made (a file inside a NAR fetched from a binary cache):
   * `read()` gives exactly `size` bytes and is called once; the writer takes them all before it
   * asks for the next entry, so nothing is held beyond one chunk.
   */
  | { from: 'stream'; size: number; read: () => AsyncIterable<Uint8Array> };

export type { Compressor } from '../spec/types.js';
import type { Compressor } from '../spec/types.js';

/** Fixed header fields: never taken from the host. */
export interface TarHeaderDefaults {
  /** Seconds since the epoch, written as every entry's mtime. */
  mtime: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
}

export interface LayerWriteOptions {
  header: TarHeaderDefaults;
  compressor: Compressor;
  /** Aborts the write (e.g. on SIGINT): the promise rejects with an AbortError and no temp file is left. */
  signal?: AbortSignal;
  /**
   * Progress: the bytes of tar made so far (before compression), at most every 100 ms and once
   * with the whole tar at the end. Never changes a byte of the layer (nor its cache key).
   */
  onProgress?: (tarBytes: number) => void;
  /**
   * Set when a build is allowed to drift (IMGBUILD_ALLOW_ZLIB_DRIFT=1) and this Node's deflate is
   * not the reference: the sha256 it gives for the golden input (zlib-guard.ts). Changes no byte
   * the writer makes; the cache keys layers on it, so drifted bytes never stand in for reference ones.
   */
  zlibDrift?: string;
}

/** A layer written to the blob store. Printable; everything an output or a push needs. */
export interface LayerBlob {
  /** Digest of the blob as stored (compressed when compressor is gzip). */
  digest: Digest;
  /** Digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: Digest;
  /** Size of the blob in bytes. */
  size: number;
  /** Size of the uncompressed tar in bytes. */
  uncompressedSize: number;
  mediaType: string;
}
