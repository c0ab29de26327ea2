import type { ClosureGraph, StorePathInfo } from '../../layering/types.js';
import { keepIndexedGraph } from '../../layering/graph.js';
import { StoreError } from '../errors.js';
import { formatNarHashSri, parseNarHash } from './nar-hash.js';

/**
 * A reference cycle between distinct paths, as a list of paths whose last element references the
 * first, or undefined. Nix cannot create one (a path's hash would depend on itself), so a cycle
 * means the store was assembled by hand; self-references are normal and ignored here.
 */
export function findCycle(infos: ReadonlyMap<string, StorePathInfo>): string[] | undefined {
  // The usual answer (none) without sorting every path and copying every reference list; the
  // deterministic search below runs only to name a cycle there is.
  if (!hasCycle(infos)) return undefined;
  const state = new Map<string, 1 | 2>(); // 1: on the DFS stack, 2: done
  for (const start of [...infos.keys()].sort()) {
    if (state.has(start)) continue;
    // Iterative DFS so that a deep chain cannot overflow the JS stack.
    const stack: Array<{ path: string; next: number; refs: string[] }> = [];
    const push = (p: string): void => {
      state.set(p, 1);
      stack.push({ path: p, next: 0, refs: [...(infos.get(p)?.references ?? [])].sort() });
    };
    push(start);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next >= top.refs.length) {
        state.set(top.path, 2);
        stack.pop();
        continue;
      }
      const ref = top.refs[top.next++]!;
      if (ref === top.path || !infos.has(ref)) continue;
      const s = state.get(ref);
      if (s === 1) {
        const from = stack.findIndex((f) => f.path === ref);
        return stack.slice(from).map((f) => f.path);
      }
      if (s === undefined) push(ref);
    }
  }
  return undefined;
}

/** Whether `infos` has a reference cycle between distinct paths (iterative DFS, any order). */
function hasCycle(infos: ReadonlyMap<string, StorePathInfo>): boolean {
  const state = new Map<string, 1 | 2>(); // 1: on the DFS stack, 2: done
  const paths: string[] = [];
  const next: number[] = [];
  const refsOf: (readonly string[])[] = [];
  for (const start of infos.keys()) {
    if (state.has(start)) continue;
    state.set(start, 1);
    paths.push(start);
    next.push(0);
    refsOf.push(infos.get(start)!.references);
    while (paths.length > 0) {
      const top = paths.length - 1;
      const refs = refsOf[top]!;
      if (next[top]! >= refs.length) {
        state.set(paths[top]!, 2);
        paths.pop();
        next.pop();
        refsOf.pop();
        continue;
      }
      const ref = refs[next[top]!++]!;
      if (ref === paths[top] || !infos.has(ref)) continue;
      const s = state.get(ref);
      if (s === 1) return true;
      if (s === undefined) {
        state.set(ref, 1);
        paths.push(ref);
        next.push(0);
        refsOf.push(infos.get(ref)!.references);
      }
    }
  }
  return false;
}

export function cycleError(cycle: string[]): StoreError {
  return new StoreError(
    `reference cycle between distinct store paths: ${[...cycle, cycle[0]].join(' -> ')}`,
    cycle,
    'Nix never produces such cycles; the store was assembled by hand or a file embeds another path\'s hash by accident',
  );
}

/**
 * The closure of `roots` within `infos` (every path's info, e.g. from a closure file), checked:
 * roots present, no reference to a path `infos` lacks, no cycle. Paths sorted, references sorted.
 */
export function closureOf(
  storeDir: string,
  roots: string[],
  infos: ReadonlyMap<string, StorePathInfo>,
  describe: string,
): ClosureGraph {
  const seen = new Map<string, StorePathInfo>();
  const queue: string[] = [];
  for (const root of roots) {
    if (!infos.has(root)) throw new StoreError(`${root} is not in ${describe}`, [root]);
    queue.push(root);
  }
  while (queue.length > 0) {
    const p = queue.pop()!;
    if (seen.has(p)) continue;
    const info = infos.get(p)!;
    seen.set(p, info);
    for (const ref of info.references) {
      if (!infos.has(ref)) {
        throw new StoreError(`${p} references ${ref}, which is not in ${describe} (dangling reference)`, [p, ref]);
      }
      if (!seen.has(ref)) queue.push(ref);
    }
  }
  const cycle = findCycle(seen);
  if (cycle) throw cycleError(cycle);
  return finishGraph(storeDir, roots, seen.values());
}

/** A ClosureGraph with paths and references sorted (the deterministic order layering expects), NAR hashes as SRI. */
export function finishGraph(storeDir: string, roots: string[], infos: Iterable<StorePathInfo>): ClosureGraph {
  const paths = [...infos]
    .map((i) => {
      const out: StorePathInfo = { path: i.path, narSize: i.narSize, references: [...new Set(i.references)].sort() };
      // One form (SRI) whatever the source printed, so graphs from different sources compare equal.
      const h = i.narHash === undefined ? undefined : parseNarHash(i.narHash);
      if (h) out.narHash = formatNarHashSri(h);
      return out;
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { storeDir, roots: [...new Set(roots)], paths };
}

/**
 * The ClosureGraph of `infos` (each path's references sorted and distinct already, as a directory
 * store makes them; a list: each path once): paths sorted, checked for cycles; the info objects
 * are taken as they are.
 */
export function closureGraph(storeDir: string, roots: string[], infos: ReadonlyMap<string, StorePathInfo> | readonly StorePathInfo[]): ClosureGraph {
  const list = isList(infos) ? [...infos] : [...infos.values()];
  // A list given sorted is confirmed in n - 1 comparisons (the sort is a merge of runs).
  const paths = list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // The planner's index of the graph, made (and checked for cycles) once here and kept for it:
  // at 50,000 paths a cycle search over string-keyed maps cost as much as the index.
  try {
    keepIndexedGraph(paths);
  } catch {
    // Not a graph the planner takes (a cycle, or a reference outside it): the cycle, if that is
    // what it is, named as before; anything else is the planner's to refuse.
    const cycle = findCycle(isList(infos) ? new Map(infos.map((i) => [i.path, i])) : infos);
    if (cycle) throw cycleError(cycle);
  }
  return { storeDir, roots: [...new Set(roots)], paths };
}

const isList = (infos: ReadonlyMap<string, StorePathInfo> | readonly StorePathInfo[]): infos is readonly StorePathInfo[] => Array.isArray(infos);
