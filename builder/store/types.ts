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
  closure(roots: string[]): Promise<ClosureGraph>;
  /**
   * For sources whose files may be edited in place (a plain directory): a digest of the path's
   * tree metadata (names, types, sizes, modes, mtimes, ctimes), without reading file contents.
   * The layer cache keys on it. Absent for a real Nix store, whose paths are immutable.
   */
  pathFingerprint?(storePath: string): Promise<string>;
}
