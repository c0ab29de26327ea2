import type { ClosureGraph } from '../../layering/types.js';
import { ImgbuildError } from '../errors.js';
import { formatPlatform } from '../model/complete.js';
import { imagePlatform } from '../model/image.js';
import type { ResolvedSpec } from '../spec/types.js';
import { architectureOfClosure, closureArchitectures } from '../store/closure-architectures.js';
import type { StoreSource } from '../store/types.js';
import type { Image, Index } from '../model/image.js';
import { openBaseArtifact, specBase, type PlatformReason } from './base.js';
import type { BuildContext } from './context.js';

/**
 * The spec with the architecture its content says: the ELF files of the closure (every one of
 * one architecture, and the spec's `architecture`, when it names one, agreeing with them). With no
 * ELF file: the architecture the spec names, else that of its base image when it is a single
 * image (and its variant, unless the spec names one), else an error asking the spec to say. So
 * the same spec gives the same image on any build machine.
 */
export async function specWithArchitecture(spec: ResolvedSpec, store: StoreSource, closure: ClosureGraph, openBase: () => Promise<Image | Index>): Promise<ResolvedSpec> {
  return (await architectureAndReason(spec, store, closure, openBase)).spec;
}

async function architectureAndReason(spec: ResolvedSpec, store: StoreSource, closure: ClosureGraph, openBase: () => Promise<Image | Index>): Promise<{ spec: ResolvedSpec; reason: PlatformReason }> {
  const found = await closureArchitectures(store, closure);
  const named = spec.architectureGiven ? spec.architecture : undefined;
  if (!named && found && Object.keys(found).length === 0 && spec.fromImage) {
    const base = baseArchitecture(spec, await openBase());
    // A variant the spec names stays: a base of another variant is then refused (base.ts).
    return { spec: { ...spec, architecture: base.architecture, variant: spec.variant ?? base.variant }, reason: {} };
  }
  const architecture = architectureOfClosure(found, named);
  const reason = { elf: found !== undefined && Object.keys(found).length > 0 };
  return { spec: architecture === spec.architecture ? spec : { ...spec, architecture }, reason };
}

/**
 * The spec with its architecture (specWithArchitecture), and the image its `fromImage` names for
 * that platform, refused when it is for another (base.ts specBase): the base is opened once,
 * whether the architecture needed it or not.
 */
export async function specAndBase(given: ResolvedSpec, store: StoreSource, closure: ClosureGraph, ctx: Pick<BuildContext, 'registry' | 'warn'>): Promise<{ spec: ResolvedSpec; base?: Image }> {
  let opened: Image | Index | undefined;
  const openBase = async () => (opened ??= await openBaseArtifact({ ...given, fromImage: given.fromImage! }, ctx));
  const { spec, reason } = await architectureAndReason(given, store, closure, openBase);
  if (!spec.fromImage) return { spec };
  return { spec, base: (await specBase(spec, ctx, await openBase(), reason))! };
}

/** The platform of a base image that is one image (of an index: none, the spec must choose). */
function baseArchitecture(spec: ResolvedSpec, base: Image | Index): { architecture: string; variant?: string } {
  if (base.kind === 'image') {
    const { architecture, variant } = imagePlatform(base);
    return { architecture, ...(variant ? { variant } : {}) };
  }
  throw new ImgbuildError(
    'spec',
    `${spec.file}: architecture: the closure has no ELF file to tell it, and fromImage ${spec.fromImage} is for ${base.manifests.map((m) => formatPlatform(m.platform)).join(', ')}`,
    'set `architecture` in the spec, e.g. `architecture: amd64`',
  );
}
