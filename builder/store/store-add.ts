import { createHash, randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { chmodSync, copyFileSync, constants as fsConstants, lstatSync, lutimesSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { LayerContentError, StoreError } from '../errors.js';
import { dumpNar, readNarTree } from './nar.js';
import { nixBase32Encode } from './nix-base32.js';
import { checkStorePathName, normaliseStoreDir } from './store-path.js';

/**
 * `nix-store --add` for a directory store: a file or directory copied into `<dir>/<hash>-<name>`
 * under the store path Nix would give it, with Nix's canonical metadata. No Nix needed.
 *
 * The rule (Nix's `makeFixedOutputPath` for NAR ingestion with SHA-256, no references, which is
 * what `nix-store --add` and `builtins.path` use; `makeStorePath` in libstore/store-api.cc):
 *
 *     fingerprint = "source:sha256:" + hex(sha256(NAR of the path)) + ":" + storeDir + ":" + name
 *     hash part   = nix-base32(xor-fold(sha256(fingerprint), 20 bytes))
 *
 * where xor-fold is Nix's `compressHash` (byte i of the digest is XORed into byte i mod 20).
 * The store dir is part of the fingerprint: the same files have another path under another
 * store dir, as in Nix. `nix-store --add` records no references, so none are part of the hash
 * (a directory store finds references by scanning anyway).
 */
export interface AddToStoreOptions {
  /** The directory store (files at `<dir>/<hash>-<name>`); created when missing. */
  dir: string;
  /** The logical store dir, which is part of the hash (default `/nix/store`). */
  storeDir?: string;
  /** The store path's name (default: the source's base name, as `nix-store --add` names it). */
  name?: string;
}

export interface AddToStoreResult {
  /** The logical store path, `<storeDir>/<hash>-<name>`: what a spec's `contents` names. */
  path: string;
  /** Where its files are: `<dir>/<hash>-<name>`. */
  fsPath: string;
  /** `sha256:<nix-base32>` of its NAR serialisation (what `nix-store --query --hash` prints). */
  narHash: string;
  narSize: number;
  /** False when the store already held the path (with the same contents). */
  added: boolean;
}

/** Nix's mtime for everything in a store (`canonicalisePathMetaData`): one second after the epoch. */
const STORE_MTIME = 1;

/**
 * The store path of a NAR-hashed source path: `<storeDir>/<hash>-<name>` for the SHA-256 of its
 * NAR serialisation (Nix's `makeFixedOutputPath(Recursive, sha256, name)` without references).
 */
export function sourceStorePath(narSha256: Uint8Array, name: string, storeDir = '/nix/store'): string {
  const dir = normaliseStoreDir(storeDir);
  const why = checkStorePathName(name);
  if (why) throw new StoreError(`cannot make a store path named ${JSON.stringify(name)}: ${why}`, []);
  if (narSha256.length !== 32) throw new StoreError(`a NAR hash is 32 bytes of SHA-256, got ${narSha256.length}`, []);
  const fingerprint = `source:sha256:${Buffer.from(narSha256).toString('hex')}:${dir}:${name}`;
  return `${dir === '/' ? '' : dir}/${storePathHashPart(fingerprint)}-${name}`;
}

/** Nix's `compressHash(hashString(sha256, fingerprint), 20)` in nix-base32: a store path's 32-character hash part. */
export function storePathHashPart(fingerprint: string): string {
  const digest = createHash('sha256').update(fingerprint, 'utf8').digest();
  const folded = Buffer.alloc(20);
  for (let i = 0; i < digest.length; i++) folded[i % 20]! ^= digest[i]!;
  return nixBase32Encode(folded);
}

/** SHA-256 and size of the NAR serialisation of `fsPath`. */
export async function narSha256(fsPath: string): Promise<{ digest: Buffer; size: number }> {
  const tree = await readNarTree(fsPath);
  const h = createHash('sha256');
  let size = 0;
  await dumpNar(fsPath, tree, (chunk) => {
    size += chunk.length;
    h.update(chunk);
  });
  return { digest: h.digest(), size };
}

/**
 * Copy `source` (a file, a directory or a symlink; symlinks inside are kept as symlinks) into the
 * directory store `options.dir` under the path `nix-store --add` would give it, with Nix's
 * canonical metadata: files 0444, or 0555 when their owner could execute them; directories
 * 0555; every mtime 1 s; no setuid, setgid or sticky bit. The copy is made under a temporary
 * name in the store directory (which a directory store ignores), hashed — the hash is of the
 * copy, so a source changing meanwhile cannot give a path whose files differ from its name —
 * and renamed into place. A path the store already holds is checked to have the same contents.
 */
export async function addToStore(source: string, options: AddToStoreOptions): Promise<AddToStoreResult> {
  const src = resolve(source);
  const name = options.name ?? basename(src);
  const why = checkStorePathName(name);
  if (why) {
    throw new StoreError(`cannot add ${source} to the store as ${JSON.stringify(name)}: ${why}`, [], options.name === undefined ? 'name the store path with --name <name>' : undefined);
  }
  try {
    lstatSync(src);
  } catch (e) {
    throw new StoreError(`cannot add ${source} to the store: ${(e as Error).message}`, [], undefined, { cause: e });
  }
  const storeDir = normaliseStoreDir(options.storeDir ?? '/nix/store');
  const dir = resolve(options.dir);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new StoreError(`cannot create the store directory ${dir}: ${(e as Error).message}`, [dir], undefined, { cause: e });
  }
  const tmp = join(dir, `.imgbuild-add-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    copyCanonical(Buffer.from(src), Buffer.from(tmp));
    const { digest, size } = await narSha256(tmp);
    const path = sourceStorePath(digest, name, storeDir);
    const fsPath = join(dir, path.slice(path.lastIndexOf('/') + 1));
    const narHash = `sha256:${nixBase32Encode(digest)}`;
    if (exists(fsPath)) {
      await checkSame(fsPath, path, digest);
      return { path, fsPath, narHash, narSize: size, added: false };
    }
    try {
      renameInto(tmp, fsPath);
    } catch (e) {
      // Another add of the same contents won the race: the path is there now.
      if (!exists(fsPath)) throw new StoreError(`cannot move the copy into ${fsPath}: ${(e as Error).message}`, [path], undefined, { cause: e });
      await checkSame(fsPath, path, digest);
      return { path, fsPath, narHash, narSize: size, added: false };
    }
    return { path, fsPath, narHash, narSize: size, added: true };
  } finally {
    removeTree(tmp);
  }
}

/**
 * Copy `from` canonically to `to`: the root's directory mode is set after the rename. With a
 * stack of the directories open (each one's mode and mtime set once its entries are in), not a
 * call per level: a tree on disk may be ~2,000 directories deep. A name or symlink target that
 * is not UTF-8 is refused as the layer writer refuses it (every build of the path would): the
 * copy is then removed, and nothing is added.
 */
function copyCanonical(from: Buffer, to: Buffer): void {
  const open: Array<{ from: Buffer; to: Buffer; names: Buffer[]; i: number }> = [];
  const one = (src: Buffer, dst: Buffer): void => {
    let st;
    try {
      st = lstatSync(src);
    } catch (e) {
      throw new StoreError(`cannot read ${src.toString()}: ${(e as Error).message}`, [], undefined, { cause: e });
    }
    if (st.isSymbolicLink()) {
      const target = readlinkSync(src, { encoding: 'buffer' });
      if (!isUtf8(target)) throw new LayerContentError(`symlink ${src.toString()} has a target that is not valid UTF-8 (bytes ${target.toString('hex')})`, src.toString());
      symlinkSync(target, dst);
    } else if (st.isFile()) {
      // A reflink where the file system has them, else a plain copy.
      copyFileSync(src, dst, fsConstants.COPYFILE_FICLONE);
      chmodSync(dst, st.mode & 0o100 ? 0o555 : 0o444);
    } else if (st.isDirectory()) {
      mkdirSync(dst, { mode: 0o700 });
      const names = readdirSync(src, { encoding: 'buffer' });
      for (const n of names) {
        if (isUtf8(n)) continue;
        const shown = join(src.toString(), n.toString('latin1'));
        throw new LayerContentError(`${shown} has a name that is not valid UTF-8 (bytes ${n.toString('hex')}); layer paths must be UTF-8`, shown, 'rename the file');
      }
      open.push({ from: src, to: dst, names, i: 0 });
      return; // its mode and mtime once its entries are in
    } else {
      throw new StoreError(`${src.toString()} is neither a regular file, a directory nor a symlink; a store path cannot hold it`, []);
    }
    lutimesSync(dst, STORE_MTIME, STORE_MTIME);
  };
  one(from, to);
  while (open.length > 0) {
    const top = open[open.length - 1]!;
    if (top.i === top.names.length) {
      open.pop();
      // Read-only once its entries are in (the store's top entry: after it is renamed into place).
      if (open.length > 0) chmodSync(top.to, 0o555);
      lutimesSync(top.to, STORE_MTIME, STORE_MTIME);
      continue;
    }
    const n = top.names[top.i++]!;
    one(Buffer.concat([top.from, SLASH, n]), Buffer.concat([top.to, SLASH, n]));
  }
}

const SLASH = Buffer.from('/');

/** Rename the copy into place, then make its top directory read-only (and its mtime Nix's again). */
function renameInto(tmp: string, fsPath: string): void {
  renameSync(tmp, fsPath);
  const st = lstatSync(fsPath);
  if (st.isDirectory()) {
    chmodSync(fsPath, 0o555);
    lutimesSync(fsPath, STORE_MTIME, STORE_MTIME);
  }
}

async function checkSame(fsPath: string, path: string, digest: Buffer): Promise<void> {
  const there = await narSha256(fsPath);
  if (!there.digest.equals(digest)) {
    throw new StoreError(
      `${fsPath} is already in the store with other contents than its name says (its NAR hash is sha256:${nixBase32Encode(there.digest)})`,
      [path],
      `the store entry was changed after it was added; remove it (chmod -R u+w ${fsPath}; rm -rf ${fsPath}) and add again`,
    );
  }
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Remove a (possibly read-only) tree; nothing when it is not there. Directories are made
 * writable as they are opened, with a stack of its own (Node's recursive rmSync ran out of stack
 * on a tree ~2,000 directories deep).
 */
function removeTree(p: string): void {
  if (!exists(p)) return;
  const root = Buffer.from(p);
  if (!lstatSync(root).isDirectory()) return unlinkSync(root);
  const open: Array<{ path: Buffer; names: Buffer[]; i: number }> = [];
  const enter = (dir: Buffer): void => {
    chmodSync(dir, 0o700);
    open.push({ path: dir, names: readdirSync(dir, { encoding: 'buffer' }), i: 0 });
  };
  enter(root);
  while (open.length > 0) {
    const top = open[open.length - 1]!;
    if (top.i === top.names.length) {
      open.pop();
      rmdirSync(top.path);
      continue;
    }
    const child = Buffer.concat([top.path, SLASH, top.names[top.i++]!]);
    if (lstatSync(child).isDirectory()) enter(child);
    else unlinkSync(child);
  }
}
