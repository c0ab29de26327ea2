/**
 * A realistic store graph from this machine's installed Debian packages, for layering benchmarks:
 * each package is a store path whose narSize is its Installed-Size and whose references are its
 * Depends/Pre-Depends (alternatives and virtual packages resolved to installed packages). Debian
 * allows dependency cycles and Nix does not, so cycles are broken deterministically. Hashes are
 * derived like Nix's: from the package, its bump generation and its references' hashes, so a bump
 * gives the package and everything that depends on it new store paths.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { ClosureGraph, StorePathInfo } from '../layering/types.js';

export interface DebianPackage {
  name: string;
  version: string;
  /** Installed-Size × 1024. */
  narSize: number;
  /** Resolved, acyclic dependencies (installed package names), sorted. */
  deps: string[];
}

export interface DebianStore {
  /** By name, sorted by name. */
  packages: Map<string, DebianPackage>;
}

interface RawPackage {
  name: string;
  version: string;
  kib: number;
  depends: string[][];
  provides: string[];
}

/** Installed packages as dpkg-query reports them. */
export function readInstalledPackages(): RawPackage[] {
  const out = execFileSync(
    'dpkg-query',
    ['-W', '-f', '${Package}\t${Version}\t${Installed-Size}\t${Depends}\t${Pre-Depends}\t${Provides}\t${db:Status-Abbrev}\n'],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const list: RawPackage[] = [];
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [name = '', version = '', kib = '0', depends = '', preDepends = '', provides = '', status = ''] = line.split('\t');
    if (!status.startsWith('ii')) continue;
    const rel = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
    const pkgName = (s: string) => s.trim().split(/[\s(]/)[0]!.replace(/:[a-z0-9]+$/, '');
    list.push({
      name,
      version,
      kib: Number(kib) || 0,
      depends: [...rel(preDepends), ...rel(depends)].map((alt) => alt.split('|').map(pkgName)),
      provides: rel(provides).map(pkgName),
    });
  }
  return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The closure of `roots` (installed package names) as an acyclic package graph. Each dependency
 * is the first alternative that is installed, or failing that, provided by an installed package
 * (the first provider by name). Cycles are broken by a depth-first walk in name order that drops
 * every edge back to a package still on the walk's stack.
 */
export function debianStore(roots: readonly string[], raw: RawPackage[] = readInstalledPackages()): DebianStore {
  const byName = new Map(raw.map((p) => [p.name, p]));
  const providers = new Map<string, string[]>();
  for (const p of raw) for (const v of p.provides) providers.set(v, [...(providers.get(v) ?? []), p.name].sort());
  const resolve = (alts: string[]): string | undefined => {
    for (const a of alts) if (byName.has(a)) return a;
    for (const a of alts) {
      const prov = providers.get(a);
      if (prov && prov.length > 0) return prov[0];
    }
    return undefined;
  };
  const wanted = new Map<string, string[]>();
  const todo = roots.filter((r) => {
    if (!byName.has(r)) throw new Error(`package ${r} is not installed`);
    return true;
  });
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (wanted.has(name)) continue;
    const deps = [...new Set(byName.get(name)!.depends.map(resolve).filter((d): d is string => d !== undefined && d !== name))].sort();
    wanted.set(name, deps);
    todo.push(...deps);
  }
  // Break cycles: 0 = unvisited, 1 = on stack, 2 = done.
  const state = new Map<string, number>();
  const acyclic = new Map<string, string[]>();
  const visit = (name: string) => {
    state.set(name, 1);
    const kept: string[] = [];
    for (const d of wanted.get(name)!) {
      const s = state.get(d) ?? 0;
      if (s === 1) continue;
      if (s === 0) visit(d);
      kept.push(d);
    }
    acyclic.set(name, kept);
    state.set(name, 2);
  };
  for (const name of [...wanted.keys()].sort()) if (!state.has(name)) visit(name);
  const packages = new Map<string, DebianPackage>();
  for (const name of [...acyclic.keys()].sort()) {
    const r = byName.get(name)!;
    packages.set(name, { name, version: r.version, narSize: r.kib * 1024, deps: acyclic.get(name)! });
  }
  return { packages };
}

const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

function nixHash(input: string): string {
  const bytes = createHash('sha256').update(input).digest().subarray(0, 20);
  let out = '';
  for (let i = 0; i < 32; i++) {
    const bit = i * 5;
    const byte = bit >> 3;
    const v = ((bytes[byte]! | ((bytes[byte + 1] ?? 0) << 8)) >> (bit & 7)) & 31;
    out += NIX_BASE32[v];
  }
  return out;
}

/**
 * The store graph of a Debian store where package `name` has been bumped `generations.get(name)`
 * times (default 0). Paths are sorted; a bump changes the package's hash and, through the
 * references, the hash of everything that depends on it.
 */
export function storeGraph(store: DebianStore, generations: ReadonlyMap<string, number> = new Map()): ClosureGraph {
  const pathOf = new Map<string, string>();
  const path = (name: string): string => {
    const known = pathOf.get(name);
    if (known) return known;
    const p = store.packages.get(name)!;
    const refs = p.deps.map(path);
    const version = p.version.replace(/[^A-Za-z0-9+._?=-]/g, '_');
    const hash = nixHash(`${name}\0${version}\0${generations.get(name) ?? 0}\0${refs.join('\0')}`);
    const full = `/nix/store/${hash}-${name}-${version}`;
    pathOf.set(name, full);
    return full;
  };
  const paths: StorePathInfo[] = [...store.packages.values()].map((p) => ({
    path: path(p.name),
    narSize: p.narSize,
    references: p.deps.map(path).sort(),
  }));
  paths.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const roots = paths.filter((p) => !paths.some((q) => q.references.includes(p.path))).map((p) => p.path);
  return { storeDir: '/nix/store', roots, paths };
}
