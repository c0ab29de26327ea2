import { SPECIAL_BITS } from '../store/nar.js';

export { SPECIAL_BITS };

/**
 * Permission bits of layer entries. Files on disk are canonicalised the way Nix canonicalises a
 * store path (`canonicalisePathMetaData`): the host's umask, the checkout's modes and the
 * owner's write bit never reach the image.
 *
 * - regular file: 0555 when the owner may execute it, else 0444;
 * - directory: 0555;
 * - setuid / setgid / sticky bits are kept on both (a 4755 file becomes 4555), so images can carry
 *   a setuid helper or a sticky directory deliberately;
 * - symlinks carry no mode (tar writes 0777, which every runtime ignores).
 */

const OWNER_EXEC = 0o100;

/** Mode of the directories above the store (`nix`, `nix/store`): writable by root like a real Nix install's /nix. */
export const STORE_PARENT_DIR_MODE = 0o755;

export function canonicalFileMode(statMode: number): number {
  return (statMode & SPECIAL_BITS) | (statMode & OWNER_EXEC ? 0o555 : 0o444);
}

export function canonicalDirMode(statMode: number): number {
  return (statMode & SPECIAL_BITS) | 0o555;
}

/** Mode written for a symlink header (POSIX leaves it unspecified; GNU tar and Go write 0777). */
export const SYMLINK_MODE = 0o777;
