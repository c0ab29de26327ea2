/**
 * A realistic directory store (~1 GB, a few hundred paths) made from this machine's installed
 * Debian packages, for the build and push benchmarks. Each package becomes a store path
 * `<hash>-<name>-<version>` holding a copy of its files (`dpkg -L`: regular files and symlinks);
 * its Depends/Pre-Depends, resolved to installed packages with cycles broken deterministically
 * (bench/debian-graph.ts), become references: the referenced store paths are written into
 * `nix-support/propagated` so that the directory source's scan finds them, as it would find them
 * in a real Nix path's files.
 *
 * Packages are taken in name order, each with its whole dependency closure, while the total
 * stays under the budget, so the store is closed under references.
 *
 * The store is cached under /var/tmp/imgbuild-bench-store/<version>-<budget>M (delete to
 * regenerate). `bump(name)` adds a new generation of one package to the same store dir (as a
 * Nix store holds old and new paths side by side): the package and every path depending on it
 * get new hashes; unchanged files are hard links.
 *
 * Run alone to generate and describe: node dist/bench/debian-store.js [budgetMB]
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, readdirSync, rmSync, statfsSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { debianStore, readInstalledPackages, storeGraph, type DebianPackage, type DebianStore } from './debian-graph.js';
import type { ClosureGraph } from '../layering/types.js';

/** Bump when the generator changes, so an old cached store is not reused. */
export const GENERATOR_VERSION = 'v2';
const BASE = '/var/tmp/imgbuild-bench-store';
const SD = '/nix/store';

export interface GeneratedStore {
  /** Where the store paths are on disk. */
  dir: string;
  storeDir: string;
  /** The generation-0 graph: every path, its references, and (measured) sizes. */
  graph: ClosureGraph;
  /** Top-level paths (nothing references them). */
  roots: string[];
  /** Bytes of regular files copied. */
  fileBytes: number;
  packages: DebianStore;
}

/** Saved next to the store: the package graph as generated (the installed packages may change later). */
interface Meta {
  version: string;
  budget: number;
  packages: DebianPackage[];
  fileBytes: number;
}

function listFiles(pkg: string): string[] {
  const info = '/var/lib/dpkg/info';
  for (const f of [`${pkg}.list`, `${pkg}:amd64.list`, `${pkg}:all.list`]) {
    if (existsSync(join(info, f))) return readFileSync(join(info, f), 'utf8').split('\n').filter(Boolean);
  }
  return [];
}

/** Regular files and symlinks a package installed (directories are implied by their contents). */
function packageFiles(pkg: string): { path: string; size: number; link: boolean }[] {
  const out: { path: string; size: number; link: boolean }[] = [];
  const listed = listFiles(pkg);
  // A listed directory that is a symlink on this machine (usrmerge: /lib → usr/lib) holds other
  // entries: keep those as real directories in the copy, not the alias.
  const parents = new Set(listed.flatMap((f) => f.split('/').slice(1, -1).map((_, i, parts) => `/${parts.slice(0, i + 1).join('/')}`)));
  for (const f of listed) {
    if (parents.has(f)) continue;
    let st;
    try {
      st = lstatSync(f);
    } catch {
      continue; // diverted or removed since
    }
    if (st.isFile()) out.push({ path: f, size: st.size, link: false });
    else if (st.isSymbolicLink()) out.push({ path: f, size: 0, link: true });
  }
  return out;
}

/** Package names: in name order, each with its closure, while the total stays within `budget`. */
function choosePackages(budget: number): string[] {
  const raw = readInstalledPackages();
  const full = debianStore(raw.map((p) => p.name), raw);
  const sizes = new Map<string, number>();
  const sizeOf = (n: string) => {
    let s = sizes.get(n);
    if (s === undefined) sizes.set(n, (s = packageFiles(n).reduce((t, f) => t + f.size, 0)));
    return s;
  };
  const closureOf = (n: string, acc: Set<string>) => {
    if (acc.has(n)) return;
    acc.add(n);
    for (const d of full.packages.get(n)!.deps) closureOf(d, acc);
  };
  const chosen = new Set<string>();
  let total = 0;
  for (const name of full.packages.keys()) {
    if (chosen.has(name)) continue;
    const c = new Set<string>();
    closureOf(name, c);
    const extra = [...c].filter((n) => !chosen.has(n)).reduce((t, n) => t + sizeOf(n), 0);
    if (total + extra > budget) continue;
    for (const n of c) chosen.add(n);
    total += extra;
  }
  return [...chosen].sort();
}

const baseName = (p: string) => p.slice(SD.length + 1);

function writePath(dir: string, path: string, pkg: string, references: string[]): number {
  const root = join(dir, baseName(path));
  rmSync(root, { recursive: true, force: true });
  let bytes = 0;
  for (const f of packageFiles(pkg)) {
    const dest = join(root, relative('/', f.path));
    mkdirSync(dirname(dest), { recursive: true });
    if (f.link) symlinkSync(readlinkSync(f.path), dest);
    else {
      copyFileSync(f.path, dest);
      bytes += f.size;
    }
  }
  mkdirSync(join(root, 'nix-support'), { recursive: true });
  writeFileSync(join(root, 'nix-support', 'propagated'), `${references.filter((r) => r !== path).join(' ')}\n`);
  return bytes;
}

/** Generates (or reuses) the store for `budgetMB`. */
export function generateStore(budgetMB = 1024, log: (s: string) => void = () => {}): GeneratedStore {
  const budget = budgetMB * 2 ** 20;
  const home = join(BASE, `${GENERATOR_VERSION}-${budgetMB}M`);
  const dir = join(home, 'store');
  const metaFile = join(home, 'meta.json');
  let meta: Meta | undefined;
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Meta;
  } catch {
    meta = undefined;
  }
  if (!meta || meta.version !== GENERATOR_VERSION || meta.budget !== budget) {
    mkdirSync(BASE, { recursive: true });
    const fs = statfsSync(BASE);
    const free = fs.bavail * fs.bsize;
    if (free < budget * 3) throw new Error(`${BASE} has ${(free / 2 ** 30).toFixed(1)} GiB free; the store and the benchmark outputs need about ${((budget * 3) / 2 ** 30).toFixed(1)} GiB`);
    log(`generating a ${budgetMB} MB store from installed Debian packages in ${dir} ...`);
    rmSync(home, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const packages = debianStore(choosePackages(budget));
    const graph = storeGraph(packages);
    const pkgOf = pathToPackage(graph, packages);
    let fileBytes = 0;
    for (const p of graph.paths) fileBytes += writePath(dir, p.path, pkgOf.get(p.path)!, p.references);
    meta = { version: GENERATOR_VERSION, budget, packages: [...packages.packages.values()], fileBytes };
    writeFileSync(metaFile, JSON.stringify(meta));
  }
  const packages: DebianStore = { packages: new Map(meta.packages.map((p) => [p.name, p])) };
  const graph = storeGraph(packages);
  const referenced = new Set(graph.paths.flatMap((p) => p.references));
  const roots = graph.paths.map((p) => p.path).filter((p) => !referenced.has(p));
  return { dir, storeDir: SD, graph, roots, fileBytes: meta.fileBytes, packages };
}

function pathToPackage(graph: ClosureGraph, packages: DebianStore): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of graph.paths) {
    // `<hash>-<name>-<version>`: the package whose name and sanitised version give this suffix.
    const rest = baseName(p.path).slice(33);
    for (const pkg of packages.packages.values()) {
      const version = pkg.version.replace(/[^A-Za-z0-9+._?=-]/g, '_');
      if (rest === `${pkg.name}-${version}`) out.set(p.path, pkg.name);
    }
  }
  return out;
}

/**
 * A new generation of package `name` in the same store dir: it and everything that depends on it
 * get new store paths (files hard-linked from the old generation, `propagated` rewritten, and
 * one byte of the bumped package's nix-support changed). Returns the new graph and its roots.
 */
export function bump(store: GeneratedStore, name: string, generation = 1): { graph: ClosureGraph; roots: string[]; changed: string[] } {
  const graph = storeGraph(store.packages, new Map([[name, generation]]));
  const old = new Map(store.graph.paths.map((p) => [baseName(p.path).slice(33), p.path]));
  const changed: string[] = [];
  for (const p of graph.paths) {
    const suffix = baseName(p.path).slice(33);
    const before = old.get(suffix)!;
    if (before === p.path) continue;
    changed.push(p.path);
    const dest = join(store.dir, baseName(p.path));
    if (existsSync(join(dest, 'nix-support', 'propagated'))) continue; // made by an earlier run
    linkTree(join(store.dir, baseName(before)), dest);
    const propagated = join(dest, 'nix-support', 'propagated');
    rmSync(propagated); // a hard link: replace, never write through
    writeFileSync(propagated, `${p.references.filter((r) => r !== p.path).join(' ')}\n${suffix.startsWith(`${name}-`) ? `generation ${generation}\n` : ''}`);
  }
  const referenced = new Set(graph.paths.flatMap((p) => p.references));
  return { graph, roots: graph.paths.map((p) => p.path).filter((p) => !referenced.has(p)), changed };
}

function linkTree(from: string, to: string): void {
  const st = lstatSync(from);
  if (st.isDirectory()) {
    mkdirSync(to, { recursive: true });
    for (const n of readdirSync(from)) linkTree(join(from, n), join(to, n));
  } else if (st.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
  else linkSync(from, to);
}

/** A package in the middle of the graph: depended on by some paths (5..40 transitively), the largest such. */
export function midLevelPackage(store: GeneratedStore): string {
  const dependents = new Map<string, Set<string>>();
  for (const pkg of store.packages.packages.values()) for (const d of pkg.deps) dependents.set(d, (dependents.get(d) ?? new Set()).add(pkg.name));
  const transitive = (n: string, acc = new Set<string>()): Set<string> => {
    for (const d of dependents.get(n) ?? []) if (!acc.has(d)) transitive(d, acc.add(d));
    return acc;
  };
  let best: { name: string; size: number } | undefined;
  for (const pkg of store.packages.packages.values()) {
    const n = transitive(pkg.name).size;
    if (n < 5 || n > 40) continue;
    if (!best || pkg.narSize > best.size) best = { name: pkg.name, size: pkg.narSize };
  }
  if (!best) throw new Error('no mid-level package in this store');
  return best.name;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const budgetMB = Number(process.argv[2] ?? 1024);
  const s = generateStore(budgetMB, (m) => process.stderr.write(`${m}\n`));
  const du = execFileSync('du', ['-sb', s.dir], { encoding: 'utf8' }).split('\t')[0];
  process.stdout.write(
    `${s.dir}: ${s.graph.paths.length} paths, ${s.roots.length} roots, ${(s.fileBytes / 1e9).toFixed(2)} GB of files (du ${(Number(du) / 1e9).toFixed(2)} GB); mid-level package: ${midLevelPackage(s)}\n`,
  );
}
