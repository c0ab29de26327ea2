/**
 * What the customisation layer (the image's top layer) must leave alone: the store. Its entries
 * are applied over the store layers, so a file or symlink at the store dir or a directory above
 * it would replace the whole store (`/nix/store` a 1-byte file, every link into it dangling),
 * and an entry inside the store dir would change or add to store paths, which are immutable
 * (their NAR hashes, the Nix database and the SBOM describe them as the store layers hold them).
 *
 * A *directory* at the store dir or above it is allowed: it merges with the store layers' one
 * and sets its mode and owner (as dockerTools images do with `fakeRootCommands`, e.g. a
 * `/nix/store` writable by a user). The owner and mode of store entries are set with `perms`,
 * and `nixUid`/`nixGid`.
 *
 * Checked twice: with the spec (spec/resolve.ts), for the spec's own entries when the store dir
 * is known from the spec; and on the customisation layer's entries before any layer is written
 * (customisation/entries.ts), which also sees what `copyToRoot` links and the store dir a Nix
 * store reports.
 */

export type EntryKind = 'file' | 'directory' | 'symlink';

const article = (kind: EntryKind) => (kind === 'directory' ? 'a directory' : kind === 'file' ? 'a file' : 'a symlink');

/**
 * Why an entry of `kind` at absolute image path `path` in the customisation layer would break
 * the store at `storeDir`, or undefined when it does not.
 */
export function storeShadowProblem(path: string, kind: EntryKind, storeDir: string): string | undefined {
  if (path === storeDir) {
    if (kind === 'directory') return undefined;
    return `${path} is the store dir: ${article(kind)} there would replace the directory holding the image's store paths; the store dir and the directories above it must stay directories`;
  }
  if (storeDir.startsWith(`${path}/`)) {
    if (kind === 'directory') return undefined;
    return `${path} holds the store dir ${storeDir}: ${article(kind)} there would replace the store; the store dir and the directories above it must stay directories`;
  }
  if (path.startsWith(`${storeDir}/`)) {
    return `${path} is inside the store dir ${storeDir}, which holds the closure's store paths and nothing else: store paths are immutable (add store paths with \`contents\`; set the owner or mode of their files with \`perms\`)`;
  }
  return undefined;
}

/** The files `users`/`groups` generate (customisation/etc-files.ts). */
export const ACCOUNT_FILES = ['/etc/group', '/etc/nsswitch.conf', '/etc/passwd', '/etc/shadow'] as const;

/** The directories includeNixDB writes (customisation/nix-db.ts); the gcroots ones only with roots. */
const NIX_DB_DIRS = ['/nix', '/nix/var', '/nix/var/nix', '/nix/var/nix/db'];
const NIX_GCROOTS_DIRS = ['/nix/var/nix/gcroots', '/nix/var/nix/gcroots/docker'];

/**
 * Why a spec entry of `kind` at `path` conflicts with the Nix database `includeNixDB` writes, or
 * undefined. `roots`: the closure roots that are store paths (each gets a GC root link named
 * after it); roots a Nix store realises from installables are known only when it has.
 */
export function nixDbProblem(path: string, kind: EntryKind, roots: readonly string[]): string | undefined {
  const dirs = roots.length > 0 ? [...NIX_DB_DIRS, ...NIX_GCROOTS_DIRS] : NIX_DB_DIRS;
  if (dirs.includes(path)) {
    return kind === 'directory' ? undefined : `${path} must stay a directory: includeNixDB writes the Nix database under it`;
  }
  const written = ['/nix/var/nix/db/db.sqlite', '/nix/var/nix/db/schema', ...roots.map((r) => `/nix/var/nix/gcroots/docker/${r.slice(r.lastIndexOf('/') + 1)}`)];
  const hit = written.find((w) => path === w || path.startsWith(`${w}/`));
  if (hit) return `${hit} is written by includeNixDB (the Nix database and its GC roots)`;
  return undefined;
}
