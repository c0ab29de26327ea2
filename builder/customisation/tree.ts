import type { LayerEntry } from '../layer/types.js';
import { compareTreePaths } from '../layer/entry-order.js';

/**
 * Where a path of the customisation layer comes from, in override order:
 *   1. `copyToRoot` — directories and links of the linked store paths;
 *   2. `spec` — what the spec itself defines: the generated /etc files, then `directories`,
 *      `files`, `symlinks`.
 * A spec definition replaces what copyToRoot put at the same path. Two spec definitions of one
 * path are an error naming both. Parent directories nobody defines are `implicit` (mode 0755).
 */
export type Layer = 'copyToRoot' | 'spec' | 'implicit';

export interface TreeNode {
  /** The entry, its path absolute (`/etc/passwd`) until emitted. */
  entry: LayerEntry;
  layer: Layer;
  /** Who defined it, for messages: `files[2]`, `/nix/store/...-busybox`, ... */
  origin: string;
  /** The spec field it comes from, as keys and indexes (`['files', 2, 'path']`, `['copyToRoot', 0]`). */
  at?: PropertyKey[];
}

export class TreeConflict extends Error {
  constructor(message: string, readonly path: string, readonly origins: string[]) {
    super(message);
  }
}

/** Tar order (see builder/layer/entry-order.ts) for paths held as strings. */
export function compareTarPaths(a: string, b: string): number {
  return compareTreePaths(Buffer.from(a), Buffer.from(b));
}

function kindOf(entry: LayerEntry): string {
  return entry.kind === 'directory' ? 'a directory' : entry.kind === 'file' ? 'a file' : 'a symlink';
}

export class CustomisationTree {
  private readonly nodes = new Map<string, TreeNode>();

  get(path: string): TreeNode | undefined {
    return this.nodes.get(path);
  }

  /** Every node put so far (implicit parents only once `entries()` has added them). */
  all(): IterableIterator<TreeNode> {
    return this.nodes.values();
  }

  /** Put a node, applying the override rules above. `copyToRoot` collisions are resolved by the caller. */
  put(node: TreeNode): void {
    const path = node.entry.path;
    const existing = this.nodes.get(path);
    if (existing && existing.layer === 'spec' && node.layer === 'spec') {
      throw new TreeConflict(`${existing.origin} and ${node.origin} both define ${path}`, path, [existing.origin, node.origin]);
    }
    this.nodes.set(path, node);
  }

  /**
   * The entries in tar order, with paths made relative, after adding missing parent
   * directories and checking that every parent is a directory.
   */
  entries(): LayerEntry[] {
    for (const path of [...this.nodes.keys()]) {
      for (let parent = parentOf(path); parent !== '/'; parent = parentOf(parent)) {
        if (this.nodes.has(parent)) continue;
        this.nodes.set(parent, { entry: { kind: 'directory', path: parent, mode: 0o755 }, layer: 'implicit', origin: 'an implicit parent directory' });
      }
    }
    const paths = [...this.nodes.keys()].sort(compareTarPaths);
    for (const path of paths) {
      const node = this.nodes.get(path)!;
      for (let parent = parentOf(path); parent !== '/'; parent = parentOf(parent)) {
        const above = this.nodes.get(parent)!;
        if (above.entry.kind !== 'directory') {
          throw new TreeConflict(
            `${node.origin} puts ${path} inside ${parent}, which ${above.origin} makes ${kindOf(above.entry)}`,
            path,
            [node.origin, above.origin],
          );
        }
      }
    }
    return paths.map((p) => ({ ...this.nodes.get(p)!.entry, path: p.slice(1) }));
  }
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}
