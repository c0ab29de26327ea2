import { SpecError } from '../errors.js';
import { compareTreePaths } from '../layer/entry-order.js';
import type { LayerEntry } from '../layer/types.js';

/**
 * Merge entry lists that are each in tar order into one list in tar order. A directory both
 * lists define is kept once (the first list's); any other path defined twice is an error.
 */
export function mergeEntries(specFile: string, ...lists: LayerEntry[][]): LayerEntry[] {
  const all = lists.flat().map((e) => ({ e, key: Buffer.from(e.path, 'utf8') }));
  all.sort((a, b) => compareTreePaths(a.key, b.key));
  const out: LayerEntry[] = [];
  for (const { e } of all) {
    const prev = out[out.length - 1];
    if (prev && prev.path === e.path) {
      if (prev.kind === 'directory' && e.kind === 'directory') continue;
      throw new SpecError(specFile, undefined, `/${e.path} is defined twice in the customisation layer (${prev.kind} and ${e.kind})`);
    }
    out.push(e);
  }
  return out;
}
