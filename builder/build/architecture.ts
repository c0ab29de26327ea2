import type { ClosureGraph } from '../../layering/types.js';
import { ImgbuildError } from '../errors.js';
import { formatPlatform } from '../model/complete.js';
import type { ResolvedSpec } from '../spec/types.js';
import { architectureOfClosure, closureArchitectures } from '../store/closure-architectures.js';
import type { StoreSource } from '../store/types.js';
import { openArtifact } from '../transports/open.js';
import { dirname } from 'node:path';
import type { BuildContext } from './context.js';

/**
 * The spec with the architecture its content says: the ELF files of the closure (every one of
 * one architecture, and the spec's `architecture`, when it names one, agreeing with them). With no
 * ELF file: the architecture the spec names, else that of its base image when it is a single
 * image, else an error asking the spec to say. So the same spec gives the same image on any
 * build machine.
 */
export async function specWithArchitecture(spec: ResolvedSpec, store: StoreSource, closure: ClosureGraph, ctx: Pick<BuildContext, 'registry'>): Promise<ResolvedSpec> {
  const found = await closureArchitectures(store, closure);
  const named = spec.architectureGiven ? spec.architecture : undefined;
  if (!named && found && Object.keys(found).length === 0 && spec.fromImage) {
    const base = await baseArchitecture(spec, ctx);
    if (base) return { ...spec, architecture: base.architecture, variant: base.variant ?? spec.variant };
  }
  const architecture = architectureOfClosure(found, named);
  return architecture === spec.architecture ? spec : { ...spec, architecture };
}

/** The platform of a base image that is one image (of an index: none, the spec must choose). */
async function baseArchitecture(spec: ResolvedSpec, ctx: Pick<BuildContext, 'registry'>): Promise<{ architecture: string; variant?: string } | undefined> {
  const base = await openArtifact(spec.fromImage!, { cwd: dirname(spec.file), what: 'fromImage', ...(ctx.registry ? { registry: ctx.registry } : {}) });
  if (base.kind === 'image') return { architecture: base.config.architecture, ...(base.config.variant ? { variant: base.config.variant } : {}) };
  throw new ImgbuildError(
    'spec',
    `${spec.file}: architecture: the closure has no ELF file to tell it, and fromImage ${spec.fromImage} is for ${base.manifests.map((m) => formatPlatform(m.platform)).join(', ')}`,
    'set `architecture` in the spec, e.g. `architecture: amd64`',
  );
}
