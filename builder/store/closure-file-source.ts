import { lstat, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ClosureGraph, StorePathInfo } from '../../layering/types.js';
import { ImgbuildError, StoreError } from '../errors.js';
import { closureOf } from './closure-graph.js';
import { duplicateError, entryConflict, parseClosureFile, type ClosureFileEntry, type ClosureFileFormat } from './closure-file.js';
import { formatNarHashSri, parseNarHash } from './nar-hash.js';
import { narSize, readNarTree } from './nar.js';
import { ArchitectureWalks, type PathArchitectures } from './path-architectures.js';
import { normaliseStoreDir, parseStorePath } from './store-path.js';
import { racyCtime } from './racy.js';
import { fingerprintTree } from './tree-fingerprint.js';
import type { ClosureOptions, StoreSource } from './types.js';
import { verifyClosure } from './verify.js';

export interface ClosureFileSourceOptions {
  /** The closure file (any format `parseClosureFile` reads). */
  closureFile: string;
  /** Where the store paths' files are on this machine; default: the store dir itself. */
  dir?: string;
  /** Logical store dir; default: the directory of the paths in the file. */
  storeDir?: string;
  /** Check every narHash the file gives against the files (`--verify-store`). */
  verify?: boolean;
  /** Where header walks (pathArchitectures) are memoised, e.g. the scan cache dir; absent or `false`: not memoised. */
  cacheDir?: string | false;
}

/**
 * A closure exported by another CI step (`nix path-info --json --recursive`, exportReferencesGraph,
 * closureInfo), with the files in a store dir given separately. References and sizes come from the
 * file; the files are only checked to exist (and, with `verify`, hashed).
 */
export class ClosureFileStoreSource implements StoreSource {
  private constructor(
    readonly storeDir: string,
    readonly fsDir: string,
    readonly closureFile: string,
    readonly format: ClosureFileFormat,
    private readonly infos: Map<string, StorePathInfo>,
    private readonly verify: boolean,
    private readonly walks: ArchitectureWalks,
  ) {}

  /** Content ids of the paths `verify` checked against the file's narHash (closure()). */
  private readonly contentIds = new Map<string, string>();

  get description(): string {
    return `closure file ${this.closureFile} (${this.format}) with files in ${this.fsDir} (as ${this.storeDir})`;
  }

  static async open(opts: ClosureFileSourceOptions): Promise<ClosureFileStoreSource> {
    let text: string;
    try {
      text = await readFile(opts.closureFile, 'utf8');
    } catch (e) {
      throw new StoreError(`cannot read closure file ${opts.closureFile}: ${(e as Error).message}`, []);
    }
    const parsed = parseClosureFile(text, opts.closureFile);
    const first = parsed.entries[0]?.path;
    if (first === undefined) throw new StoreError(`closure file ${opts.closureFile} lists no store paths`, []);
    const storeDir = normaliseStoreDir(opts.storeDir ?? first.slice(0, first.lastIndexOf('/')));
    const fsDir = resolve(opts.dir ?? storeDir);
    const infos = new Map<string, StorePathInfo>();
    const entries = new Map<string, ClosureFileEntry>();
    for (const e of parsed.entries) {
      // The same path twice: fine when the entries agree (graph files concatenated), an error when
      // they do not (the later one would silently replace the first, dependencies and all).
      const seen = entries.get(e.path);
      const conflict = seen && entryConflict(seen, e);
      if (conflict) throw duplicateError(opts.closureFile, e.path, conflict);
      entries.set(e.path, e);
      parseStorePath(e.path, storeDir, `path in closure file ${opts.closureFile}:`);
      for (const r of e.references) parseStorePath(r, storeDir, `reference of ${e.path} in closure file ${opts.closureFile}:`);
      // The plain exportReferencesGraph format has no sizes: measure the files (metadata only).
      const size = e.narSize ?? (await measuredNarSize(e.path, join(fsDir, e.path.slice(storeDir.length + 1)), opts.closureFile, fsDir));
      const info: StorePathInfo = { path: e.path, narSize: size, references: e.references };
      if (e.narHash !== undefined) info.narHash = e.narHash;
      infos.set(e.path, info);
    }
    return new ClosureFileStoreSource(storeDir, fsDir, opts.closureFile, parsed.format, infos, opts.verify ?? false, new ArchitectureWalks(opts.cacheDir || undefined));
  }

  fsPath(storePath: string): string {
    return join(this.fsDir, parseStorePath(storePath, this.storeDir).baseName);
  }

  /** Paths no other path of the file references: the roots when a spec names none. */
  topLevelPaths(): string[] {
    const referenced = new Set<string>();
    for (const i of this.infos.values()) for (const r of i.references) if (r !== i.path) referenced.add(r);
    return [...this.infos.keys()].filter((p) => !referenced.has(p)).sort();
  }

  /** The closure of `roots` (all top-level paths of the file when empty), checked against the store dir. */
  async closure(roots: string[], options: ClosureOptions = {}): Promise<ClosureGraph> {
    const rs = roots.length > 0 ? roots : this.topLevelPaths();
    for (const r of rs) parseStorePath(r, this.storeDir, 'content path');
    const graph = closureOf(this.storeDir, rs, this.infos, `closure file ${this.closureFile}`);
    const referrer = new Map<string, string>();
    for (const p of graph.paths) for (const r of p.references) if (r !== p.path && !referrer.has(r)) referrer.set(r, p.path);
    for (const p of graph.paths) {
      const fsPath = this.fsPath(p.path);
      try {
        await lstat(fsPath);
      } catch {
        const by = referrer.get(p.path);
        throw missingPath(p.path, by, this.closureFile, this.fsDir, fsPath);
      }
    }
    if (this.verify) {
      let done = 0;
      await verifyClosure(graph, (p) => this.fsPath(p), 2, (p, id) => {
        this.contentIds.set(p, id);
        options.onProgress?.({ done: ++done, found: graph.paths.length });
      });
    }
    return graph;
  }

  /**
   * The architectures of the path's ELF files (see StoreSource), from the first 64 bytes of each
   * file. Cached under the narHash the file gives for the path once `verify` found the files match
   * it (the same bytes wherever they are), else under the location and stat fingerprint of its
   * files, as the scan cache does: a narHash not checked says nothing of the files (a closure file
   * left as it was beside files that changed), and a warm build must find what a cold one finds.
   */
  pathArchitectures(storePath: string): Promise<PathArchitectures> {
    const { path } = parseStorePath(storePath, this.storeDir);
    const fsPath = this.fsPath(path);
    return this.walks.of(path, fsPath, () => {
      const narHash = this.contentIds.has(path) ? this.infos.get(path)?.narHash : undefined;
      const h = narHash === undefined ? undefined : parseNarHash(narHash);
      // One spelling of the hash whatever the file's format, so two formats share records.
      if (h) return `nar:${formatNarHashSri(h)}`;
      // Before the fingerprint: files changed within a clock tick of it are walked, not recorded.
      const start = Date.now();
      const seen = { latestCtimeMs: -Infinity };
      const fingerprint = fingerprintTree(fsPath, seen);
      return racyCtime(seen.latestCtimeMs, start) ? undefined : `files:${fsPath}\n${fingerprint}`;
    });
  }

  /**
   * A path's content id once `--verify-store` has hashed its files and found the file's narHash
   * (see StoreSource): a copy of the store elsewhere then reuses its layers. Undefined without
   * verification, or for a path the file gives no narHash for.
   */
  async pathContentId(storePath: string): Promise<string | undefined> {
    return this.contentIds.get(storePath);
  }
}

/**
 * A path of the closure file whose files are not in the store dir. The hint names what makes a
 * store dir (`nix copy --to <root>` writes a local store's `<root>/nix/store`; `nix copy --to
 * file://…` makes a binary cache, which --substituter reads instead).
 */
function missingPath(path: string, by: string | undefined, closureFile: string, fsDir: string, fsPath: string): StoreError {
  return new StoreError(
    `${path}${by ? ` (referenced by ${by})` : ''} is in closure file ${closureFile} but missing from the store dir ${fsDir}: no ${fsPath}`,
    by ? [path, by] : [path],
    'copy the whole closure into the store dir (nix copy --to <root> <paths> writes <root>/nix/store: pass that with --store; or cp -a of every path); a binary cache made by nix copy --to file://... is read with --substituter instead',
  );
}

/** The NAR size of a path the plain exportReferencesGraph format gives none for, from its files (metadata only). */
async function measuredNarSize(path: string, fsPath: string, closureFile: string, fsDir: string): Promise<number> {
  try {
    await lstat(fsPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw missingPath(path, undefined, closureFile, fsDir, fsPath);
  }
  try {
    return narSize(await readNarTree(fsPath));
  } catch (e) {
    if (e instanceof ImgbuildError && e.code !== 'store') throw e;
    const why = e instanceof ImgbuildError ? e.message : `cannot read ${fsPath}: ${(e as Error).message}`;
    throw new StoreError(`${why} (measuring ${path}, to which closure file ${closureFile} gives no NAR size)`, [path], undefined, { cause: e });
  }
}
