import type { ClosureGraph } from '../../layering/types.js';
import { SpecError } from '../errors.js';

/**
 * The closure without the `exclude` paths, as nix2container's `ignore`: each excluded path is
 * dropped from the graph, and so are the references to it; what it references stays (those paths
 * were already in the closure, and stay even when only the excluded path needed them — as
 * nix2container's jq filter keeps them). nixpkgs' excludePaths keeps them too.
 *
 * Refused, naming the path: an excluded path not in the closure (a typo would exclude nothing,
 * silently), and one a copyToRoot path needs (it, or in its closure): the links into `/` would
 * point at nothing.
 */
export function excludeFromClosure(closure: ClosureGraph, spec: { file: string; exclude: readonly string[]; copyToRoot: readonly string[] }): ClosureGraph {
  if (spec.exclude.length === 0) return closure;
  const byPath = new Map(closure.paths.map((p) => [p.path, p]));
  // Who first reached each path from copyToRoot, to say why it is needed.
  const via = new Map<string, string | undefined>();
  const queue: string[] = [];
  for (const r of spec.copyToRoot) if (!via.has(r)) (via.set(r, undefined), queue.push(r));
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const r of byPath.get(p)?.references ?? []) if (!via.has(r)) (via.set(r, p), queue.push(r));
  }
  const excluded = new Set<string>();
  spec.exclude.forEach((path, i) => {
    const field = `exclude[${i}]`;
    if (!byPath.has(path)) throw new SpecError(spec.file, field, `${path} is not in the closure of contents and copyToRoot, so there is nothing to exclude`, 'run `imgbuild closure <spec>` to list the closure, and name one of its paths');
    if (via.has(path)) {
      const chain = [path];
      for (let p = via.get(path); p !== undefined; p = via.get(p)) chain.unshift(p);
      const why = chain.length === 1 ? 'it is in copyToRoot' : `copyToRoot needs it: ${chain.join(' → ')}`;
      throw new SpecError(spec.file, field, `${path} cannot be excluded: ${why}, and its links into / would point at nothing`, 'exclude only paths that contents need, or take the path out of copyToRoot');
    }
    excluded.add(path);
  });
  return {
    storeDir: closure.storeDir,
    roots: closure.roots.filter((r) => !excluded.has(r)),
    paths: closure.paths.filter((p) => !excluded.has(p.path)).map((p) => (p.references.some((r) => excluded.has(r)) ? { ...p, references: p.references.filter((r) => !excluded.has(r)) } : p)),
  };
}
