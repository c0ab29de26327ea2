import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Stats } from 'node:fs';
import { LayerContentError, SpecError } from '../errors.js';
import type { ResolvedSpec } from '../spec/types.js';
import type { CustomisationTree } from './tree.js';
import { PermApplier, type PermRule } from '../layer/perms.js';
import type { LayerEntry } from '../layer/types.js';

/**
 * Link store paths into `/` the way nixpkgs' buildEnv does: for every path under each of
 * `pathsToLink`, directories become real directories (mode 0755) and everything else becomes a
 * symlink to the file in the store (`/bin/sh -> /nix/store/<hash>-busybox/bin/sh`). Unlike
 * buildEnv, a directory is never a symlink into the store, so other packages, the spec's files
 * and users' edits can always add to it.
 *
 * Like buildEnv, some paths are never linked (see skippedByBuildEnv).
 *
 * Two packages providing one path collide (an error naming both) unless they resolve to the same
 * thing: the same symlink target, or regular files with the same bytes and executable bit (then
 * the first package in `copyToRoot` order wins, as buildEnv's content check does).
 */

interface Linked {
  /** The store path that provided it. */
  pkg: string;
  isDir: boolean;
  /** Logical path the image link points to. */
  target: string;
  /** Where the link finally leads: a store symlink's own (absolute) target, else `target`. */
  resolved: string;
  fsPath: string;
  stat: Stats;
  /** Store-side paths it came from (`<pkg><rel>`): a directory several packages have lists each; perms rules match these. */
  sources: string[];
}

export async function linkCopyToRoot(
  spec: Pick<ResolvedSpec, 'file' | 'copyToRoot' | 'pathsToLink'> & { perms?: readonly PermRule[] },
  fsPathOf: (storePath: string) => string,
  tree: CustomisationTree,
  onPermMatch?: (index: number) => void,
): Promise<void> {
  const linked = new Map<string, Linked>();
  const fail = (message: string): never => {
    throw new SpecError(spec.file, 'copyToRoot', message);
  };

  const add = async (imagePath: string, item: Linked): Promise<void> => {
    const prev = linked.get(imagePath);
    if (!prev) {
      linked.set(imagePath, item);
      return;
    }
    if (prev.isDir && item.isDir) {
      prev.sources.push(...item.sources);
      return;
    }
    if (prev.isDir !== item.isDir) {
      const [dir, other] = prev.isDir ? [prev, item] : [item, prev];
      fail(`${imagePath} is a directory in ${dir.pkg} but not in ${other.pkg}; they cannot both be linked into /`);
    }
    if (prev.resolved === item.resolved || (await sameRegularFile(prev, item))) return;
    fail(`${imagePath} is provided by both ${prev.pkg} and ${item.pkg}; remove one from copyToRoot or narrow pathsToLink`);
  };

  const walk = async (pkg: string, fsDir: string, rel: string): Promise<void> => {
    const names = (await utf8Names(fsDir)).sort();
    for (const name of names) {
      const childRel = rel === '/' ? `/${name}` : `${rel}/${name}`;
      if (skippedByBuildEnv(childRel)) continue;
      const fsPath = `${fsDir}/${name}`;
      const stat = await lstat(fsPath);
      await add(childRel, await describe(pkg, childRel, fsPath, stat));
      if (stat.isDirectory()) await walk(pkg, fsPath, childRel);
    }
  };

  for (const pkg of spec.copyToRoot) {
    const fsRoot = fsPathOf(pkg);
    const rootStat = await lstatOrUndefined(fsRoot);
    if (!rootStat) fail(`${pkg} is not in the store (looked at ${fsRoot})`);
    if (!rootStat!.isDirectory()) fail(`${pkg} is a single file, not a directory; there is nothing to link into /`);
    for (const sub of spec.pathsToLink) {
      const fsPath = sub === '/' ? fsRoot : `${fsRoot}${sub}`;
      const stat = await lstatOrUndefined(fsPath);
      if (!stat || skippedByBuildEnv(sub)) continue;
      if (sub !== '/') {
        // The directories leading to a linked subtree are real directories too.
        for (let p = posix.dirname(sub); p !== '/'; p = posix.dirname(p)) {
          await add(p, { pkg, isDir: true, target: '', resolved: '', fsPath: `${fsRoot}${p}`, stat, sources: [`${pkg}${p}`] });
        }
        await add(sub, await describe(pkg, sub, fsPath, stat));
      }
      if (stat.isDirectory()) await walk(pkg, fsPath, sub);
    }
  }

  // perms rules (layer/perms.ts) match the store-side path an entry came from, as in a store layer.
  const perms = new PermApplier(spec.perms ?? [], onPermMatch);
  for (const [path, item] of linked) {
    const entry: LayerEntry = item.isDir ? { kind: 'directory', path, mode: 0o755 } : { kind: 'symlink', path, target: item.target };
    tree.put({
      entry: perms.empty ? entry : perms.apply(entry, item.sources),
      layer: 'copyToRoot',
      origin: `copyToRoot ${item.pkg}`,
      at: ['copyToRoot', spec.copyToRoot.indexOf(item.pkg)],
    });
  }
}

/**
 * Paths buildEnv never links, because every package has its own and they would collide or be
 * meaningless in `/`: Nix build metadata (`/nix-support`, `/propagated-build-inputs`), Info
 * directory indexes (`info/dir`), generated MIME caches (`/share/mime/*` except `packages`),
 * Perl's `perllocal.pod`, and anything named `log`.
 */
export function skippedByBuildEnv(rel: string): boolean {
  const base = rel.slice(rel.lastIndexOf('/') + 1);
  return (
    rel === '/nix-support' ||
    rel === '/propagated-build-inputs' ||
    rel.endsWith('info/dir') ||
    (rel.startsWith('/share/mime/') && !rel.startsWith('/share/mime/packages')) ||
    base === 'perllocal.pod' ||
    base === 'log'
  );
}

async function describe(pkg: string, rel: string, fsPath: string, stat: Stats): Promise<Linked> {
  const target = `${pkg}${rel}`;
  if (stat.isDirectory()) return { pkg, isDir: true, target, resolved: target, fsPath, stat, sources: [target] };
  let resolved = target;
  if (stat.isSymbolicLink()) resolved = posix.resolve(posix.dirname(target), await utf8Target(fsPath));
  return { pkg, isDir: false, target, resolved, fsPath, stat, sources: [target] };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A directory's entry names, each refused as the store layer refuses it when it is not UTF-8
 * (layer/tree-entries.ts): a lossy string would name a file that does not exist.
 */
async function utf8Names(dir: string): Promise<string[]> {
  const plain = await readdir(dir);
  // All-ASCII names (nearly every directory) are their bytes; any other: listed again as bytes.
  if (plain.every((n) => /^[\x00-\x7f]*$/.test(n))) return plain;
  return (await readdir(dir, { encoding: 'buffer' })).map((raw) => {
    try {
      return strictUtf8.decode(raw);
    } catch {
      const shown = `${dir}/${raw.toString('latin1')}`;
      throw new LayerContentError(`${shown} has a name that is not valid UTF-8 (bytes ${raw.toString('hex')}); layer paths must be UTF-8`, shown, 'rename the file');
    }
  });
}

/** A symlink's target, refused as the store layer refuses it when it is not UTF-8. */
async function utf8Target(link: string): Promise<string> {
  const raw = await readlink(link, { encoding: 'buffer' });
  try {
    return strictUtf8.decode(raw);
  } catch {
    throw new LayerContentError(`symlink ${link} has a target that is not valid UTF-8 (bytes ${raw.toString('hex')})`, link);
  }
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** Two regular files with the same bytes and the same executable bit link interchangeably. */
async function sameRegularFile(a: Linked, b: Linked): Promise<boolean> {
  if (!a.stat.isFile() || !b.stat.isFile()) return false;
  if (a.stat.size !== b.stat.size || (a.stat.mode & 0o100) !== (b.stat.mode & 0o100)) return false;
  const [x, y] = await Promise.all([sha256File(a.fsPath), sha256File(b.fsPath)]);
  return x === y;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
