import type { ClosureGraph } from '../../layering/types.js';
import { StoreError } from '../errors.js';
import type { StoreSource } from './types.js';

/** Go/OCI architecture → one ELF file of it in the closure, as `<storePath>/<file>` (or the store path when it is the file). */
export type ClosureArchitectures = Record<string, string>;

/**
 * The architectures of every ELF file of `closure`, one file each (the architecture "follows the
 * content", issue 13). Deterministic: paths are taken in closure order (sorted) and files in NAR
 * order, so the file named for an architecture is the first of it anywhere. Undefined when the
 * source cannot tell (no `pathArchitectures`), which is not the same as a closure with no ELF file.
 */
export async function closureArchitectures(store: StoreSource, closure: ClosureGraph): Promise<ClosureArchitectures | undefined> {
  if (!store.pathArchitectures) return undefined;
  const out: ClosureArchitectures = {};
  // The few paths that have any, when the source knows them for this closure (no await per path).
  const facts = store.closureFacts?.(closure);
  if (facts) {
    for (const { path } of closure.paths) {
      const found = facts.architectures.get(path);
      if (found) for (const [arch, file] of Object.entries(found)) if (!Object.hasOwn(out, arch)) out[arch] = file === '' ? path : `${path}/${file}`;
    }
    return out;
  }
  // One path at a time: a directory store answers from its scan, and the other sources' header
  // walks are synchronous reads, which running side by side would not speed up.
  for (const { path } of closure.paths) {
    const found = await store.pathArchitectures(path);
    for (const [arch, file] of Object.entries(found)) {
      if (!Object.hasOwn(out, arch)) out[arch] = file === '' ? path : `${path}/${file}`;
    }
  }
  return out;
}

/** Said in every message that names a file of an unexpected architecture. */
const FIXTURE_HINT = 'Go and Node packages sometimes ship ELF test fixtures for other machines; leave such files out of the closure';

/**
 * The architecture an image of the closure has: the one its ELF files are for, or `named` (the
 * spec's `architecture`) when they agree with it or there is none. Refused, naming files, when
 * files of two architectures are in the closure (whatever `named` says: no image runs them all),
 * when `named` contradicts the files, and when nothing says (no ELF file, or a source that cannot
 * tell, and no `named`). Foreign-architecture files are not special-cased: the message names the
 * file so that it can be taken out of the closure.
 */
export function architectureOfClosure(found: ClosureArchitectures | undefined, named?: string): string {
  const archs = Object.keys(found ?? {}).sort();
  const fileOf = (arch: string): string => found![arch]!;
  if (archs.length >= 2) {
    throw new StoreError(
      `the closure holds ELF files for ${archs.length} architectures, and an image has one: ${archs.map((a) => `${a} (${fileOf(a)})`).join(', ')}`,
      archs.map(fileOf),
      `build one image per architecture, each from its own store paths; ${FIXTURE_HINT}`,
    );
  }
  const [arch] = archs;
  if (arch === undefined) {
    if (named !== undefined) return named;
    throw new StoreError(
      found === undefined
        ? 'the store source cannot read the closure\'s ELF headers, so the spec must name the image\'s architecture'
        : 'no ELF file was found in the closure to tell the image\'s architecture, so the spec must name it',
      [],
      'set `architecture` in the spec, e.g. `architecture: amd64`',
    );
  }
  if (named !== undefined && named !== arch) {
    throw new StoreError(
      `the spec names architecture ${named}, but ${fileOf(arch)} is an ELF file for ${arch}`,
      [fileOf(arch)],
      `set \`architecture: ${arch}\` in the spec (or leave it out: the ELF files decide), or build from store paths for ${named}; ${FIXTURE_HINT}`,
    );
  }
  return arch;
}
