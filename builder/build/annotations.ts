import { dirname } from 'node:path';
import { Annotation } from '../../oci/media-types.js';
import type { Image } from '../model/image.js';
import type { ResolvedSpec } from '../spec/types.js';
import { parseImageRef } from '../transports/image-ref.js';

/**
 * The manifest annotations of a spec's image: none when the spec has no `annotations` (so an image
 * built without them keeps the bytes, and digest, it always had); else the OCI standard keys imgbuild
 * knows — `created` (the config's date), `base.name` (a registry `fromImage`, as the spec names
 * it) and `base.digest` (the base manifest's digest) — under the spec's own, which win.
 */
export function manifestAnnotations(spec: ResolvedSpec, base: Image | undefined): Record<string, string> | undefined {
  if (spec.annotations === undefined) return undefined;
  const standard: Record<string, string> = { [Annotation.created]: spec.created };
  if (base && spec.fromImage) {
    const ref = registryName(spec);
    if (ref) standard[Annotation.baseName] = ref;
    standard[Annotation.baseDigest] = base.descriptor.digest;
  }
  return { ...standard, ...spec.annotations };
}

/** The annotations of a multi-platform image's index: the shared spec's, with `created`. */
export function indexAnnotations(spec: ResolvedSpec): Record<string, string> | undefined {
  if (spec.annotations === undefined) return undefined;
  return { [Annotation.created]: spec.created, ...spec.annotations };
}

/** A registry `fromImage` as a reference (`docker.io/library/alpine:3.20`); undefined for a local one (a layout, an archive). */
function registryName(spec: ResolvedSpec): string | undefined {
  try {
    const ref = parseImageRef(spec.fromImage!, { cwd: dirname(spec.file) });
    return ref.transport === 'docker' ? ref.reference : undefined;
  } catch {
    return undefined;
  }
}
