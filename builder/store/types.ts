import type { ClosureGraph } from '../../layering/types.js';

/**
 * Where store paths come from. A source knows the logical store dir written into the image
 * (`/nix/store` by default) and where each logical path's files are on this machine; the two
 * differ when a copy of a store lives in a CI workspace.
 */
export interface StoreSource {
  /** Logical store dir, without trailing slash. */
  readonly storeDir: string;
  /** One line for messages, e.g. `directory ./store (as /nix/store)`. */
  readonly description: string;
  /** The on-disk location of a logical store path (`/nix/store/<hash>-x` → `/ci/store/<hash>-x`). */
  fsPath(storePath: string): string;
  /** The closure of `roots` (logical store paths): every path with its NAR size and references. */
  closure(roots: string[], options?: ClosureOptions): Promise<ClosureGraph>;
  /**
   * For a source that reads a path's bytes anyway (a plain directory, scanned for references; a
   * closure file's files under `--verify-store`): what the path's layer bytes depend on
   * (store/content-id.ts), not where its files are or when they were written. The layer cache
   * keys on it, so a copy of the store elsewhere reuses layers. Undefined (or absent) where
   * nothing read the path: it is keyed by where its files are and a stat fingerprint of their
   * tree. Absent for a real Nix store (immutable: the name is enough).
   */
  pathContentId?(storePath: string): Promise<string | undefined>;
  /** `pathContentId` of many paths at once, in order (one promise, not one per path: a layer can hold tens of thousands). */
  pathContentIds?(storePaths: readonly string[]): Promise<(string | undefined)[]>;
  /**
   * The architectures of the path's ELF files (elf.ts): Go/OCI name → one file of it, relative to
   * the path (path-architectures.ts). A directory store sees the headers as its scan reads every
   * file (kept in the scan record); a Nix store or closure file's files are read 64 bytes a file,
   * cached per path. closure-architectures.ts merges them over a closure. Absent: the source
   * cannot tell (the spec must then name the architecture).
   */
  pathArchitectures?(storePath: string): Promise<Record<string, string>>;
  /**
   * For a source whose references are found by scanning (a plain directory): the store paths
   * (`<storeDir>/<hash>`, without the name) that the path's files write out as
   * `<storeDir>/<hash>-…` but that the source does not hold — a dependency missing from a
   * hand-made store, which the image will then lack. Seen by the same scan (ref-scanner.ts),
   * kept in its record. A build warns of them; they are not an error (a path may name a store
   * path it never uses, such as a build-time tool in a comment). Absent: the source cannot tell.
   */
  absentMentions?(storePath: string): Promise<string[]>;
  /**
   * For a closure this source returned (the very object): the paths that have ELF architectures
   * (pathArchitectures) or absent mentions (absentMentions), every other path having none, so
   * that a build of tens of thousands of paths need not ask path by path. Undefined for any other
   * graph (an `exclude` makes another), or when the source cannot tell.
   */
  closureFacts?(closure: ClosureGraph): ClosureFacts | undefined;
  /**
   * True for a source whose paths never change under their names (a binary cache): a layer's
   * cache key is its paths' names, as for a real Nix store.
   */
  readonly immutable?: boolean;
  /**
   * For a source that has no files on disk (a binary cache): the path's NAR, as it arrives,
   * checked against the source's hashes (a mismatch fails the iteration before it ends). Store
   * layers are then made from it (layer/nar-entries.ts) instead of from `fsPath`.
   */
  narStream?(storePath: string): AsyncIterable<Uint8Array>;
}

/** What closureFacts gives: store path → its non-empty pathArchitectures, and → its non-empty absentMentions. */
export interface ClosureFacts {
  architectures: ReadonlyMap<string, Record<string, string>>;
  absent: ReadonlyMap<string, string[]>;
}

/** How a closure is asked for. */
export interface ClosureOptions {
  /**
   * Progress of a source that reads its paths' files (a directory store's scan, `--verify-store`):
   * called as each path is read, with how many are read and how many are known so far (a
   * directory store finds paths as it reads their references). Not throttled: cheap callers only.
   */
  onProgress?: (p: { done: number; found: number }) => void;
}
