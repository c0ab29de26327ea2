import type { Stats } from 'node:fs';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { LayerContentError, StoreError } from '../errors.js';
import { compareTreePaths } from './entry-order.js';
import { handoverEntries } from './handover-entries.js';
import { isAsciiString } from './tar-header.js';
import { canonicalDirMode, canonicalFileMode, STORE_PARENT_DIR_MODE } from './modes.js';
import type { LayerEntry } from './types.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The entries of the tree at `fsPath` (a directory, file or symlink), placed at `imagePath` in the
 * layer, in tree order (depth-first, parents first, siblings by name bytes). Modes are
 * canonicalised (see modes.ts), symlinks kept as symlinks with their target verbatim, hard links
 * read as independent regular files. The walk is lazy (a generator): one directory listing per level
 * of depth is held at a time, and each entry is stat'ed just before it is yielded. The fs calls are
 * synchronous on purpose: metadata calls are cheap, and a thread-pool round trip per lstat cost
 * several times the call on a store of many small files (bench/build-speed.ts).
 */
export function* treeEntries(fsPath: string, imagePath: string): Generator<LayerEntry> {
  yield* walk(fsPath, imagePath, lstatOrThrow(fsPath));
}

/**
 * The entries of a store layer: the directories above the store (`nix`, `nix/store` for
 * `/nix/store`) once, with mode 0755, then each store path's tree, store paths sorted by name
 * bytes. `fsPathOf` maps a logical store path to where its files are on this machine.
 */
export function* storeLayerEntries(
  paths: string[],
  fsPathOf: (storePath: string) => string,
  storeDir: string,
  handoverOf?: HandoverLookup,
): Generator<LayerEntry> {
  const { parents, sorted } = storeLayerOutline(paths, storeDir);
  yield* parents;
  const skip = storeDir.length + 1;
  for (let k = 0; k < sorted.length; k++) {
    const storePath = sorted[k]!;
    const fsPath = fsPathOf(storePath);
    // What the path's scan learned of its files, when it handed it over: no second walk or read.
    const record = handoverOf?.(storePath, k);
    const handed = record ? handoverEntries(record, storePath.slice(skip), fsPath, storePath.slice(1)) : undefined;
    if (handed) {
      yield* handed;
      continue;
    }
    let st: Stats;
    try {
      st = lstatSync(fsPath);
    } catch (err) {
      throw new StoreError(
        `store path ${storePath} is not on disk: ${fsPath}: ${errText(err)}`,
        [storePath],
        'realise the closure first (nix-store --realise), or point the store source at a complete copy',
      );
    }
    yield* walk(fsPath, storePath.slice(1), st);
  }
}

/**
 * The hand-over record (store/handover.ts) of a layer's store path, if there is one: `index` is
 * the path's place among the layer's paths sorted (storeLayerOutline).
 */
export type HandoverLookup = (storePath: string, index: number) => Uint8Array | undefined;

/**
 * What every store layer starts with, whatever its paths' files are read from: the directories
 * above the store (`nix`, `nix/store`), and the store paths in the order their trees follow.
 */
export function storeLayerOutline(paths: string[], storeDir: string): { parents: LayerEntry[]; sorted: string[] } {
  const dir = checkStoreDir(storeDir);
  const sorted = sortStorePaths(paths, dir);
  const parts = dir.slice(1).split('/');
  const parents: LayerEntry[] = [];
  for (let i = 1; i <= parts.length; i++) parents.push({ kind: 'directory', path: parts.slice(0, i).join('/'), mode: STORE_PARENT_DIR_MODE });
  return { parents, sorted };
}

/**
 * The entries of the tree at `fsPath`, with a stack of the directories open rather than a
 * generator per level (`yield*` of a recursive one): a path on disk may be ~2,000 directories deep
 * (PATH_MAX), and each resumption walked down the chain of generators. A child's path is
 * `${dir}/${name}`: a name from readdir is never empty, `.`, `..` and holds no slash, so that is
 * what join(dir, name) gives, without normalising per file and directory (the root is joined).
 */
function* walk(fsPath: string, imagePath: string, st: Stats): Generator<LayerEntry> {
  if (!st.isDirectory()) {
    yield leaf(fsPath, imagePath, st);
    return;
  }
  yield { kind: 'directory', path: imagePath, mode: canonicalDirMode(st.mode) };
  let base = join(fsPath, '.');
  if (base === '.') base = '';
  else if (!base.endsWith('/')) base += '/';
  // Each directory is listed once its own entry is taken (one listing per level held at a time).
  const open: Array<{ base: string; image: string; names: string[]; i: number }> = [{ base, image: imagePath, names: listSorted(fsPath), i: 0 }];
  while (open.length > 0) {
    const top = open[open.length - 1]!;
    if (top.i === top.names.length) {
      open.pop();
      continue;
    }
    const name = top.names[top.i++]!;
    const childFs = top.base + name;
    const childSt = lstatOrThrow(childFs);
    const childImage = `${top.image}/${name}`;
    if (childSt.isDirectory()) {
      yield { kind: 'directory', path: childImage, mode: canonicalDirMode(childSt.mode) };
      open.push({ base: `${childFs}/`, image: childImage, names: listSorted(childFs), i: 0 });
    } else yield leaf(childFs, childImage, childSt);
  }
}

/** The entry of a file or symlink; anything else that is not a directory is refused. */
function leaf(fsPath: string, imagePath: string, st: Stats): LayerEntry {
  if (st.isFile()) return { kind: 'file', path: imagePath, mode: canonicalFileMode(st.mode), content: { from: 'disk', fsPath, size: st.size } };
  if (st.isSymbolicLink()) return { kind: 'symlink', path: imagePath, target: readTarget(fsPath) };
  throw new LayerContentError(
    `${fsPath} is a ${specialKind(st)}; a layer can only hold regular files, directories and symlinks`,
    fsPath,
    'remove it from the input tree',
  );
}

/** Names of a directory's entries sorted by their bytes; a name that is not UTF-8 is refused. */
function listSorted(dir: string): string[] {
  let plain: string[];
  try {
    plain = readdirSync(dir);
  } catch (err) {
    throw new LayerContentError(`cannot list ${dir}: ${errText(err)}`, dir);
  }
  // All-ASCII names (nearly every directory) are their bytes, and sort by bytes as strings: no
  // Buffer per name, no strict decode. Any other name: listed again as bytes, and judged there.
  if (plain.every(isAsciiString)) return plain.sort();
  let names: Buffer[];
  try {
    names = readdirSync(dir, { encoding: 'buffer' });
  } catch (err) {
    throw new LayerContentError(`cannot list ${dir}: ${errText(err)}`, dir);
  }
  names.sort(Buffer.compare);
  return names.map((raw) => {
    try {
      return strictUtf8.decode(raw);
    } catch {
      const shown = join(dir, raw.toString('latin1'));
      throw new LayerContentError(
        `${shown} has a name that is not valid UTF-8 (bytes ${raw.toString('hex')}); layer paths must be UTF-8`,
        shown,
        'rename the file',
      );
    }
  });
}

function readTarget(link: string): string {
  let raw: Buffer;
  try {
    raw = readlinkSync(link, { encoding: 'buffer' });
  } catch (err) {
    throw new LayerContentError(`cannot read symlink ${link}: ${errText(err)}`, link);
  }
  try {
    return strictUtf8.decode(raw);
  } catch {
    throw new LayerContentError(`symlink ${link} has a target that is not valid UTF-8 (bytes ${raw.toString('hex')})`, link);
  }
}

function lstatOrThrow(fsPath: string): Stats {
  try {
    return lstatSync(fsPath);
  } catch (err) {
    throw new LayerContentError(`cannot stat ${fsPath}: ${errText(err)}`, fsPath);
  }
}

function specialKind(st: Stats): string {
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'special file';
}

function checkStoreDir(storeDir: string): string {
  if (!/^(\/[^/\0]+)+$/.test(storeDir) || storeDir.split('/').some((p) => p === '.' || p === '..')) {
    throw new StoreError(`store dir ${JSON.stringify(storeDir)} must be an absolute, normalised path without a trailing slash (like /nix/store)`);
  }
  return storeDir;
}

/** Store paths sorted by name bytes, each once; anything that is not `<storeDir>/<name>` is refused. */
function sortStorePaths(paths: string[], storeDir: string): string[] {
  const prefix = `${storeDir}/`;
  const bad = paths.filter((p) => {
    const name = p.slice(prefix.length);
    return !p.startsWith(prefix) || name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0');
  });
  if (bad.length > 0) {
    throw new StoreError(`not a path directly inside the store ${storeDir}: ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', …' : ''}`, bad);
  }
  const unique = [...new Set(paths)];
  // The names hold no slash, so tree order is byte order; for ASCII names (every Nix store path
  // name) that is the order of UTF-16 units, the default sort, without a Buffer per path.
  if (unique.every(isAsciiString)) return unique.sort();
  const withBytes = unique.map((p) => ({ p, bytes: Buffer.from(p, 'utf8') }));
  withBytes.sort((a, b) => compareTreePaths(a.bytes, b.bytes));
  return withBytes.map((u) => u.p);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
