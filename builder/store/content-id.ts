import { createHash, hash as oneShotHash } from 'node:crypto';
import type { NarNode } from './nar.js';

/**
 * What a store path's layer bytes depend on, from its scan: the sha256 of its NAR serialisation
 * (names, types, contents, executable bits, symlink targets: Nix's narHash) and the mode bits a
 * layer keeps beyond those (setuid, setgid, sticky; layer/modes.ts). Not where the files are, nor
 * their times or inodes. The layer cache keys a directory store's paths on it, so a copy of the
 * store somewhere else or with other file times — a fresh CI checkout, a restored workspace —
 * reuses its layers once the scan has read the same bytes.
 *
 * `content:<64 hex>`: sha256 over `nar:<narHash hex>\n`, then for each file or directory with
 * special bits, in tree order, `<path below the store path>\0<octal bits>\n`.
 */
export function contentId(narSha256Hex: string, tree: NarNode): string {
  // Most paths have no special bits: their id is one hash call (a Hash object per path showed in a scan's profile).
  if (!hasSpecial(tree) && typeof oneShotHash === 'function') return `content:${oneShotHash('sha256', `nar:${narSha256Hex}\n`, 'hex')}`;
  const h = createHash('sha256').update(`nar:${narSha256Hex}\n`);
  const walk = (node: NarNode, path: Buffer): void => {
    if (node.type === 'symlink') return;
    if (node.special) h.update(path).update(`\0${node.special.toString(8)}\n`);
    if (node.type === 'directory') {
      for (const [name, child] of node.entries) walk(child, Buffer.concat([path, Buffer.from('/'), name]));
    }
  };
  walk(tree, Buffer.alloc(0));
  return `content:${h.digest('hex')}`;
}

function hasSpecial(node: NarNode): boolean {
  if (node.type === 'symlink') return false;
  if (node.special) return true;
  return node.type === 'directory' && node.entries.some(([, child]) => hasSpecial(child));
}

/**
 * `contentId` from the files and directories with special bits, in tree order, each with its
 * path below the store path (the root's empty; `/a/b` below it), as a split scan collects them
 * (split-extras.ts) without a tree to walk.
 */
export function contentIdOf(narSha256Hex: string, specials: ReadonlyArray<{ path: Buffer; bits: number }>): string {
  if (specials.length === 0 && typeof oneShotHash === 'function') return `content:${oneShotHash('sha256', `nar:${narSha256Hex}\n`, 'hex')}`;
  const h = createHash('sha256').update(`nar:${narSha256Hex}\n`);
  for (const { path, bits } of specials) h.update(path).update(`\0${bits.toString(8)}\n`);
  return `content:${h.digest('hex')}`;
}
