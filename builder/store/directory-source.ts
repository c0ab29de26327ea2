import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pLimit from 'p-limit';
import type { ClosureGraph, StorePathInfo } from '../../layering/types.js';
import { cacheRoot } from '../cache-dir.js';
import { StoreError } from '../errors.js';
import { cycleError, findCycle, finishGraph } from './closure-graph.js';
import { dumpNar, narSize, readNarTree } from './nar.js';
import { RefScanner } from './ref-scanner.js';
import { ScanCache, targetsDigest } from './scan-cache.js';
import { fingerprintTree, treeFingerprint } from './tree-fingerprint.js';
import { isStorePathBaseName, normaliseStoreDir, parseStorePath } from './store-path.js';
import type { StoreSource } from './types.js';

export interface DirectoryStoreSourceOptions {
  /** Where scan results are memoised; `false` disables the cache. Default `<cacheRoot()>/scan`. */
  cacheDir?: string | false;
  /** Store paths in flight at once (default 4). Reads are synchronous (see readNarTree), so this mostly bounds memory. */
  concurrency?: number;
}

/**
 * A plain directory laid out like a store (`<fsDir>/<hash32>-<name>`), e.g. a store copied into a
 * CI workspace. References are found as Nix finds them: a path references every other entry of
 * the directory (and itself) whose hash part occurs in its NAR serialisation.
 */
export class DirectoryStoreSource implements StoreSource {
  readonly storeDir: string;
  readonly fsDir: string;
  readonly description: string;
  private readonly cache: ScanCache | undefined;
  private readonly concurrency: number;
  private entries: Promise<Map<string, string[]>> | undefined;
  private readonly infos = new Map<string, Promise<StorePathInfo>>();
  private readonly fingerprints = new Map<string, string>();
  /** How many paths were read and scanned, and how many were answered by the scan cache. */
  readonly stats = { scanned: 0, cached: 0 };

  constructor(fsDir: string, storeDir = '/nix/store', options: DirectoryStoreSourceOptions = {}) {
    this.fsDir = resolve(fsDir);
    this.storeDir = normaliseStoreDir(storeDir);
    this.description = `directory ${fsDir} (as ${this.storeDir})`;
    const cacheDir = options.cacheDir === undefined ? join(cacheRoot(), 'scan') : options.cacheDir;
    this.cache = cacheDir === false ? undefined : new ScanCache(cacheDir);
    this.concurrency = Math.max(1, options.concurrency ?? 4);
  }

  fsPath(storePath: string): string {
    return join(this.fsDir, parseStorePath(storePath, this.storeDir).baseName);
  }

  /** Hash part → the entry names with that hash part (more than one only in a hand-made store). */
  private listEntries(): Promise<Map<string, string[]>> {
    this.entries ??= (async () => {
      let names: string[];
      try {
        names = await readdir(this.fsDir);
      } catch (e) {
        throw new StoreError(`cannot list the store directory ${this.fsDir}: ${(e as Error).message}`, [this.fsDir]);
      }
      const byHash = new Map<string, string[]>();
      // Other entries (`.links`, lock files, stray files) cannot be referenced, as in a real store.
      for (const name of names.sort()) {
        if (!isStorePathBaseName(name)) continue;
        const h = name.slice(0, 32);
        byHash.set(h, [...(byHash.get(h) ?? []), name]);
      }
      return byHash;
    })();
    return this.entries;
  }

  /** One path's NAR size and references (memoised in memory and, by fingerprint, on disk). */
  pathInfo(storePath: string): Promise<StorePathInfo> {
    let p = this.infos.get(storePath);
    if (!p) {
      p = this.computeInfo(storePath);
      this.infos.set(storePath, p);
    }
    return p;
  }

  /** The tree fingerprint computed with the path's info (for the scan cache); see StoreSource. */
  async pathFingerprint(storePath: string): Promise<string> {
    await this.pathInfo(storePath);
    return this.fingerprints.get(storePath)!;
  }

  private async computeInfo(storePath: string): Promise<StorePathInfo> {
    const sp = parseStorePath(storePath, this.storeDir);
    const entries = await this.listEntries();
    if (!entries.get(sp.hashPart)?.includes(sp.baseName)) {
      throw new StoreError(`${storePath} is not in ${this.description}`, [storePath]);
    }
    const fsPath = join(this.fsDir, sp.baseName);
    let digest: string | undefined;
    const digestOfTargets = (): string => (digest ??= targetsDigest(entries.keys()));

    // A path with a scan record is checked by a fingerprint walked straight off the disk (no NAR
    // tree built: the warm build's main cost); only a path to scan needs its tree.
    let fingerprint: string | undefined;
    let found: string[];
    let size: number;
    const cached = await this.cache?.lookup(fsPath, () => (fingerprint = fingerprintTree(fsPath)), entries, digestOfTargets);
    if (cached && fingerprint !== undefined) {
      this.stats.cached++;
      found = cached.found;
      size = cached.narSize;
    } else {
      this.stats.scanned++;
      const tree = await readNarTree(fsPath);
      // The fingerprint of the very tree scanned, for the record and the layer key alike.
      fingerprint = treeFingerprint(tree);
      const scanner = new RefScanner(entries);
      await dumpNar(fsPath, tree, (chunk) => scanner.push(chunk));
      found = [...scanner.found];
      size = narSize(tree);
      await this.cache?.save({
        v: 1,
        fsPath,
        fingerprint,
        narSize: size,
        windows: scanner.windows ? [...scanner.windows].sort() : null,
        targetsDigest: digestOfTargets(),
        found: found.sort(),
      });
    }
    this.fingerprints.set(storePath, fingerprint);
    const references = found.map((h) => {
      const names = entries.get(h)!;
      if (names.length > 1) {
        throw new StoreError(
          `${storePath} contains the hash ${h}, which more than one entry of ${this.fsDir} has: ${names.join(', ')}`,
          [storePath, ...names.map((n) => `${this.storeDir}/${n}`)],
          'a store holds one path per hash; remove the stale entries',
        );
      }
      return `${this.storeDir}/${names[0]!}`;
    });
    return { path: storePath, narSize: size, references: references.sort() };
  }

  async closure(roots: string[]): Promise<ClosureGraph> {
    for (const root of roots) parseStorePath(root, this.storeDir, 'content path');
    const entries = await this.listEntries();
    for (const root of roots) {
      const sp = parseStorePath(root, this.storeDir);
      if (!entries.get(sp.hashPart)?.includes(sp.baseName)) {
        throw new StoreError(`${root} is not in ${this.description}`, [root], `expected it at ${join(this.fsDir, sp.baseName)}`);
      }
    }
    const limit = pLimit(this.concurrency);
    const seen = new Map<string, StorePathInfo>();
    const started = new Set<string>();
    // Breadth-first, scanning up to `concurrency` paths at once.
    let frontier = [...new Set(roots)];
    for (const r of frontier) started.add(r);
    while (frontier.length > 0) {
      const infos = await Promise.all(frontier.map((p) => limit(() => this.pathInfo(p))));
      const next: string[] = [];
      for (const info of infos) {
        seen.set(info.path, info);
        for (const ref of info.references) {
          if (!started.has(ref)) {
            started.add(ref);
            next.push(ref);
          }
        }
      }
      frontier = next;
    }
    const cycle = findCycle(seen);
    if (cycle) throw cycleError(cycle);
    return finishGraph(this.storeDir, roots, seen.values());
  }
}
