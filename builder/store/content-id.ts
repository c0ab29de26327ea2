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
  return contentIdOf(narSha256Hex, specialsOf(tree));
}

const NONE: ReadonlyArray<{ path: Buffer; bits: number }> = Object.freeze([]);

/**
 * The files and directories of `tree` with special bits, in tree order, each with its path below
 * the tree's root (the root's empty; `/a/b` below it). A walk with a stack of its own, not a call
 * per level: a path on disk may be ~2,000 directories deep (PATH_MAX), and a recursive walk (with
 * `some` between its levels) ran out of the main thread's stack at ~80% of its default size.
 * A path is made only for a node that has bits (most trees have none).
 */
function specialsOf(tree: NarNode): ReadonlyArray<{ path: Buffer; bits: number }> {
  if (tree.type === 'symlink') return NONE;
  let out: Array<{ path: Buffer; bits: number }> | undefined;
  if (tree.special) (out ??= []).push({ path: Buffer.alloc(0), bits: tree.special });
  if (tree.type !== 'directory') return out ?? NONE;
  // The directories open, and the names of those below the root (names[k] is stack[k + 1]'s).
  const stack: Array<{ entries: Array<[Buffer, NarNode]>; i: number }> = [{ entries: tree.entries, i: 0 }];
  const names: Buffer[] = [];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i === top.entries.length) {
      stack.pop();
      names.pop();
      continue;
    }
    const [name, child] = top.entries[top.i++]!;
    if (child.type === 'symlink') continue;
    if (child.special) {
      const parts: Buffer[] = [];
      for (const n of names) parts.push(SLASH, n);
      parts.push(SLASH, name);
      (out ??= []).push({ path: Buffer.concat(parts), bits: child.special });
    }
    if (child.type === 'directory' && child.entries.length > 0) {
      stack.push({ entries: child.entries, i: 0 });
      names.push(name);
    }
  }
  return out ?? NONE;
}

const SLASH = Buffer.from('/');

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
